import { randomUUID } from 'node:crypto';
import { sql } from 'slonik';
import { z } from 'zod';
import { afterEach, describe, expect, it } from 'vitest';
import { createDbPool, type DatabasePool } from '../../src/db/pool.js';
import { runMigrations } from '../../src/db/migrate.js';
import { createEventGenerator } from '../../src/demo/eventGenerator.js';
import { defaultHandlers } from '../../src/handlers/index.js';
import { defaultProjections } from '../../src/projections/index.js';
import { testPrefix, waitFor } from '../support/db.js';
import { handlerEffectGaps, readModelDiffs } from '../support/effects.js';
import { PrivatePostgres } from '../support/pgServer.js';
import { spawnTs, stopAll, type Spawned } from '../support/processes.js';
import { freePort, PrivateRedis } from '../support/redisServer.js';

// The trap: a stopped Postgres crashed every worker (an unhandled 'error' from a pg client), restarted
// workers exited until it was back, and jobs that met the outage used up their attempts and parked
// streams as if their events were poison. An outage is infrastructure: work waits, nothing fails.
const n = z.object({ n: z.number() });
const TOKEN = 'postgres-outage-token-0123456789';
const OUTAGE_MS = 45_000;
const TOTAL = 5_000;
const RATE = 250; // events per second, from 5 producers

interface Stack {
  pg: PrivatePostgres;
  redis: PrivateRedis;
  pool: DatabasePool;
  web: Spawned;
  workers: Spawned[];
  api: string;
  env: Record<string, string>;
  /** Started while Postgres was down, as a platform restarting a crashed process would. */
  late?: Spawned;
}
let stack: Stack | null = null;

async function startStack(label: string): Promise<Stack> {
  const pgServer = new PrivatePostgres(await freePort());
  await pgServer.init();
  const url = await pgServer.createDatabase('hdt');
  await runMigrations(url);
  const redis = new PrivateRedis(await freePort());
  await redis.start();
  const port = await freePort();
  const env = {
    DATABASE_URL: url,
    REDIS_URL: redis.url,
    QUEUE_PREFIX: testPrefix(label),
    API_TOKEN: TOKEN,
    LOG_LEVEL: 'info',
    DATABASE_POOL_SIZE: '6',
    RELAY_POLL_MS: '300',
    OWED_REDELIVER_AFTER_MS: '5000',
  };
  const web = spawnTs('workers/web.ts', { ...env, PORT: String(port) });
  const workers = [0, 1, 2].map(() => spawnTs('workers/worker.ts', env));
  const pool = await createDbPool(url, { maximumPoolSize: 4 });
  await waitFor(() => web.output().includes('web server listening') && workers.every((w) => w.output().includes('worker started')), { timeoutMs: 60_000, intervalMs: 100, what: 'web and workers to start' });
  return { pg: pgServer, redis, pool, web, workers, api: `http://127.0.0.1:${port}`, env };
}

afterEach(async () => {
  if (!stack) return;
  await stopAll([stack.web, ...stack.workers, ...(stack.late ? [stack.late] : [])]);
  await stack.pool.end().catch(() => {});
  await stack.redis.destroy();
  stack.pg.destroy();
  stack = null;
});

const lines = (p: Spawned) => p.output().split('\n').length;

/** Posts TOTAL events at RATE with stable ids; a batch that fails (5xx, refused) is re-sent as is. */
async function produce(s: Stack, onProgress: (sent: number) => Promise<void>): Promise<{ acknowledged: Set<string>; retries: number }> {
  const acknowledged = new Set<string>();
  let sent = 0;
  let retries = 0;
  const producers = 5;
  const batch = 10;
  const interval = (1000 * batch * producers) / RATE;
  await Promise.all(
    Array.from({ length: producers }, async (_, p) => {
      const gen = createEventGenerator({ seed: 900 + p, streams: 60, runId: `pg${p}` });
      for (let i = 0; i < TOTAL / producers; i += batch) {
        const started = Date.now();
        const events = gen.batch(batch).map((e) => ({ ...e, id: randomUUID() }));
        for (;;) {
          const res = await fetch(`${s.api}/api/events`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ events }) }).catch(() => null);
          if (res?.status === 201) break;
          if (res && res.status < 500) throw new Error(`ingest refused: ${res.status} ${await res.text()}`);
          retries++;
          await new Promise((r) => setTimeout(r, 250));
        }
        for (const e of events) acknowledged.add(e.id);
        sent += batch;
        await onProgress(sent);
        const wait = interval - (Date.now() - started);
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
    }),
  );
  return { acknowledged, retries };
}

