import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/processes.js';

const SRC = join(ROOT, 'src');
function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}
const importsOf = (file: string) => [...readFileSync(file, 'utf8').matchAll(/from '(\.[^']+)'/g)].map((m) => join(file, '..', m[1]!));
// Files directly in src/ (config.ts, logger.ts) form one layer of their own: "(root)".
const folderOf = (abs: string) => {
  const parts = relative(SRC, abs).split('/');
  return parts.length === 1 ? '(root)' : parts[0]!;
};

/**
 * ARCHITECTURE.md §1: a folder may import those listed before it, never those after it. Every folder
 * of src/ is listed (a new one fails the test until it is placed): the steps an event walks through,
 * then the consumer pipeline, replay, the wiring of processes (app), and what sits on top of it.
 */
const ORDER = ['domain', '(root)', 'db', 'metrics', 'eventStore', 'eventBus', 'handlers', 'projections', 'consumers', 'replay', 'app', 'http', 'demo', 'cli'];

describe('layering', () => {
  it('domain imports nothing of ours but itself, and no SQL, Redis, BullMQ or HTTP library', () => {
    for (const f of files(join(SRC, 'domain'))) {
      const text = readFileSync(f, 'utf8');
      for (const imp of importsOf(f)) expect({ f: relative(ROOT, f), imp: folderOf(imp) }).toEqual({ f: relative(ROOT, f), imp: 'domain' });
      expect(text).not.toMatch(/from '(slonik|pg|ioredis|bullmq|fastify)/);
    }
  });

  it('replay and projections never import handlers: a replay cannot fire side effects', () => {
    for (const dir of ['replay', 'projections']) {
      for (const f of files(join(SRC, dir))) for (const imp of importsOf(f)) expect(folderOf(imp)).not.toBe('handlers');
    }
  });

  it('every folder of src/ has its place in the order', () => {
    const present = new Set(files(SRC).map(folderOf));
    expect([...present].filter((d) => !ORDER.includes(d))).toEqual([]);
  });

  it('no folder imports one listed after it', () => {
    for (const f of files(SRC)) {
      const i = ORDER.indexOf(folderOf(f));
      for (const imp of importsOf(f)) {
        const target = folderOf(imp);
        const j = ORDER.indexOf(target);
        expect({ file: relative(ROOT, f), imports: target, allowed: j !== -1 && j <= i }).toEqual({ file: relative(ROOT, f), imports: target, allowed: true });
      }
    }
  });

  it('hot paths import only the OpenTelemetry API; the SDK is wired (and loaded only when tracing is on) in src/app/tracingSdk.ts', () => {
    for (const f of files(SRC)) {
      if (relative(SRC, f) === 'app/tracingSdk.ts') continue;
      const otel = [...readFileSync(f, 'utf8').matchAll(/from '(@opentelemetry\/[^']+)'/g)].map((m) => m[1]);
      expect({ file: relative(ROOT, f), otel: otel.filter((m) => m !== '@opentelemetry/api') }).toEqual({ file: relative(ROOT, f), otel: [] });
    }
  });

  it('the consumer pipeline owns its tables: no SQL on consumer_owed, owed_batches, event_consumers or event_processing_failures elsewhere', () => {
    for (const f of files(SRC)) {
      if (folderOf(f) === 'consumers') continue;
      const text = readFileSync(f, 'utf8');
      expect({ file: relative(ROOT, f), sql: /\b(FROM|INTO|UPDATE|JOIN)\s+(consumer_owed|owed_batches|event_consumers|event_processing_failures)\b/i.test(text) }).toEqual({ file: relative(ROOT, f), sql: false });
    }
  });
});
