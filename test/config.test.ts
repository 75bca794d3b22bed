import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { isTransient } from '../src/eventBus/EventBus.js';
import { EventValidationError } from '../src/domain/index.js';
import { ConcurrencyError } from '../src/eventStore/errors.js';

describe('configuration', () => {
  it('has localhost defaults', () => {
    const c = loadConfig({});
    expect(c.DATABASE_URL).toBe('postgres://postgres@127.0.0.1:5432/hdtickets');
    expect(c.REDIS_URL).toBe('redis://127.0.0.1:6379');
    expect(c.QUEUE_PREFIX).toBe('{hdt}');
    expect(c.WORKER_ROLES).toEqual(['handlers', 'projections', 'relay']);
  });

  it('names every bad value, and never echoes a secret', () => {
    let error: unknown;
    try {
      loadConfig({ DATABASE_URL: 'mysql://x', LOG_LEVEL: 'loud', WORKER_CONCURRENCY: '-1', API_TOKEN: 'short-secret', WORKER_ROLES: 'handlers,cooking' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const msg = (error as Error).message;
    for (const key of ['DATABASE_URL', 'LOG_LEVEL', 'WORKER_CONCURRENCY', 'API_TOKEN', 'WORKER_ROLES']) expect(msg).toContain(key);
    expect(msg).not.toContain('short-secret');
  });
});

describe('dispatchWithRetry retries only transient errors', () => {
  it('classifies errors', () => {
    expect(isTransient(Object.assign(new Error('conn'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isTransient(Object.assign(new Error('x'), { cause: { code: '57P01' } }))).toBe(true);
    expect(isTransient(Object.assign(new Error('deadlock'), { code: '40P01' }))).toBe(true);
    expect(isTransient(new ConcurrencyError('s', 1, 'stream s: expected 1, actual 2'))).toBe(false);
    expect(isTransient(new EventValidationError([{ field: 'payload.x', message: 'bad' }]))).toBe(false);
    expect(isTransient(Object.assign(new Error('unique'), { code: '23505' }))).toBe(false);
  });
});
