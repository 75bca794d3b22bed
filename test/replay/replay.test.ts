import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { startWorkerHost, type WorkerHost } from '../../src/app/workerHost.js';
import { createEventGenerator } from '../../src/demo/eventGenerator.js';
import { defaultProjections } from '../../src/projections/index.js';
import { createReplayService, type ReplayApi } from '../../src/replay/ReplayService.js';
import { startReplayWorker } from '../../src/app/replayWorker.js';
import { disposeTestContainer, idle, queueCounts, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';
import { actualDocs, diffDocs, expectedDocs } from '../support/readModels.js';

const EVENTS = Number(process.env.REPLAY_TEST_EVENTS ?? 200_000);
let db: TestDb;
let c: Container;
let host: WorkerHost;
let replay: ReturnType<typeof startReplayWorker>;
let service: ReplayApi;
const n = z.object({ n: z.number() });
const count = (q: ReturnType<typeof sql.unsafe>) => db.pool.oneFirst(sql.type(n)`${q}`);

beforeAll(async () => {
  db = await createTestDb('replay', { poolSize: 10 });
  // Read models only: the comparison is projection against projection (handlers are covered, and
  // shown not to run during a replay, in rebuild.test.ts).
  c = await testContainer({
    DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix('replay'), WORKER_CONCURRENCY: '4', DATABASE_POOL_SIZE: '10', JOB_LOCK_MS: '5000',
    CONSUMERS: defaultProjections.map((p) => p.name).join(','),
  });
  host = await startWorkerHost(c, ['projections', 'relay']);
  replay = startReplayWorker(c);
  service = createReplayService({ pool: c.pool, queue: c.queues.replay, projections: c.projections, defaultChunk: 1000 });
});
afterAll(async () => {
  await replay?.close(5000);
  await host?.close(5000);
  await disposeTestContainer(c);
  await db?.drop();
});

const tableSnapshot = async (table: string) => JSON.stringify([...(await actualDocs(db.pool, table))]);

describe(`replay of ${EVENTS.toLocaleString('en-US')} events`, () => {
  it('a full replay of every projection equals, row by row, the read models the workers built live', { timeout: 480_000 }, async () => {
    const gen = createEventGenerator({ seed: 11, streams: Math.max(500, EVENTS / 10), runId: 'rp' });
    const t0 = Date.now();
    for (let i = 0; i < EVENTS; i += 1000) await c.bus.dispatchMany(gen.batch(Math.min(1000, EVENTS - i)));
    const seeded = Date.now();
    await waitFor(async () => idle(await queueCounts(c)) && (await count(sql.unsafe`SELECT count(*) AS n FROM event_outbox`)) === 0, { timeoutMs: 400_000, intervalMs: 500, what: 'live processing' });
    console.log(`seeded ${EVENTS} in ${seeded - t0} ms; live processing done after ${Date.now() - t0} ms`);
    const live = await Promise.all(defaultProjections.map((p) => tableSnapshot(p.table)));
    const storeBefore = await count(sql.unsafe`SELECT count(*) AS n FROM event_store`);

    // Dry run: reports, writes nothing.
    const dry = await service.dryRun({});
    expect(dry.projections.map((p) => p.name)).toEqual(defaultProjections.map((p) => p.name));
    expect(dry.events).toBeGreaterThan(0);

    const r0 = Date.now();
    const { jobId } = await service.enqueue({});
    const status = await waitFor(async () => {
      const s = await service.status(jobId);
      return s && (s.state === 'completed' || s.state === 'failed') ? s : null;
    }, { timeoutMs: 240_000, intervalMs: 250, what: 'the replay' }).then((s) => s!);
    expect(status.failedReason).toBeNull();
    expect(status.state).toBe('completed');
    console.log(`replayed all projections in ${Date.now() - r0} ms`, JSON.stringify(status.result));

    const rebuilt = await Promise.all(defaultProjections.map((p) => tableSnapshot(p.table)));
    for (let i = 0; i < live.length; i++) expect(rebuilt[i] === live[i], `${defaultProjections[i]!.name} differs after replay`).toBe(true);
    for (const p of defaultProjections) expect(diffDocs(await expectedDocs(db.pool, p), await actualDocs(db.pool, p.table))).toEqual([]);
    // A replay appends nothing.
    expect(await count(sql.unsafe`SELECT count(*) AS n FROM event_store`)).toBe(storeBefore);
    const gens = await db.pool.anyFirst(sql.type(z.object({ generation: z.number() }))`SELECT generation FROM event_projections ORDER BY name`);
    expect(gens).toEqual([2, 2, 2]);
  });
});
