import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { eventsSince } from './counters.js';

/**
 * Retention: `event_store` → `event_store_archive` (migration 1700000000010), by whole streams.
 *
 * A stream is archived when its last event is older than the cut-off (event_streams.updated_at, set by
 * every append) and everything owed for its events is settled (options.settled: no outbox row, no
 * owed batch still owed by a consumer covering its events, no open failure, no parked checkpoint). Rows move
 * with their global_position, transaction_id and version (nothing is renumbered); the stream's
 * event_streams row stays, with archived_version = the version archived up to, so an append to it
 * later continues its versions and checks the archive for re-sent ids.
 *
 * One transaction per chunk of streams: lock the event_streams rows (FOR UPDATE SKIP LOCKED, in
 * stream_id order, the lock order of every append; the WHERE is re-checked on the locked row, so a
 * stream that received an event meanwhile is no longer old and stays), move its events with one
 * DELETE … RETURNING → INSERT … ON CONFLICT DO NOTHING, set archived_version, bump the counters. A kill
 * loses at most the open chunk (rolled back); a re-run skips what is archived (version = archived_version).
 */

export interface ArchiveCandidates {
  streams: number;
  events: number;
  /** Estimate: events × the hot table's average bytes per row (indexes included). */
  bytesEstimate: number;
}

export interface ArchiveProgress {
  chunk: number;
  streams: number;
  events: number;
  bytes: number;
  skippedUnsettled: number;
}

export interface ArchiveRunOptions {
  before: Date;
  /** Streams per transaction (default 500). */
  chunkStreams?: number;
  onChunk?: (p: ArchiveProgress) => void | Promise<void>;
  /**
   * Of these locked streams, those nothing is owed for (no outbox row, no owed batch, no open failure,
   * no parked checkpoint): `settledStreams` of src/consumers/retention.ts, which owns those tables.
   */
  settled: (tx: CommonQueryMethods, streams: string[]) => Promise<string[]>;
  /** Test hook: in this chunk (1-based), call it after the move and before the commit (e.g. SIGKILL self). */
  crashInChunk?: { chunk: number; crash: () => void };
}

const Candidate = z.object({ stream_id: z.string(), version: z.number(), archived_version: z.number() });
const Moved = z.object({ events: z.number(), bytes: z.number() });

export async function archiveCandidates(db: CommonQueryMethods, before: Date): Promise<ArchiveCandidates> {
  const r = await db.one(sql.type(z.object({ streams: z.number(), events: z.number(), per_row: z.number() }))`
    SELECT count(*)::int8 AS streams, coalesce(sum(version - archived_version), 0)::int8 AS events,
           (SELECT CASE WHEN c.reltuples > 0 THEN pg_total_relation_size('event_store') / c.reltuples ELSE 0 END FROM pg_class c WHERE c.oid = 'event_store'::regclass)::float8 AS per_row
    FROM event_streams WHERE updated_at < ${before.toISOString()}::timestamptz AND version > archived_version AND stream_type <> 'monitor'`);
  // Never analysed (reltuples unknown): fall back on the average row size of the candidates' events.
  const perRow = r.per_row > 0 ? r.per_row : r.events > 0 ? await averageRowBytes(db) : 0;
  return { streams: r.streams, events: r.events, bytesEstimate: Math.round(r.events * perRow) };
}

async function averageRowBytes(db: CommonQueryMethods): Promise<number> {
  return db.oneFirst(sql.type(z.object({ b: z.number() }))`
    SELECT coalesce(avg(pg_column_size(e.*)), 0)::float8 * 2 AS b FROM (SELECT * FROM event_store LIMIT 1000) e`);
}

