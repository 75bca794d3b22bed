import { afterAll, describe, expect, it } from 'vitest';
import { ADMIN_URL, createTestDb, testPrefix } from '../support/db.js';
import { spawnTs, stopAll, type Spawned } from '../support/processes.js';

const started: Spawned[] = [];
afterAll(() => stopAll(started));

/** Runs `npm start`'s script and returns how it ended, how long it took and what it printed. */
async function start(env: Record<string, string>) {
  const t0 = Date.now();
  // EMBEDDED_SERVICES=off: the behaviour without the embedded fallback (startEmbedded.test.ts has the fallback).
  const p = spawnTs('scripts/start.ts', { LOG_LEVEL: 'info', EMBEDDED_SERVICES: 'off', ...env });
  started.push(p);
  const { code } = await p.exited;
  return { code, ms: Date.now() - t0, out: p.output() };
}

// A stack trace prints lines such as "    at connect (file:///...)".
const STACK_LINE = /^\s+at\s/m;
// A closed port on loopback: refused at once, and nothing in this test can ever listen there.
const CLOSED = 1;

describe('npm start when a service is unreachable', () => {
  it('names the Postgres URL, says how to start Postgres, and exits non-zero within 10 s without a stack trace', async () => {
    const url = `postgres://postgres@127.0.0.1:${CLOSED}/hdtickets`;
    const r = await start({ DATABASE_URL: url });
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.ms).toBeLessThan(10_000);
    expect(r.out).toContain(`Cannot reach PostgreSQL at ${url}`);
    expect(r.out).toContain('docker compose up -d postgres');
    expect(r.out).not.toMatch(STACK_LINE);
  });

  it('does the same for Redis, with Postgres reachable', async () => {
    const url = `redis://127.0.0.1:${CLOSED}`;
    // The CI admin database exists already, so nothing gets created on the way to the Redis check.
    const r = await start({ DATABASE_URL: ADMIN_URL, REDIS_URL: url });
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.ms).toBeLessThan(10_000);
    expect(r.out).toContain(`Cannot reach Redis at ${url}`);
    expect(r.out).toContain('docker compose up -d redis');
    expect(r.out).not.toMatch(STACK_LINE);
  });

  it('hides the password of a URL it reports', async () => {
    const r = await start({ DATABASE_URL: `postgres://postgres:s3cret-pw@127.0.0.1:${CLOSED}/hdtickets` });
    expect(r.code).not.toBe(0);
    expect(r.out).toContain('postgres://postgres:***@127.0.0.1');
    expect(r.out).not.toContain('s3cret-pw');
  });

  it('rejects a malformed setting with exit code 2 and the name of the setting', async () => {
    const r = await start({ DEMO_RATE: 'lots' });
    expect(r.code).toBe(2);
    expect(r.out).toContain('DEMO_RATE');
    expect(r.out).not.toMatch(STACK_LINE);
  });

  it('refuses production without API_TOKEN: exit code 2, the reason, no stack trace', async () => {
    const db = await createTestDb('start_prod');
    try {
      const r = await start({ NODE_ENV: 'production', DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix('prod'), PORT: '0', DEMO: 'off' });
      expect(r.code).toBe(2);
      expect(r.out).toContain('API_TOKEN');
      expect(r.out).not.toMatch(STACK_LINE);
    } finally {
      await db.drop();
    }
  });
});
