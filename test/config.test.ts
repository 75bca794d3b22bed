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

  it('INGEST_TOKENS: name:token pairs; a bad one is named without echoing any token', () => {
    expect(loadConfig({ INGEST_TOKENS: 'scraper:aaaaaaaaaaaaaaaa1, partner_2:bbbbbbbbbbbbbbbb2' }).INGEST_TOKENS).toEqual([
      { name: 'scraper', token: 'aaaaaaaaaaaaaaaa1' },
      { name: 'partner_2', token: 'bbbbbbbbbbbbbbbb2' },
    ]);
    expect(loadConfig({}).INGEST_TOKENS).toBeUndefined();
    const bad: [Record<string, string>, string, string][] = [
      [{ INGEST_TOKENS: 'cccccccccccccccccccc3' }, 'entry 1 must be name:token', 'cccccccccccccccccccc3'],
      [{ INGEST_TOKENS: 'Scraper:dddddddddddddddd4' }, 'entry 1 must be name:token', 'dddddddddddddddd4'],
      [{ INGEST_TOKENS: 'a:eeeeeeeeeeeeeeee5,b:short-secret' }, 'entry 2 ("b"): the token must be at least 16 characters', 'short-secret'],
      [{ INGEST_TOKENS: 'a:ffffffffffffffff6,a:gggggggggggggggg7' }, 'the name "a" is used by entries 1 and 2', 'ffffffffffffffff6'],
      [{ INGEST_TOKENS: 'a:hhhhhhhhhhhhhhhh8,b:hhhhhhhhhhhhhhhh8' }, 'entries 1 and 2 have the same token', 'hhhhhhhhhhhhhhhh8'],
      [{ INGEST_TOKENS: 'a:iiiiiiiiiiiiiiii9', API_TOKEN: 'iiiiiiiiiiiiiiii9' }, 'entry 1 ("a") uses the same token as API_TOKEN', 'iiiiiiiiiiiiiiii9'],
    ];
    for (const [env, message, secret] of bad) {
      let error: unknown;
      try {
        loadConfig(env);
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(env)).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toContain(`INGEST_TOKENS: ${message}`);
      expect((error as Error).message).not.toContain(secret);
    }
  });

  it('METRICS_PORT: 0 (off) by default, a port number otherwise', () => {
    expect(loadConfig({}).METRICS_PORT).toBe(0);
    expect(loadConfig({ METRICS_PORT: '9464' }).METRICS_PORT).toBe(9464);
    expect(() => loadConfig({ METRICS_PORT: '70000' })).toThrow(/METRICS_PORT: must be at most 65535/);
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
