import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { createEventGenerator } from '../../src/demo/eventGenerator.js';
import { defaultHandlers } from '../../src/handlers/index.js';
import { defaultProjections } from '../../src/projections/index.js';
import { disposeTestContainer, owedEvents, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';
import { handlerEffectGaps, readModelDiffs } from '../support/effects.js';
import { spawnTs, stopAll, type Spawned } from '../support/processes.js';

// The trap: the set of consumers a batch was published to used to be the publishing process's own
// route table, and a worker handed work for a consumer it did not run recorded "a failure" that was
// never written. A rolling deploy that added a handler, or a worker started with CONSUMERS, dropped
// its effects silently. Now the registry in Postgres decides who is owed, and a worker leaves work it
// does not run for one that does.
const n = z.object({ n: z.number() });
const LACKING = 'PriceChangeHandler';
const allButOne = [...defaultHandlers.map((h) => h.name), ...defaultProjections.map((p) => p.name)].filter((x) => x !== LACKING).join(',');

interface Setup {
  db: TestDb;
  env: Record<string, string>;
  workers: Spawned[];
  producers: Container[];
}
const setups: Setup[] = [];

async function setup(label: string): Promise<Setup> {
  const db = await createTestDb(label, { poolSize: 6 });
  const env = { DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix(label), JOB_LOCK_MS: '3000', RELAY_POLL_MS: '200', DATABASE_POOL_SIZE: '5', OWED_REDELIVER_AFTER_MS: '3000' };
  const s = { db, env, workers: [], producers: [] };
  setups.push(s);
  return s;
}

/** A worker process is up once it logged so (SIGTERM before its handlers exist would just kill it). */
async function started(w: Spawned): Promise<void> {
  await waitFor(() => w.output().includes('worker started'), { timeoutMs: 30_000, intervalMs: 100, what: 'the worker to start' });
}

async function produce(c: Container, runId: string, total: number, onProgress?: (done: number) => void): Promise<void> {
  const gen = createEventGenerator({ seed: runId.length * 31, streams: 150, runId });
  for (let i = 0; i < total; ) {
    const size = Math.min(1 + (i % 37), total - i);
    await c.bus.dispatchMany(gen.batch(size));
    i += size;
    onProgress?.(i);
  }
}

async function drained(s: Setup, c: Container, afterPosition = 0): Promise<void> {
  await waitFor(
    async () => {
      const outbox = await s.db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_outbox`);
      if (outbox > 0 || (await owedEvents(c)) > 0) return false;
      return (await readModelDiffs(s.db.pool, defaultProjections)).length === 0 && (await handlerEffectGaps(s.db.pool, defaultHandlers, afterPosition)).length === 0;
    },
    { timeoutMs: 120_000, intervalMs: 500, what: 'every owed effect' },
  ).catch(async (e) => {
    console.error('owed', await owedEvents(c), 'handlers', await handlerEffectGaps(s.db.pool, defaultHandlers, afterPosition), s.workers.map((w) => w.output().slice(-2000)).join('\n---\n'));
    throw e;
  });
}

async function expectClean(s: Setup, afterPosition = 0): Promise<void> {
  expect(await readModelDiffs(s.db.pool, defaultProjections)).toEqual([]);
  expect(await handlerEffectGaps(s.db.pool, defaultHandlers, afterPosition)).toEqual([]);
  // No failure rows: nothing was recorded for a consumer a worker does not run.
  expect(await s.db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_processing_failures`)).toBe(0);
  const alerts = await s.db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_store WHERE event_type = 'AlertTriggered'`);
  expect(await s.db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM user_notifications WHERE kind = 'alert'`)).toBe(alerts);
}

beforeAll(() => {});
afterAll(async () => {
  for (const s of setups) {
    await stopAll(s.workers);
    for (const c of s.producers) await disposeTestContainer(c);
    await s.db.drop();
  }
});