/** Archives every eligible stream, chunk by chunk; returns the totals of this run. */
export async function archiveEvents(pool: DatabasePool, options: ArchiveRunOptions): Promise<ArchiveProgress> {
  const chunkStreams = options.chunkStreams ?? 500;
  const total: ArchiveProgress = { chunk: 0, streams: 0, events: 0, bytes: 0, skippedUnsettled: 0 };
  let after = '';
  for (;;) {
    const chunkNo = total.chunk + 1;
    const r = await pool.transaction(async (tx) => {
      const locked = await tx.any(sql.type(Candidate)`
        SELECT stream_id, version, archived_version FROM event_streams
        WHERE stream_id > ${after} AND updated_at < ${options.before.toISOString()}::timestamptz AND version > archived_version
          -- Monitor streams stay hot: alerting reads every monitor's whole start/stop history on its hot path.
          AND stream_type <> 'monitor'
        ORDER BY stream_id LIMIT ${chunkStreams} FOR UPDATE SKIP LOCKED`);
      if (locked.length === 0) return null;
      const ids = locked.map((s) => s.stream_id);
      const settled = new Set(await options.settled(tx, ids));
      const ok = locked.filter((s) => settled.has(s.stream_id));
      let moved = { events: 0, bytes: 0 };
      if (ok.length) {
        const okIds = sql.array(ok.map((s) => s.stream_id), 'text');
        moved = await tx.one(sql.type(Moved)`
          WITH gone AS (
            DELETE FROM event_store WHERE stream_id = ANY(${okIds})
            RETURNING global_position, id, stream_id, stream_type, version, event_type, schema_version, payload, metadata,
                      transaction_id, occurred_at, recorded_at, pg_column_size(event_store.*) AS bytes
          ), ins AS (
            INSERT INTO event_store_archive (global_position, id, stream_id, stream_type, version, event_type, schema_version, payload, metadata, transaction_id, occurred_at, recorded_at)
            SELECT global_position, id, stream_id, stream_type, version, event_type, schema_version, payload, metadata, transaction_id, occurred_at, recorded_at
            FROM gone ORDER BY global_position
            ON CONFLICT DO NOTHING
          )
          SELECT count(*)::int8 AS events, coalesce(sum(bytes), 0)::int8 AS bytes FROM gone`);
        await tx.query(sql.unsafe`UPDATE event_streams SET archived_version = version WHERE stream_id = ANY(${okIds})`);
        await tx.query(sql.unsafe`
          UPDATE event_archive_stats SET streams = streams + ${ok.filter((s) => s.archived_version === 0).length},
            events = events + ${moved.events}, last_cutoff = ${options.before.toISOString()}::timestamptz, last_run_at = now()`);
      }
      if (options.crashInChunk?.chunk === chunkNo) options.crashInChunk.crash();
      return { last: locked[locked.length - 1]!.stream_id, streams: ok.length, skipped: locked.length - ok.length, ...moved };
    });
    if (!r) break;
    after = r.last;
    total.chunk = chunkNo;
    total.streams += r.streams;
    total.events += r.events;
    total.bytes += r.bytes;
    total.skippedUnsettled += r.skipped;
    await options.onChunk?.({ ...total });
  }
  return total;
}

// ---- Sizes for the overview and /metrics -----------------------------------------------------------

export const StoreSizesSchema = z.object({
  /** Hot events: the planner's estimate (pg_class.reltuples), no count(*). */
  hotEventsEstimate: z.number().int(),
  hotBytes: z.number().int(),
  /** Exact: counted by the archiver as it moves events. */
  archivedEvents: z.number().int(),
  archivedStreams: z.number().int(),
  archivedBytes: z.number().int(),
  /** Events recorded in the last 24 h (from the minute the window starts in; counters, no scan) and the bytes they take, estimated. */
  eventsLast24h: z.number().int(),
  bytesPerDayEstimate: z.number().int(),
  ledgerRowsDeleted: z.number().int(),
  failuresDeleted: z.number().int(),
  lastArchiveAt: z.string().nullable(),
});
export type StoreSizes = z.infer<typeof StoreSizesSchema>;

export async function storeSizes(db: CommonQueryMethods): Promise<StoreSizes> {
  const r = await db.one(sql.type(z.object({
    hot: z.number(), hot_bytes: z.number(), archived: z.number(), streams: z.number(), archived_bytes: z.number(),
    ledger: z.number(), failures: z.number(), last_run_at: z.string().nullable(),
  }))`
    SELECT greatest((SELECT reltuples FROM pg_class WHERE oid = 'event_store'::regclass), 0)::int8 AS hot,
           pg_total_relation_size('event_store')::int8 AS hot_bytes,
           s.events AS archived, s.streams, pg_total_relation_size('event_store_archive')::int8 AS archived_bytes,
           s.ledger_deleted AS ledger, s.failures_deleted AS failures, s.last_run_at
    FROM event_archive_stats s`);
  const last24h = await eventsSince(db, new Date(Date.now() - 24 * 3600 * 1000));
  return {
    hotEventsEstimate: r.hot,
    hotBytes: r.hot_bytes,
    archivedEvents: r.archived,
    archivedStreams: r.streams,
    archivedBytes: r.archived_bytes,
    eventsLast24h: last24h,
    bytesPerDayEstimate: r.hot > 0 ? Math.round((last24h * r.hot_bytes) / r.hot) : 0,
    ledgerRowsDeleted: r.ledger,
    failuresDeleted: r.failures,
    lastArchiveAt: r.last_run_at,
  };
}