async function outageRun(label: string, inFlight: boolean) {
  const s = (stack = await startStack(label));
  const processes = [s.web, ...s.workers];
  let outage: Promise<{ logged: number[] }> | null = null;
  const { acknowledged, retries } = await produce(s, async (sent) => {
    if (outage || sent < TOTAL * 0.4) return;
    outage = (async () => {
      if (inFlight) {
        // Workers frozen mid-job for a few seconds: jobs pile up in Redis and the ones they hold stay
        // active, so when they resume their Postgres sessions are gone under them.
        for (const w of s.workers) w.child.kill('SIGSTOP');
        await new Promise((r) => setTimeout(r, 3000));
      }
      s.pg.stop('fast');
      if (inFlight) for (const w of s.workers) w.child.kill('SIGCONT');
      const before = processes.map(lines);
      const stopped = Date.now();
      if (!inFlight) {
        s.late = spawnTs('workers/worker.ts', s.env);
        // Alive but not ready; a write is refused with 503 and Retry-After, not a 500.
        await waitFor(async () => (await fetch(`${s.api}/ready`)).status === 503, { timeoutMs: 10_000, intervalMs: 200, what: '/ready 503 during the outage' });
        expect((await fetch(`${s.api}/health`)).status).toBe(200);
        const refused = await fetch(`${s.api}/api/events`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(createEventGenerator({ seed: 1 }).next()) });
        expect(refused.status).toBe(503);
        expect(refused.headers.get('retry-after')).toBe('5');
      }
      await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - stopped))));
      const logged = processes.map((p, i) => lines(p) - before[i]!);
      await s.pg.start();
      return { logged };
    })();
  });
  const { logged } = await outage!;
  console.info(`log lines during the outage (web, workers): ${logged.join(', ')}`);
  expect(retries).toBeGreaterThan(0);
  expect(acknowledged.size).toBe(TOTAL);

  await waitFor(
    async () => {
      const owed = await s.pool.oneFirst(sql.type(n)`SELECT (SELECT count(*) FROM event_outbox) + (SELECT count(*) FROM consumer_owed) AS n`);
      if (owed > 0) return false;
      return (await readModelDiffs(s.pool, defaultProjections)).length === 0 && (await handlerEffectGaps(s.pool, defaultHandlers)).length === 0;
    },
    { timeoutMs: 120_000, intervalMs: 1000, what: 'every effect to be delivered after Postgres came back' },
  ).catch((e) => {
    console.error(processes.map((p) => p.output().slice(-3000)).join('\n---\n'));
    throw e;
  });

  const ids = sql.array([...acknowledged], 'uuid');
  expect(await s.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_store WHERE id = ANY(${ids})`)).toBe(TOTAL);
  expect(await readModelDiffs(s.pool, defaultProjections)).toEqual([]);
  expect(await handlerEffectGaps(s.pool, defaultHandlers)).toEqual([]);
  const alerts = await s.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_store WHERE event_type = 'AlertTriggered'`);
  expect(await s.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM user_notifications WHERE kind = 'alert'`)).toBe(alerts);
  expect(await s.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_processing_failures`)).toBe(0);
  expect(await s.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM projection_checkpoints WHERE parked`)).toBe(0);
  if (s.late) {
    await waitFor(() => s.late!.output().includes('worker started'), { timeoutMs: 30_000, intervalMs: 200, what: 'the worker started during the outage to start' });
    processes.push(s.late);
  }
  const exited = processes.filter((p) => p.child.exitCode !== null || p.child.signalCode !== null);
  if (exited.length) console.error(exited.map((p) => p.output().slice(-3000)).join('\n---\n'));
  expect(exited.length).toBe(0);
  // Bounded logs: a warning per kind of trouble at a bounded rate, not a line per job or request.
  if (logged.some((l) => l >= 500)) console.error(processes.map((p) => p.output().slice(-3000)).join('\n---\n'));
  for (const l of logged) expect(l).toBeLessThan(500);
}

describe('Postgres stopped for 45 s mid-run', () => {
  it('postgres-stopped-45s-mid-run (queues empty at the stop): web + 3 workers ride it out: every event stored once, every effect once, 0 failures, 0 parked, no exit, bounded logs', async () => {
    await outageRun('pg-stop-idle', false);
  }, 300_000);

  it('postgres-stopped-45s-mid-run (work in flight at the stop): the same, with workers frozen mid-job just before Postgres goes away', async () => {
    await outageRun('pg-stop-busy', true);
  }, 300_000);
});
