import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { z } from 'zod';

/**
 * Retention on the consumer side of the store (npm run events:archive; the event move itself is
 * src/eventStore/archive.ts): which streams are settled, and the handler ledger and failure rows that
 * may go. This folder owns the owed-work and failure tables.
 */

const n = z.object({ n: z.number() });

/**
 * Of these (locked) streams, those whose events nobody still owes work for. The owed horizon is the
 * lowest position still in the outbox or in a batch some consumer still owes; a stream qualifies when
 * its newest hot event is below it and it has no open failure and no parked projection checkpoint.
 */
export async function settledStreams(tx: CommonQueryMethods, streams: string[]): Promise<string[]> {
  return [
    ...(await tx.anyFirst(sql.type(z.object({ stream_id: z.string() }))`
      WITH horizon AS (
        SELECT least(
          (SELECT min(global_position) FROM event_outbox),
          (SELECT min(lower(b.positions)) FROM owed_batches b WHERE EXISTS (SELECT 1 FROM consumer_owed o WHERE o.job_key = b.job_key))
        ) AS h
      ), heads AS (
        SELECT e.stream_id, max(e.global_position) AS head FROM event_store e WHERE e.stream_id = ANY(${sql.array(streams, 'text')}) GROUP BY e.stream_id
      )
      SELECT s.stream_id FROM unnest(${sql.array(streams, 'text')}::text[]) AS s(stream_id)
      LEFT JOIN heads ON heads.stream_id = s.stream_id, horizon
      WHERE (horizon.h IS NULL OR heads.head IS NULL OR heads.head < horizon.h)
        AND NOT EXISTS (SELECT 1 FROM event_processing_failures f WHERE f.stream_id = s.stream_id AND f.status <> 'resolved')
        AND NOT EXISTS (SELECT 1 FROM projection_checkpoints c WHERE c.stream_id = s.stream_id AND c.parked)
      ORDER BY s.stream_id`)),
  ];
}

// ---- Ledger and failure retention ------------------------------------------------------------------

/**
 * `event_handler_ledger` rows are what make handlers exactly-once, so only rows of archived events go:
 * an event is archived only once nothing is owed for it (see settledStreams), no live path delivers an
 * archived event again (handler jobs load their events from event_store), and a replay never runs
 * handlers. Walks the archive in position order; deleting is idempotent, so a killed run just re-runs.
 */
export async function pruneLedger(pool: DatabasePool, options: { before: Date; dryRun?: boolean; chunk?: number }): Promise<{ rows: number }> {
  const chunk = options.chunk ?? 5000;
  const handlers = await pool.anyFirst(sql.type(z.object({ h: z.string() }))`
    WITH RECURSIVE h AS (
      SELECT min(handler) AS h FROM event_handler_ledger
      UNION ALL SELECT (SELECT min(handler) FROM event_handler_ledger WHERE handler > h.h) FROM h WHERE h.h IS NOT NULL
    ) SELECT h FROM h WHERE h IS NOT NULL`);
  if (handlers.length === 0) return { rows: 0 };
  const hs = sql.array([...handlers], 'text');
  let after = 0;
  let rows = 0;
  for (;;) {
    const r = await pool.transaction(async (tx) => {
      const page = await tx.one(sql.type(z.object({ ids: z.array(z.string()).nullable(), last: z.number().nullable() }))`
        SELECT array_agg(id::text) AS ids, max(global_position) AS last
        FROM (SELECT id, global_position FROM event_store_archive WHERE global_position > ${after} ORDER BY global_position LIMIT ${chunk}) p`);
      if (!page.ids || page.last === null) return null;
      const ids = sql.array(page.ids, 'uuid');
      const count = options.dryRun
        ? await tx.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_handler_ledger WHERE handler = ANY(${hs}) AND event_id = ANY(${ids}) AND processed_at < ${options.before.toISOString()}::timestamptz`)
        : await tx.oneFirst(sql.type(n)`
            WITH d AS (DELETE FROM event_handler_ledger WHERE handler = ANY(${hs}) AND event_id = ANY(${ids}) AND processed_at < ${options.before.toISOString()}::timestamptz RETURNING 1)
            SELECT count(*) AS n FROM d`);
      if (!options.dryRun && count > 0) await tx.query(sql.unsafe`UPDATE event_archive_stats SET ledger_deleted = ledger_deleted + ${count}, last_run_at = now()`);
      return { last: page.last, count };
    });
    if (!r) break;
    after = r.last;
    rows += r.count;
  }
  return { rows };
}

/**
 * Resolved failures resolved before the cut-off. Failures an operator resolved by skipping the event
 * are kept: every later rebuild of that consumer reads them to skip the event again.
 */
export async function pruneFailures(pool: DatabasePool, options: { before: Date; dryRun?: boolean; chunk?: number }): Promise<{ rows: number }> {
  const chunk = options.chunk ?? 5000;
  const cond = sql.fragment`status = 'resolved' AND NOT skipped AND resolved_at < ${options.before.toISOString()}::timestamptz`;
  if (options.dryRun) return { rows: await pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_processing_failures WHERE ${cond}`) };
  let after = 0;
  let rows = 0;
  for (;;) {
    const r = await pool.transaction(async (tx) => {
      const last = await tx.oneFirst(sql.type(z.object({ last: z.number().nullable() }))`
        SELECT max(id) AS last FROM (SELECT id FROM event_processing_failures WHERE id > ${after} ORDER BY id LIMIT ${chunk}) p`);
      if (last === null) return null;
      // The condition is on the deleted row itself: re-checked if a retry revives it meanwhile.
      const count = await tx.oneFirst(sql.type(n)`
        WITH d AS (DELETE FROM event_processing_failures WHERE id > ${after} AND id <= ${last} AND ${cond} RETURNING 1) SELECT count(*) AS n FROM d`);
      if (count > 0) await tx.query(sql.unsafe`UPDATE event_archive_stats SET failures_deleted = failures_deleted + ${count}, last_run_at = now()`);
      return { last, count };
    });
    if (!r) break;
    after = r.last;
    rows += r.count;
  }
  return { rows };
}

