import pg from 'pg';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refreshGauges } from '../../src/app/gauges.js';
import { settledStreams } from '../../src/consumers/retention.js';
import { createDbPool } from '../../src/db/pool.js';
import { readDemoStatus } from '../../src/demo/status.js';
import { createEventGenerator } from '../../src/demo/eventGenerator.js';
import { eventRegistry } from '../../src/domain/index.js';
import { archiveEvents } from '../../src/eventStore/archive.js';
import { eventTotals, foldCounters, vacuumCounterDeltas, windowCounts } from '../../src/eventStore/counters.js';
import { PostgresEventStore } from '../../src/eventStore/PostgresEventStore.js';
import { overview } from '../../src/http/queries/overview.js';
import { statistics } from '../../src/http/queries/statistics.js';
import { createLogger } from '../../src/logger.js';
import { defaultProjections } from '../../src/projections/index.js';
import { projectionLags, projectionStatuses, streamTypesOf } from '../../src/projections/status.js';
import { ReplayEngine } from '../../src/replay/ReplayEngine.js';
import { createTestDb, waitFor, type TestDb } from '../support/db.js';

// Monitoring reads counters kept as events are appended (migration 1700000000013); these tests compare
// them with a count(*) over the store computed here, after the situations that could make them drift.

let db: TestDb;
let store: PostgresEventStore;
beforeAll(async () => {
  db = await createTestDb('counters');
  store = new PostgresEventStore(db.pool);
}, 60_000);
afterAll(async () => {
  // The no-scan test replaces db.pool (its statistics must be flushed); end whichever is current.
  await db?.pool.end();
  await db?.drop();
});

const N = z.object({ n: z.number() });
/** The one number a query returns, whatever its column is called. */
const count = async (q: ReturnType<typeof sql.unsafe>) => Number(Object.values(await db.pool.one(q))[0]);

/** Appends n generated events (valid, several platforms and stream types) in batches of `batch`. */
async function produce(s: PostgresEventStore, runId: string, n: number, batch: number): Promise<void> {
  const gen = createEventGenerator({ seed: runId.length * 7 + n, streams: Math.max(5, Math.floor(n / 8)), runId });
  for (let done = 0; done < n; done += batch) {
    const byStream = new Map<string, { streamType: string; events: { type: string; payload: unknown; schemaVersion: number }[] }>();
    for (const e of gen.batch(Math.min(batch, n - done))) {
      const v = eventRegistry.validate(e.type, e.payload);
      const { streamId, streamType } = eventRegistry.streamOf(v);
      const entry = byStream.get(streamId) ?? { streamType, events: [] };
      entry.events.push({ type: v.type, payload: v.payload, schemaVersion: eventRegistry.currentVersion(v.type) });
      byStream.set(streamId, entry);
    }
    const appends = [...byStream].map(([streamId, x]) => ({ streamId, streamType: x.streamType, events: x.events }));
    // Single-stream appends take hdt_append_events, several streams hdt_append_batch: both are counted.
    if (batch === 1) for (const a of appends) await s.append(a.streamId, a.events, { streamType: a.streamType });
    else await s.appendMany(appends);
  }
}

const TypeCount = z.object({ type: z.string(), count: z.number() });
const PlatformCount = z.object({ platform: z.string(), count: z.number() });

/** The ground truth, from every stored event (hot and archived). */
async function truth(since: Date) {
  const s = since.toISOString();
  return {
    total: await count(sql.unsafe`SELECT count(*) FROM event_store_all`),
    byType: await db.pool.any(sql.type(TypeCount)`SELECT event_type AS type, count(*) AS count FROM event_store_all GROUP BY 1 ORDER BY 2 DESC, 1`),
    streams: await count(sql.unsafe`SELECT count(*) FROM event_streams`),
    windowByType: await db.pool.any(sql.type(TypeCount)`SELECT event_type AS type, count(*) AS count FROM event_store_all WHERE recorded_at >= ${s}::timestamptz GROUP BY 1 ORDER BY 2 DESC, 1`),
    windowByPlatform: await db.pool.any(sql.type(PlatformCount)`
      SELECT payload->>'platform' AS platform, count(*) AS count FROM event_store_all
      WHERE recorded_at >= ${s}::timestamptz AND payload->>'platform' IS NOT NULL GROUP BY 1 ORDER BY 2 DESC, 1`),
    today: await count(sql.unsafe`SELECT count(*) FROM event_store_all WHERE recorded_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'`),
  };
}

