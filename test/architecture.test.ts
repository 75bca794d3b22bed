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
const folderOf = (abs: string) => relative(SRC, abs).split('/')[0]!;

/** ARCHITECTURE.md §1: a folder may import those listed before it, never those after it. */
const ORDER = ['domain', 'eventStore', 'eventBus', 'handlers', 'projections', 'replay', 'http'];

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

  it('no folder imports one listed after it', () => {
    for (const [i, dir] of ORDER.entries()) {
      for (const f of files(join(SRC, dir))) {
        for (const imp of importsOf(f)) {
          const target = folderOf(imp);
          const j = ORDER.indexOf(target);
          if (j === -1) continue; // shared helpers outside the pipeline (config, db, logger, app wiring)
          expect({ file: relative(ROOT, f), imports: target, allowed: j <= i }).toEqual({ file: relative(ROOT, f), imports: target, allowed: true });
        }
      }
    }
  });
});
