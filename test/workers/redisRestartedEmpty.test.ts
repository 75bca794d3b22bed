import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { createEventGenerator } from '../../src/demo/eventGenerator.js';
import { defaultHandlers } from '../../src/handlers/index.js';
import { overview } from '../../src/http/queries/overview.js';
import { defaultProjections } from '../../src/projections/index.js';
import { disposeTestContainer, owedEvents, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';
import { handlerEffectGaps, readModelDiffs } from '../support/effects.js';
import { spawnTs, stopAll, type Spawned } from '../support/processes.js';
import { freePort, PrivateRedis } from '../support/redisServer.js';
import { emptyPostgresQueueStore, onPostgresQueues } from '../support/backend.js';

// The trap: the first design deleted an event's outbox row once its jobs were in Redis, so a Redis
// restarted without persistence silently lost half of the handler effects while every monitor said
// "all clean". Postgres must be the record of owed work; Redis only speeds delivery.
// On the PostgreSQL queue backend (QUEUE_BACKEND=postgres) the same trap is the queue store losing its
// jobs: every row of the bullmq schema's job table is deleted at the same point of the run.
let db: TestDb;
let redis: PrivateRedis;
let producer: Container;
const workers: Spawned[] = [];
const n = z.object({ n: z.number() });

beforeAll(async () => {
  redis = new PrivateRedis(await freePort(), { persistent: false });
  await redis.start();
  db = await createTestDb('redis_empty', { poolSize: 8 });
  const env = {
    DATABASE_URL: db.url,
    REDIS_URL: redis.url,
    QUEUE_PREFIX: testPrefix('redis-empty'),
    JOB_LOCK_MS: '3000',
    WORKER_CONCURRENCY: '4',
    RELAY_POLL_MS: '200',
    DATABASE_POOL_SIZE: '6',
    // Short horizon so the test does not wait 30 s for the reconciler.
    OWED_REDELIVER_AFTER_MS: '3000',
  };
  producer = await testContainer(env);
  for (let i = 0; i < 3; i++) workers.push(spawnTs('workers/worker.ts', { ...env, LOG_LEVEL: 'info' }));
  // Every worker must be up before Redis goes away: one still starting would meet its preflight check.
  await waitFor(() => workers.every((w) => w.output().includes('worker started')), { timeoutMs: 60_000, intervalMs: 100, what: 'the workers to start' });
});

afterAll(async () => {
  await stopAll(workers);
  await disposeTestContainer(producer);
  await redis?.destroy();
  await db?.drop();
});

describe(onPostgresQueues ? 'queue store (PostgreSQL backend) emptied mid-run' : 'Redis restarted empty mid-run', () => {
  it('redis-restarted-empty-mid-run: 3 workers, 4 producers, 10,000 events over 500 streams; Redis SIGKILLed at ~50 % and restarted empty: every effect exactly once, read models equal the fold, no failure rows, owed work visible meanwhile', { timeout: onPostgresQueues ? 300_000 : 120_000 }, async () => {
    const TOTAL = 10_000;
    let dispatched = 0;
    let killed: Promise<void> | null = null;
    let restarted: Promise<void> | null = null;
    let lostJobs = -1;
    let paused: Promise<unknown> | null = null;
    const shared = [producer.queues.handlers, producer.queues.projections];
    const owedSeen: number[] = [];
    const produce = async (p: number) => {
      const gen = createEventGenerator({ seed: 300 + p, streams: 125, runId: `re${p}` });
      for (let i = 0; i < TOTAL / 4; ) {
        const size = Math.min(1 + ((i * 7 + p) % 40), TOTAL / 4 - i);
        await producer.bus.dispatchMany(gen.batch(size));
        i += size;
        dispatched += size;
        if (!paused && dispatched >= TOTAL * 0.45) {
          // The fleet may keep up with the producers, so that at the moment of the loss nothing is
          // waiting and nothing needs redelivering: the shared queues are paused first so that jobs
          // are certainly waiting when the store loses them.
          paused = Promise.all(shared.map((q) => q.pause()));
        }
        if (!killed && dispatched >= TOTAL * 0.5) {
          // Jobs in Redis and in flight are lost with it; producers go on meanwhile.
          const lose = paused!
            .then(() => waitFor(async () => {
              // A paused queue reports its waiting jobs as 'paused'.
              const counts = await Promise.all(shared.map((q) => q.getJobCounts('waiting', 'paused' as 'wait', 'prioritized')));
              return counts.some((c) => (c.waiting ?? 0) + (c.paused ?? 0) + (c.prioritized ?? 0) > 0);
            }, { timeoutMs: 30_000, intervalMs: 20, what: 'jobs waiting on the paused queues' }))
            .then(() => (onPostgresQueues ? emptyPostgresQueueStore(db.url).then((n) => void (lostJobs = n)) : redis.kill()));
          killed = lose.then(async () => {
            // While Redis is gone, the overview still answers from Postgres, and says work is owed.
            owedSeen.push((await overview(producer.pool, producer.queues)).owed.events);
          });
        }
        if (killed && !restarted && dispatched >= TOTAL * 0.56) {
          // ~600 events were dispatched with Redis gone; it comes back empty.
          restarted = killed.then(async () => {
            if (!onPostgresQueues) await redis.start();
            // Redis restarted empty has forgotten the pause; the PostgreSQL store's queue meta has not.
            // The producer's connection is still reconnecting then and has no offline queue: retried.
            await Promise.all(shared.map((q) => waitFor(() => q.resume().then(() => true, () => false), { timeoutMs: 30_000, intervalMs: 50, what: `${q.name} to resume` })));
            owedSeen.push((await overview(producer.pool, producer.queues)).owed.events);
          });
          await restarted;
        }
      }
    };
    await Promise.all([0, 1, 2, 3].map(produce));
    await killed;
    await restarted;
    expect(owedSeen.length).toBe(2);
    if (onPostgresQueues) expect(lostJobs).toBeGreaterThan(0);
    expect(Math.max(...owedSeen)).toBeGreaterThan(0);

    await waitFor(
      async () => {
        const outbox = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_outbox`);
        if (outbox > 0 || (await owedEvents(producer)) > 0) return false;
        return (await readModelDiffs(db.pool, defaultProjections)).length === 0 && (await handlerEffectGaps(db.pool, defaultHandlers)).length === 0;
      },
      { timeoutMs: 180_000, intervalMs: 1000, what: 'every owed effect to be delivered after Redis came back empty' },
    ).catch(async (e) => {
      console.error('owed', await owedEvents(producer), 'models', await readModelDiffs(db.pool, defaultProjections), 'handlers', await handlerEffectGaps(db.pool, defaultHandlers));
      console.error(workers.map((w) => w.output().slice(-2000)).join('\n---\n'));
      throw e;
    });

    expect(await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_store`)).toBeGreaterThanOrEqual(TOTAL);
    expect(await readModelDiffs(db.pool, defaultProjections)).toEqual([]);
    expect(await handlerEffectGaps(db.pool, defaultHandlers)).toEqual([]);
    const discovered = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_store WHERE event_type = 'TicketDiscovered'`);
    expect(await db.pool.oneFirst(sql.type(n)`SELECT coalesce(sum(tickets_discovered), 0)::int8 AS n FROM platform_stats_totals`)).toBe(discovered);
    const alerts = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_store WHERE event_type = 'AlertTriggered'`);
    expect(alerts).toBeGreaterThan(0);
    expect(await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM user_notifications WHERE kind = 'alert'`)).toBe(alerts);
    expect(await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_processing_failures`)).toBe(0);
    // The jobs Redis lost were redelivered from Postgres' record, not re-sent by producers.
    expect(await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM consumer_owed`)).toBe(0);
    const exited = workers.filter((w) => w.child.exitCode !== null || w.child.signalCode !== null);
    if (exited.length) console.error(exited.map((w) => w.output().slice(-3000)).join('\n---\n'));
    expect(exited.length).toBe(0);
    // Redis really lost jobs, and the reconciler's redeliveries (ids ending in .r<n>) did their work.
    const redelivered = (
      await Promise.all(producer.routes.map(async (r) => (await producer.consumerQueues.own(r.name).getJobs(['completed'], 0, 5000)).filter((j) => /\.r\d+$/.test(j.id ?? '')).length))
    ).reduce((a, b) => a + b, 0);
    expect(redelivered).toBeGreaterThan(0);
  });
});