const sorted = <T extends { count: number }>(xs: readonly T[], key: (x: T) => string) => [...xs].sort((a, b) => b.count - a.count || (key(a) < key(b) ? -1 : 1));

/** Overview and statistics (and the counters under them) equal the ground truth. */
async function expectCountersMatchTruth(): Promise<void> {
  const since = new Date(Date.now() - 3 * 3600 * 1000); // minute-aligned below, as statistics counts
  const t = await truth(new Date(Math.floor(since.getTime() / 60_000) * 60_000));
  const totals = await eventTotals(db.pool);
  expect(totals.total).toBe(t.total);
  expect(totals.streams).toBe(t.streams);
  expect(sorted(totals.byType, (x) => x.type)).toEqual(sorted(t.byType, (x) => x.type));
  const ov = await overview(db.pool, {});
  expect(ov.total_events).toBe(t.total);
  expect(ov.events_today).toBe(t.today);
  expect(sorted(ov.event_types, (x) => x.type)).toEqual(sorted(t.byType, (x) => x.type));
  const st = await statistics(db.pool, since);
  expect(st.total).toBe(t.windowByType.reduce((n, x) => n + x.count, 0));
  expect(sorted(st.byType, (x) => x.type)).toEqual(sorted(t.windowByType, (x) => x.type));
  expect(sorted(st.byPlatform, (x) => x.platform)).toEqual(sorted(t.windowByPlatform, (x) => x.platform));
  expect(st.byHour.reduce((n, h) => n + h.count, 0)).toBe(st.total);
}

/** The lag as the monitoring surfaces computed it before the counters: every stream joined to its checkpoint. */
async function lagTruth(name: string, streamTypes: string[]): Promise<number> {
  return count(sql.unsafe`
    SELECT coalesce(sum(s.version - coalesce(c.version, 0)), 0)::int8 AS n
    FROM event_streams s
    LEFT JOIN event_projections ep ON ep.name = ${name}
    LEFT JOIN projection_checkpoints c ON c.projection = ${name} AND c.generation = coalesce(ep.generation, 1) AND c.stream_id = s.stream_id
    WHERE s.stream_type = ANY(${sql.array(streamTypes, 'text')})`);
}

async function expectLagsMatchTruth(): Promise<void> {
  const ps = defaultProjections.map((p) => ({ name: p.name, streamTypes: streamTypesOf(p) }));
  const lags = await projectionLags(db.pool, ps);
  for (const p of ps) expect({ p: p.name, lag: lags.get(p.name)!.lagEvents }).toEqual({ p: p.name, lag: await lagTruth(p.name, p.streamTypes) });
}

