import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { refreshGauges } from '../../src/app/gauges.js';
import { startReplayWorker } from '../../src/app/replayWorker.js';
import { startWorkerHost, type WorkerHost } from '../../src/app/workerHost.js';
import { createEventGenerator } from '../../src/demo/eventGenerator.js';
import { pruneFailures, pruneLedger } from '../../src/consumers/retention.js';
import { overview } from '../../src/http/queries/overview.js';
import { registry } from '../../src/metrics/metrics.js';
import { createReplayService, type ReplayApi } from '../../src/replay/ReplayService.js';
import { disposeTestContainer, idle, queueCounts, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';
import { spawnTs } from '../support/processes.js';

let db: TestDb;
let c: Container;
let host: WorkerHost;
let service: ReplayApi;
let env: Record<string, string>;
let cutoff: string;
/** Read-model checksums after a full rebuild before anything was archived. */
let rebuiltBefore: Record<string, string | null>;
let storeBefore: string | null;
const n = z.object({ n: z.number() });
const h = z.object({ h: z.string().nullable() });

const count = (q: ReturnType<typeof sql.unsafe>) => db.pool.oneFirst(sql.type(n)`SELECT (${q})::int8 AS n`);
/** Every event (hot or archived) with the fields that must never change: id, stream, version, position, transaction. */
const storeHash = () =>
  db.pool.oneFirst(sql.type(h)`
    SELECT md5(string_agg(id::text || stream_id || ':' || version || ':' || global_position || ':' || transaction_id::text || payload::text, ',' ORDER BY global_position)) AS h
    FROM event_store_all`);
const tablesHash = () =>
  db.pool.oneFirst(sql.type(h)`
    SELECT md5(concat_ws('|',
      (SELECT string_agg(global_position::text, ',' ORDER BY global_position) FROM event_store),
      (SELECT string_agg(global_position::text, ',' ORDER BY global_position) FROM event_store_archive),
      (SELECT string_agg(stream_id || ':' || version || ':' || archived_version || ':' || updated_at::text, ',' ORDER BY stream_id) FROM event_streams),
      (SELECT count(*)::text FROM event_handler_ledger), (SELECT count(*)::text FROM event_processing_failures),
      (SELECT row_to_json(s)::text FROM event_archive_stats s))) AS h`);

async function rebuildAll(): Promise<Record<string, string | null>> {
  const replay = startReplayWorker(c);
  try {
    const { jobId } = await service.enqueue({ chunk: 200 });
    const s = await waitFor(async () => {
      const st = await service.status(jobId);
      return st && (st.state === 'completed' || st.state === 'failed') ? st : null;
    }, { timeoutMs: 120_000, intervalMs: 100, what: `replay ${jobId}` });
    expect(s!.state).toBe('completed');
  } finally {
    await replay.close();
  }
  const out: Record<string, string | null> = {};
  for (const p of c.projections)
    out[p.table] = await db.pool.oneFirst(sql.type(h)`SELECT md5(string_agg(id || ':' || doc::text, ',' ORDER BY id)) AS h FROM ${sql.identifier([p.table])}`);
  return out;
}

const settled = async () => idle(await queueCounts(c)) && (await count(sql.unsafe`SELECT count(*) FROM event_outbox`)) === 0 && (await count(sql.unsafe`SELECT count(*) FROM consumer_owed`)) === 0;

const archiveCli = (args: string[], extra: Record<string, string> = {}) => {
  const p = spawnTs('scripts/events-archive.ts', { ...env, ...extra }, args);
  return p.exited.then((e) => ({ ...e, output: p.output() }));
};

beforeAll(async () => {
  db = await createTestDb('archive', { poolSize: 10 });
  env = { DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix('archive'), JOB_LOCK_MS: '3000', DATABASE_POOL_SIZE: '10' };
  c = await testContainer(env);
  host = await startWorkerHost(c, ['handlers', 'projections', 'relay']);
  service = createReplayService({ pool: c.pool, queue: c.queues.replay, projections: c.projections, defaultChunk: 200 });
  // Old streams, then the cut-off, then streams that stay hot.
  const old = createEventGenerator({ seed: 31, streams: 300, runId: 'old' });
  for (let i = 0; i < 3000; i += 500) await c.bus.dispatchMany(old.batch(500));
  await waitFor(settled, { timeoutMs: 120_000, intervalMs: 200, what: 'live processing of the old streams' });
  cutoff = await db.pool.oneFirst(sql.type(z.object({ t: z.string() }))`SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t`);
  await waitFor(async () => (await db.pool.oneFirst(sql.type(z.object({ ok: z.boolean() }))`SELECT now() > ${cutoff}::timestamptz AS ok`)) || null, { what: 'the clock to pass the cut-off' });
  const recent = createEventGenerator({ seed: 32, streams: 100, runId: 'new' });
  for (let i = 0; i < 1000; i += 500) await c.bus.dispatchMany(recent.batch(500));
  await waitFor(settled, { timeoutMs: 120_000, intervalMs: 200, what: 'live processing of the recent streams' });
  rebuiltBefore = await rebuildAll();
  storeBefore = await storeHash();
}, 300_000);

afterAll(async () => {
  await host?.close(5000);
  await disposeTestContainer(c);
  await db?.drop();
});

describe('events:archive', () => {
  it('archive-dry-run-changes-nothing', async () => {
    const before = await tablesHash();
    const r = await archiveCli([`--before=${cutoff}`, '--ledger-before=0d', '--failures-before=0d', '--dry-run', '--json']);
    expect(r.code, r.output).toBe(0);
    const report = JSON.parse(r.output.trim().split('\n').at(-1)!) as { dryRun: boolean; events: { streams: number; events: number; bytesEstimate: number } };
    expect(report.dryRun).toBe(true);
    expect(report.events.streams).toBeGreaterThan(100);
    expect(report.events.events).toBeGreaterThan(1000);
    expect(report.events.bytesEstimate).toBeGreaterThan(0);
    expect(await tablesHash()).toBe(before);
    expect(await count(sql.unsafe`SELECT count(*) FROM event_store_archive`)).toBe(0);
  }, 60_000);

  it('archive-killed-half-way-resumes', async () => {
    // Monitor streams are never archived: alerting reads every monitor's whole history from the hot table.
    const eligible = await count(sql.unsafe`SELECT count(*) FROM event_streams WHERE updated_at < ${cutoff}::timestamptz AND stream_type <> 'monitor'`);
    // SIGKILL inside chunk 3, after its rows moved and before its commit: chunks 1 and 2 stay, 3 rolls back.
    const killed = await archiveCli([`--before=${cutoff}`, '--chunk=20'], { HDT_ARCHIVE_CRASH_IN_CHUNK: '3' });
    expect(killed.signal, killed.output).toBe('SIGKILL');
    expect(await count(sql.unsafe`SELECT count(*) FROM event_streams WHERE archived_version > 0`)).toBe(40);
    expect(await count(sql.unsafe`SELECT count(*) FROM event_store e JOIN event_streams s USING (stream_id) WHERE s.archived_version > 0`)).toBe(0);
    expect(await storeHash()).toBe(storeBefore);

    const resumed = await archiveCli([`--before=${cutoff}`, '--chunk=50', '--json']);
    expect(resumed.code, resumed.output).toBe(0);
    expect(await count(sql.unsafe`SELECT count(*) FROM event_streams WHERE archived_version > 0`)).toBe(eligible);
    // Recent streams stay hot; nothing lost, duplicated or renumbered.
    expect(await count(sql.unsafe`SELECT count(*) FROM event_streams WHERE updated_at >= ${cutoff}::timestamptz AND archived_version > 0`)).toBe(0);
    // A stream that received an event after the cut-off (alert streams, here) stays hot whole: never split.
    expect(await count(sql.unsafe`SELECT count(*) FROM event_store e JOIN event_streams s USING (stream_id) WHERE s.updated_at < ${cutoff}::timestamptz AND s.stream_type <> 'monitor'`)).toBe(0);
    expect(await count(sql.unsafe`SELECT count(*) FROM event_store_archive WHERE stream_type = 'monitor'`)).toBe(0);
    expect(await count(sql.unsafe`
      SELECT count(*) FROM event_store_archive a JOIN event_streams s USING (stream_id) WHERE s.updated_at >= ${cutoff}::timestamptz`)).toBe(0);
    expect(await count(sql.unsafe`SELECT count(*) FROM event_store e JOIN event_store_archive a USING (id)`)).toBe(0);
    expect(await storeHash()).toBe(storeBefore);
    const archived = await count(sql.unsafe`SELECT count(*) FROM event_store_archive`);
    expect(await count(sql.unsafe`SELECT events FROM event_archive_stats`)).toBe(archived);
    // A third run finds nothing left to do.
    const again = await archiveCli([`--before=${cutoff}`, '--json']);
    expect(JSON.parse(again.output.trim().split('\n').at(-1)!).events.events).toBe(0);
  }, 120_000);

  it('archive-then-rebuild-equals-rebuild-before', async () => {
    expect(await count(sql.unsafe`SELECT count(*) FROM event_store_archive`)).toBeGreaterThan(1000);
    expect(await rebuildAll()).toEqual(rebuiltBefore);
  }, 180_000);

  it('re-append-of-archived-id-is-idempotent', async () => {
    const pick = sql.type(z.object({ id: z.string(), stream_id: z.string(), version: z.number(), global_position: z.number(), event_type: z.string(), payload: z.unknown() }));
    const [a, b] = await db.pool.any(pick`
      SELECT DISTINCT ON (stream_id) id, stream_id, version, global_position, event_type, payload FROM event_store_archive ORDER BY stream_id, version DESC LIMIT 2`);
    const total = await count(sql.unsafe`SELECT count(*) FROM event_store_all`);
    const versions = await count(sql.unsafe`SELECT sum(version) FROM event_streams`);
    for (const expectedVersion of ['any', 'stream_exists', a!.version - 1] as const) {
      const r = await c.store.append(a!.stream_id, [{ id: a!.id, type: a!.event_type, payload: a!.payload as never }], { expectedVersion });
      expect(r.alreadyStored).toBe(true);
      expect(r.events[0]).toMatchObject({ id: a!.id, version: a!.version, position: a!.global_position });
    }
    const many = await c.store.appendMany([
      { streamId: a!.stream_id, events: [{ id: a!.id, type: a!.event_type, payload: a!.payload as never }] },
      { streamId: b!.stream_id, events: [{ id: b!.id, type: b!.event_type, payload: b!.payload as never }] },
    ]);
    expect(many.map((m) => [m.alreadyStored, m.events[0]!.position])).toEqual([[true, a!.global_position], [true, b!.global_position]]);
    expect(await count(sql.unsafe`SELECT count(*) FROM event_store_all`)).toBe(total);
    expect(await count(sql.unsafe`SELECT sum(version) FROM event_streams`)).toBe(versions);
  }, 60_000);

  it('append-to-archived-stream-continues-its-versions', async () => {
    const s = await db.pool.one(sql.type(z.object({ stream_id: z.string(), version: z.number(), ticket_id: z.string(), platform: z.string() }))`
      SELECT s.stream_id, s.version, a.payload->>'ticketId' AS ticket_id, a.payload->>'platform' AS platform
      FROM event_streams s JOIN event_store_archive a ON a.stream_id = s.stream_id AND a.version = 1 AND a.event_type = 'TicketDiscovered'
      WHERE s.archived_version > 0 ORDER BY s.stream_id LIMIT 1`);
    const soldOut = () => ({ type: 'TicketSoldOut', payload: { ticketId: s.ticket_id, platform: s.platform, soldOutAt: new Date().toISOString() } as never });
    const r = await c.store.append(s.stream_id, [soldOut()], { expectedVersion: s.version });
    expect(r.alreadyStored).toBe(false);
    expect(r.events[0]!.version).toBe(s.version + 1);
    const events = await c.store.readStream(s.stream_id);
    expect(events.map((e) => e.version)).toEqual(Array.from({ length: s.version + 1 }, (_, i) => i + 1));
    // A stale writer that still expects the archived version conflicts as usual.
    await expect(c.store.append(s.stream_id, [soldOut()], { expectedVersion: s.version })).rejects.toThrow(/expected/);
    // The revived stream is archived whole again once old.
    const at = await db.pool.oneFirst(sql.type(z.object({ t: z.string() }))`SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC' + interval '1 millisecond', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t`);
    await waitFor(async () => (await db.pool.oneFirst(sql.type(z.object({ ok: z.boolean() }))`SELECT now() > ${at}::timestamptz AS ok`)) || null, { what: 'the clock' });
    await waitFor(settled, { timeoutMs: 60_000, intervalMs: 100, what: 'the revived event to be processed' });
    const r2 = await archiveCli([`--before=${at}`, '--json']);
    expect(r2.code, r2.output).toBe(0);
    expect(await count(sql.unsafe`SELECT count(*) FROM event_store WHERE stream_id = ${s.stream_id}`)).toBe(0);
    expect((await c.store.readStream(s.stream_id)).map((e) => e.version)).toEqual(Array.from({ length: s.version + 1 }, (_, i) => i + 1));
  }, 120_000);

  it('ledger-retention-deletes-only-rows-of-archived-events-and-keeps-skipped-failures', async () => {
    // (The previous test archived every stream, so all ledger rows here belong to archived events but the ones of new alerts.)
    const hotLedger = await count(sql.unsafe`SELECT count(*) FROM event_handler_ledger l JOIN event_store e ON e.id = l.event_id`);
    const archivedLedger = await count(sql.unsafe`SELECT count(*) FROM event_handler_ledger l JOIN event_store_archive e ON e.id = l.event_id`);
    expect(archivedLedger).toBeGreaterThan(0);
    const dry = await pruneLedger(db.pool, { before: new Date(Date.now() + 1000), dryRun: true });
    expect(dry.rows).toBe(archivedLedger);
    const done = await pruneLedger(db.pool, { before: new Date(Date.now() + 1000), chunk: 500 });
    expect(done.rows).toBe(archivedLedger);
    expect(await count(sql.unsafe`SELECT count(*) FROM event_handler_ledger l JOIN event_store e ON e.id = l.event_id`)).toBe(hotLedger);
    expect(await count(sql.unsafe`SELECT count(*) FROM event_handler_ledger l JOIN event_store_archive e ON e.id = l.event_id`)).toBe(0);

    // Failures: a resolved (retried) one goes, a skipped one stays (rebuilds skip it), an open one stays.
    const ev = await db.pool.one(sql.type(z.object({ id: z.string(), stream_id: z.string(), global_position: z.number() }))`SELECT id, stream_id, global_position FROM event_store_all LIMIT 1`);
    for (const [consumer, status, skipped] of [['a', 'resolved', false], ['b', 'resolved', true], ['c', 'open', false]] as const)
      await db.pool.query(sql.unsafe`
        INSERT INTO event_processing_failures (consumer, consumer_kind, event_id, stream_id, event_type, global_position, attempts, error_message, status, skipped, resolved_at)
        VALUES (${`retention-${consumer}`}, 'handler', ${ev.id}, ${ev.stream_id}, 'X', ${ev.global_position}, 3, 'boom', ${status}, ${skipped}, ${status === 'resolved' ? sql.fragment`now() - interval '40 days'` : null})`);
    const f = await pruneFailures(db.pool, { before: new Date(Date.now() - 30 * 86_400_000) });
    expect(f.rows).toBe(1);
    expect(await db.pool.anyFirst(sql.type(z.object({ consumer: z.string() }))`SELECT consumer FROM event_processing_failures WHERE consumer LIKE 'retention-%' ORDER BY consumer`)).toEqual(['retention-b', 'retention-c']);
  }, 60_000);

  it('overview-and-metrics-report-store-and-archive-size', async () => {
    await db.pool.query(sql.unsafe`ANALYZE event_store`);
    const o = await overview(c.pool, c.queues);
    const archived = await count(sql.unsafe`SELECT count(*) FROM event_store_archive`);
    expect(o.storage.archivedEvents).toBe(archived);
    expect(o.storage.archivedBytes).toBeGreaterThan(0);
    expect(o.storage.hotBytes).toBeGreaterThan(0);
    expect(o.storage.hotEventsEstimate).toBe(await count(sql.unsafe`SELECT count(*) FROM event_store`));
    // Growth: every event recorded in the window (from the minute it starts in), archived since or not.
    expect(o.storage.eventsLast24h).toBe(await count(sql.unsafe`SELECT count(*) FROM event_store_all WHERE recorded_at >= date_trunc('minute', now() - interval '24 hours')`));
    expect(o.storage.ledgerRowsDeleted).toBeGreaterThan(0);
    await refreshGauges({ pool: c.pool, queues: c.queues, projections: [] });
    const text = await registry.metrics();
    expect(text).toContain(`hdt_event_store_events{table="archive"} ${archived}`);
    expect(text).toMatch(/hdt_event_store_bytes\{table="hot"\} [1-9]/);
    expect(text).toMatch(/hdt_event_store_events_last_24h \d+/);
  }, 60_000);

  it('rejects a cut-off in the future or unparsable, with exit 2', async () => {
    for (const bad of ['--before=tomorrow', `--before=${new Date(Date.now() + 86_400_000).toISOString()}`]) {
      const r = await archiveCli([bad]);
      expect(r.code, r.output).toBe(2);
    }
  }, 60_000);
});