describe('consumers decided by the registry, not by one process', () => {
  it('worker-without-a-consumer: worker A lacks a handler, worker B runs all (both relays); A stopped midway: every effect exactly once, no failure rows', async () => {
    const s = await setup('no_consumer');
    const producer = await testContainer(s.env);
    s.producers.push(producer);
    const a = spawnTs('workers/worker.ts', { ...s.env, CONSUMERS: allButOne, LOG_LEVEL: 'info' });
    const b = spawnTs('workers/worker.ts', { ...s.env, LOG_LEVEL: 'info' });
    s.workers.push(a, b);
    await Promise.all([started(a), started(b)]);
    let stopped = false;
    await Promise.all([0, 1].map((p) => produce(producer, `nc${p}`, 2500, (done) => {
      if (!stopped && done >= 1250) {
        stopped = true;
        a.child.kill('SIGTERM');
      }
    })));
    expect((await a.exited).code).toBe(0);
    await drained(s, producer);
    await expectClean(s);
  });

  it('rolling-deploy-adds-a-handler: the web knows fewer consumers than the workers; a worker with the new handler joins midway and the old one leaves: the new handler gets every event from its registration on, exactly once', async () => {
    const s = await setup('adds_handler');
    // The old web process and the old worker do not know the handler yet.
    const oldWeb = await testContainer({ ...s.env, CONSUMERS: allButOne });
    s.producers.push(oldWeb);
    const oldWorker = spawnTs('workers/worker.ts', { ...s.env, CONSUMERS: allButOne, LOG_LEVEL: 'info' });
    s.workers.push(oldWorker);
    await started(oldWorker);
    await produce(oldWeb, 'before', 800);
    // Deploy: a new worker registers the handler; the old web keeps producing; the old worker stops.
    const newWorker = spawnTs('workers/worker.ts', s.env);
    s.workers.push(newWorker);
    const registered = (await waitFor(
      async () => (await s.db.pool.maybeOne(sql.type(z.object({ at: z.number() }))`
        SELECT coalesce((SELECT max(global_position) FROM event_store), 0)::int8 AS at FROM event_consumers WHERE name = ${LACKING}`))?.at ?? null,
      { what: 'the new handler to register', intervalMs: 100 },
    ))!;
    await produce(oldWeb, 'during', 1500, (done) => {
      if (done >= 700 && oldWorker.child.exitCode === null && !oldWorker.child.killed) oldWorker.child.kill('SIGTERM');
    });
    expect((await oldWorker.exited).code).toBe(0);
    await drained(s, oldWeb, registered);
    await expectClean(s, registered);
    // And the handler did run: every price change since its registration is in its ledger.
    const handled = await s.db.pool.oneFirst(sql.type(n)`
      SELECT count(*) AS n FROM event_handler_ledger l JOIN event_store e ON e.id = l.event_id WHERE l.handler = ${LACKING} AND e.global_position > ${registered}`);
    expect(handled).toBeGreaterThan(0);
  });

  it('the reverse: the web knows every consumer, no worker runs one of them: its owed work grows, shows in the overview and /ready, and nothing is recorded as failed', async () => {
    const s = await setup('unrun');
    const web = await testContainer(s.env);
    s.producers.push(web);
    const w = spawnTs('workers/worker.ts', { ...s.env, CONSUMERS: allButOne });
    s.workers.push(w);
    await produce(web, 'unrun', 600);
    const { overview } = await import('../../src/http/queries/overview.js');
    const { readiness } = await import('../../src/http/queries/readiness.js');
    const ov = (await waitFor(async () => {
      const o = await overview(web.pool, web.queues);
      const mine = o.owed.consumers.find((c) => c.consumer === LACKING);
      const others = o.owed.consumers.filter((c) => c.consumer !== LACKING).reduce((t, c) => t + c.events, 0);
      return mine && mine.events > 0 && others === 0 && o.owed.withoutLiveWorker.includes(LACKING) ? o : null;
    }, { timeoutMs: 60_000, intervalMs: 300, what: 'the unrun handler to show as owed' }))!;
    expect(ov.owed.withoutLiveWorker).toEqual([LACKING]);
    const ready = await readiness(web.pool, web.queues.handlers);
    expect(ready.checks.consumers.withoutLiveWorker).toEqual([LACKING]);
    expect(await s.db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_processing_failures`)).toBe(0);
    // Its work waits on its own queue; a worker that runs it takes it all, exactly once.
    s.workers.push(spawnTs('workers/worker.ts', s.env));
    await drained(s, web);
    await expectClean(s);
  });
});