describe('event counters', () => {
  it('counters-survive-concurrent-appends-and-folds', async () => {
    // Six producers at once (batches and single-stream appends) while two folders run in a loop: no
    // append may be lost or counted twice between the delta table and the counters.
    let folding = true;
    const folder = async () => {
      while (folding) await foldCounters(db.pool);
    };
    const folders = [folder(), folder()];
    await Promise.all([
      produce(store, 'p1', 1500, 100),
      produce(store, 'p2', 1500, 250),
      produce(store, 'p3', 1000, 50),
      produce(store, 'p4', 1000, 500),
      produce(store, 'p5', 120, 1),
      produce(store, 'p6', 120, 1),
    ]);
    folding = false;
    await Promise.all(folders);
    // The worker's periodic vacuum of the delta tables runs outside a transaction, beside appends.
    await vacuumCounterDeltas(db.pool);
    await expectCountersMatchTruth();
    // Also with deltas left unfolded: reads add them.
    await produce(store, 'p7', 300, 30);
    expect(await count(sql.unsafe`SELECT count(*) FROM event_counter_deltas`)).toBeGreaterThan(0);
    const t = await truth(new Date(0));
    expect((await eventTotals(db.pool)).total).toBe(t.total);
    await expectCountersMatchTruth();
  }, 120_000);

  it('statistics-window-starts-at-its-minute-across-hour-and-minute-rows', async () => {
    // Events recorded 90 and 30 minutes ago: a 70-minute window must take the first from neither
    // and the second from whichever grain holds it.
    await db.pool.query(sql.unsafe`
      UPDATE event_store SET recorded_at = now() - interval '90 minutes' WHERE global_position IN (SELECT global_position FROM event_store ORDER BY global_position LIMIT 40)`);
    await db.pool.query(sql.unsafe`
      UPDATE event_store SET recorded_at = now() - interval '30 minutes' WHERE global_position IN (SELECT global_position FROM event_store ORDER BY global_position OFFSET 40 LIMIT 40)`);
    // Moving recorded_at is not something the store does: recount, as a migration would.
    await recount();
    const since = new Date(Date.now() - 70 * 60_000);
    const floor = new Date(Math.floor(since.getTime() / 60_000) * 60_000);
    const w = await windowCounts(db.pool, since);
    expect(w.since.toISOString()).toBe(floor.toISOString());
    const t = await truth(floor);
    expect(sorted(w.byType, (x) => x.type)).toEqual(sorted(t.windowByType, (x) => x.type));
    expect(sorted(w.byPlatform, (x) => x.platform)).toEqual(sorted(t.windowByPlatform, (x) => x.platform));
    await expectCountersMatchTruth();
  }, 60_000);

  it('counters-keep-archived-events-in-totals', async () => {
    const before = await truth(new Date(0));
    // Everything delivered (no outbox rows, nothing owed), every non-monitor stream old enough.
    await db.pool.query(sql.unsafe`DELETE FROM event_outbox`);
    await db.pool.query(sql.unsafe`UPDATE event_streams SET updated_at = now() - interval '40 days'`);
    const r = await archiveEvents(db.pool, { before: new Date(Date.now() - 30 * 86_400_000), settled: settledStreams, chunkStreams: 200 });
    expect(r.events).toBeGreaterThan(1000);
    expect(await count(sql.unsafe`SELECT count(*) FROM event_store_archive`)).toBe(r.events);
    const ov = await overview(db.pool, {});
    expect(ov.total_events).toBe(before.total);
    expect(ov.storage.archivedEvents).toBe(r.events);
    await expectCountersMatchTruth();
    // Appending to an archived stream again is counted once more, and nothing else changes.
    await produce(store, 'p8', 200, 50);
    await expectCountersMatchTruth();
  }, 120_000);

  it('projection-lag-from-counters-equals-the-stream-join-after-rebuilds', async () => {
    const engine = new ReplayEngine(db.pool, (_t, schemaVersion, payload) => ({ schemaVersion, payload }), createLogger('silent'));
    await expectLagsMatchTruth();
    for (const p of defaultProjections) await engine.run(p, { jobId: `counters-${p.name}-1`, from: null, chunk: 500 });
    await expectLagsMatchTruth();
    const lags = await projectionLags(db.pool, defaultProjections.map((p) => ({ name: p.name, streamTypes: streamTypesOf(p) })));
    for (const [, l] of lags) expect(l.lagEvents).toBe(0);
    // New events: lag again, by exactly the events of each projection's stream types.
    await produce(store, 'p9', 400, 40);
    await expectLagsMatchTruth();
    // A second rebuild writes a new generation and drops the old one's checkpoints.
    for (const p of defaultProjections) await engine.run(p, { jobId: `counters-${p.name}-2`, from: null, chunk: 500 });
    await foldCounters(db.pool);
    await expectLagsMatchTruth();
    expect(await count(sql.unsafe`SELECT count(*) FROM projection_counters WHERE (projection, generation) NOT IN (SELECT name, generation FROM event_projections)`)).toBe(0);
    const statuses = await projectionStatuses(db.pool, defaultProjections);
    for (const s of statuses) {
      expect(s.lagEvents).toBe(0);
      expect(s.checkpointPosition).toBe(
        await count(sql.unsafe`SELECT coalesce(max(global_position), 0) AS n FROM projection_checkpoints WHERE projection = ${s.name} AND generation = ${s.generation}`),
      );
      const newest = await db.pool.oneFirst(sql.type(z.object({ u: z.string().nullable() }))`
        SELECT max(updated_at) AS u FROM projection_checkpoints WHERE projection = ${s.name} AND generation = ${s.generation}`);
      expect(s.lastUpdatedAt).toBe(newest);
    }
    const status = await readDemoStatus(db.pool, defaultProjections);
    expect(status.events).toBe(await count(sql.unsafe`SELECT count(*) FROM event_store_all`));
    expect(status.lag).toBe(0);
    expect(status.alerts).toBe(await count(sql.unsafe`SELECT count(*) FROM event_store_all WHERE event_type = 'AlertTriggered'`));
  }, 180_000);

  it('monitoring-surfaces-do-not-scan-the-store', async () => {
    // Table statistics of a backend are flushed when it exits, so the monitoring calls run on a pool
    // of their own that is closed before the counts are read. Nothing else runs in this database.
    await foldCounters(db.pool);
    await db.pool.query(sql.unsafe`ANALYZE`);
    const watched = ['event_store', 'event_store_archive', 'event_streams', 'projection_checkpoints'];
    const stats = async () => {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      try {
        const { rows } = await c.query<{ relname: string; seq_scan: string; tup: string }>(
          `SELECT t.relname, t.seq_scan, coalesce((SELECT sum(i.idx_tup_read) FROM pg_stat_user_indexes i WHERE i.relid = t.relid), 0) AS tup
           FROM pg_stat_user_tables t WHERE t.relname = ANY($1)`,
          [watched],
        );
        return Object.fromEntries(rows.map((r) => [r.relname, { seqScans: Number(r.seq_scan), indexTuples: Number(r.tup) }]));
      } finally {
        await c.end();
      }
    };
    const app = 'hdt:flatness-probe';
    const gone = async () =>
      (await db.pool.oneFirst(sql.type(N)`SELECT count(*)::int8 AS n FROM pg_stat_activity WHERE application_name = ${app}`)) === 0;
    // Our own pool's pending statistics are flushed at its connections' exit too: recycle it first.
    await db.pool.end();
    db.pool = await createDbPool(db.url, { maximumPoolSize: 4 });
    const base = await stats();
    const url = new URL(db.url);
    url.searchParams.set('application_name', app);
    const probe: DatabasePool = await createDbPool(url.toString(), { maximumPoolSize: 4 });
    const CALLS = 5;
    for (let i = 0; i < CALLS; i++) {
      await overview(probe, {});
      await statistics(probe, new Date(Date.now() - 24 * 3600 * 1000));
      await projectionStatuses(probe, defaultProjections);
      await refreshGauges({ pool: probe, queues: {}, projections: defaultProjections.map((p) => ({ name: p.name, streamTypes: streamTypesOf(p) })) });
      await readDemoStatus(probe, defaultProjections);
    }
    await probe.end();
    await waitFor(gone, { what: 'the probe connections to exit' });
    const after = await stats();
    for (const t of watched) {
      // No sequential scan, and at most a handful of index entries per call (the newest event's row,
      // the newest checkpoint change): nothing that grows with the store.
      expect({ t, seqScans: after[t]!.seqScans - base[t]!.seqScans }).toEqual({ t, seqScans: 0 });
      expect({ t, ok: after[t]!.indexTuples - base[t]!.indexTuples <= CALLS * 10 }).toEqual({ t, ok: true });
    }
  }, 120_000);
});

/** Rebuilds the counters from the store (what the migration's backfill does). */
async function recount(): Promise<void> {
  await db.pool.transaction(async (tx) => {
    await tx.query(sql.unsafe`DELETE FROM event_counter_deltas`);
    await tx.query(sql.unsafe`DELETE FROM event_counters`);
    await tx.query(sql.unsafe`
      INSERT INTO event_counter_deltas (minute, event_type, stream_type, platform, events, streams)
      SELECT date_trunc('minute', recorded_at), event_type, stream_type, payload->>'platform', count(*), count(*) FILTER (WHERE version = 1)
      FROM event_store_all GROUP BY 1, 2, 3, 4`);
  });
  await foldCounters(db.pool);
}
