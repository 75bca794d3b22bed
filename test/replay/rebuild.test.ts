import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { startWorkerHost, type WorkerHost } from '../../src/app/workerHost.js';
import { createEventGenerator } from '../../src/demo/eventGenerator.js';
import { defaultProjections, TicketReadModelProjection } from '../../src/projections/index.js';
import { createReplayService, type ReplayApi, type ReplayProgress } from '../../src/replay/ReplayService.js';
import { startReplayWorker } from '../../src/app/replayWorker.js';
import { disposeTestContainer, idle, queueCounts, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';
import { spawnTs, stopAll, type Spawned } from '../support/processes.js';
import { actualDocs, diffDocs, expectedDocs } from '../support/readModels.js';

let db: TestDb;
let c: Container;
let host: WorkerHost;
let service: ReplayApi;
let env: Record<string, string>;
const procs: Spawned[] = [];
const n = z.object({ n: z.number() });

beforeAll(async () => {
  db = await createTestDb('rebuild', { poolSize: 10 });
  env = { DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix('rebuild'), JOB_LOCK_MS: '3000', DATABASE_POOL_SIZE: '10' };
  c = await testContainer(env);
  host = await startWorkerHost(c, ['handlers', 'projections', 'relay']);
  service = createReplayService({ pool: c.pool, queue: c.queues.replay, projections: c.projections, defaultChunk: 1000 });
  const gen = createEventGenerator({ seed: 21, streams: 3000, runId: 'rb' });
  for (let i = 0; i < 30_000; i += 1000) await c.bus.dispatchMany(gen.batch(1000));
  await waitFor(async () => idle(await queueCounts(c)) && (await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_outbox`)) === 0, { timeoutMs: 120_000, intervalMs: 300, what: 'live processing' });
});
afterAll(async () => {
  await stopAll(procs);
  await host?.close(5000);
  await disposeTestContainer(c);
  await db?.drop();
});

const waitDone = (jobId: string) =>
  waitFor(async () => {
    const s = await service.status(jobId);
    return s && (s.state === 'completed' || s.state === 'failed') ? s : null;
  }, { timeoutMs: 120_000, intervalMs: 100, what: `replay ${jobId}` }).then((s) => s!);

const checksum = async (table: string) =>
  db.pool.oneFirst(sql.type(z.object({ h: z.string().nullable() }))`SELECT md5(string_agg(id || ':' || doc::text, ',' ORDER BY id)) AS h FROM ${sql.identifier([table])}`);

describe('zero-downtime rebuild', () => {
  it('keeps answering from the old version while 1,000 new events arrive; afterwards the new version holds every event exactly once', async () => {
    const before = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM ticket_read_models`);
    const lastBefore = await db.pool.oneFirst(sql.type(n)`SELECT max(global_position) AS n FROM event_store`);
    const oldLedger = () => db.pool.oneFirst(sql.type(n)`
      SELECT count(*) AS n FROM event_handler_ledger l JOIN event_store e ON e.id = l.event_id WHERE e.global_position <= ${lastBefore}`);
    const ledgerBefore = await oldLedger();
    const replay = startReplayWorker(c);
    const { jobId } = await service.enqueue({ projection: TicketReadModelProjection.name, chunk: 100 });
    const gen = createEventGenerator({ seed: 22, streams: 400, runId: 'rb-live' });
    let reads = 0;
    let readerError: unknown = null;
    let sawRebuilding = false;
    let stopReader = false;
    const reader = (async () => {
      while (!stopReader) {
        try {
          const rows = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM ticket_read_models`);
          if (rows < before) throw new Error(`read model shrank to ${rows} (was ${before}) during the rebuild`);
          reads++;
          const s = await db.pool.maybeOneFirst(sql.type(z.object({ status: z.string() }))`SELECT status FROM event_projections WHERE name = ${TicketReadModelProjection.name}`);
          if (s === 'rebuilding') sawRebuilding = true;
        } catch (e) {
          readerError = e;
          return;
        }
      }
    })();
    let dispatched = 0;
    while (dispatched < 1000) {
      await c.bus.dispatchMany(gen.batch(50));
      dispatched += 50;
      await new Promise((r) => setTimeout(r, 20));
    }
    const status = await waitDone(jobId);
    stopReader = true;
    await reader;
    await replay.close(5000);
    expect(readerError).toBeNull();
    expect(status.state).toBe('completed');
    expect(sawRebuilding).toBe(true);
    expect(reads).toBeGreaterThan(10);
    await waitFor(async () => idle(await queueCounts(c)), { what: 'live jobs after the switch' });
    await waitFor(async () => diffDocs(await expectedDocs(db.pool, TicketReadModelProjection), await actualDocs(db.pool, 'ticket_read_models')).length === 0, { timeoutMs: 30_000, what: 'new version to match the store' }).catch(async (e) => {
      console.error(diffDocs(await expectedDocs(db.pool, TicketReadModelProjection), await actualDocs(db.pool, 'ticket_read_models')));
      throw e;
    });
    // Replays never run handlers: the events that existed before the rebuild have exactly the ledger rows they had.
    expect(await oldLedger()).toBe(ledgerBefore);
    const gen2 = await db.pool.oneFirst(sql.type(z.object({ generation: z.number() }))`SELECT generation FROM event_projections WHERE name = ${TicketReadModelProjection.name}`);
    expect(gen2).toBe(2);
  });

  it('--from replays a range without a reset and applies nothing twice', async () => {
    const before = await Promise.all(defaultProjections.map((p) => checksum(p.table)));
    const mid = await db.pool.oneFirst(sql.type(n)`SELECT (max(global_position) / 2)::int8 AS n FROM event_store`);
    const replay = startReplayWorker(c);
    const { jobId } = await service.enqueue({ from: mid, chunk: 500 });
    const s = await waitDone(jobId);
    await replay.close(5000);
    expect(s.state).toBe('completed');
    const replayed = (s.result as { projections: { events: number }[] }).projections;
    expect(replayed.every((p) => p.events > 0)).toBe(true);
    expect(await Promise.all(defaultProjections.map((p) => checksum(p.table)))).toEqual(before);
  });
});

describe('events:replay CLI', () => {
  it('--dry-run reports and writes nothing; an unknown projection exits non-zero listing the valid names', async () => {
    const tables = ['event_store', 'event_projections', 'projection_checkpoints', ...defaultProjections.map((p) => p.table)];
    const sums = async () => Promise.all(tables.map((t) => db.pool.oneFirst(sql.type(z.object({ h: z.string().nullable() }))`SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) AS h FROM ${sql.identifier([t])} t`)));
    const before = await sums();
    const jobsBefore = await c.queues.replay.count();
    const dry = spawnTs('scripts/events-replay.ts', env, ['--dry-run']);
    expect((await dry.exited).code).toBe(0);
    expect(dry.output()).toMatch(/TicketReadModelProjection/);
    expect(dry.output()).toMatch(/Dry run: nothing was written/);
    expect(await sums()).toEqual(before);
    expect(await c.queues.replay.count()).toBe(jobsBefore);

    const bad = spawnTs('scripts/events-replay.ts', env, ['--projection=NoSuchProjection']);
    expect((await bad.exited).code).not.toBe(0);
    expect(bad.output()).toMatch(/unknown projection "NoSuchProjection"; valid names: TicketReadModelProjection, PurchaseReadModelProjection, MonitoringReadModelProjection/);
    const badChunk = spawnTs('scripts/events-replay.ts', env, ['--chunk=abc']);
    expect((await badChunk.exited).code).not.toBe(0);
    expect(badChunk.output()).toMatch(/--chunk must be a non-negative integer/);
  });
});

describe('a replay worker killed half-way', () => {
  it('is resumed by another from the last committed chunk, with the same result as an uninterrupted replay', async () => {
    const live = await Promise.all(defaultProjections.map((p) => checksum(p.table)));
    const first = spawnTs('workers/replay.ts', env);
    procs.push(first);
    const { jobId } = await service.enqueue({ projection: TicketReadModelProjection.name, chunk: 100 });
    const progress = await waitFor(async () => {
      const s = await service.status(jobId);
      const p = s?.progress as ReplayProgress | null;
      return p && p.total > 0 && p.done >= p.total * 0.4 ? p : null;
    }, { timeoutMs: 60_000, intervalMs: 20, what: 'the replay to reach 40 %' });
    first.child.kill('SIGKILL');
    await first.exited;
    const second = spawnTs('workers/replay.ts', env);
    procs.push(second);
    const s = await waitDone(jobId);
    expect(s.state).toBe('completed');
    const result = (s.result as { projections: { resumedFrom: number; events: number }[] }).projections[0]!;
    expect(result.resumedFrom).toBeGreaterThanOrEqual(progress!.done - 1000);
    expect(result.resumedFrom).toBeGreaterThan(0);
    expect(await Promise.all(defaultProjections.map((p) => checksum(p.table)))).toEqual(live);
    for (const p of defaultProjections) expect(diffDocs(await expectedDocs(db.pool, p), await actualDocs(db.pool, p.table))).toEqual([]);
  });
});
