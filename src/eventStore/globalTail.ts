import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { afterCheckpoint, GLOBAL_ORDER } from './globalOrder.js';
import { StoredEventRow, START, type GlobalCheckpoint } from './types.js';

/**
 * Reads for a live tail (the SSE stream, `events:monitor --watch`): pages of the gap-free global order,
 * optionally only up to a checkpoint (a client catching up to what its broadcaster already read).
 */

const COLUMNS = sql.fragment`id, stream_id, stream_type, version, event_type, schema_version, payload, metadata,
  global_position, transaction_id::text AS transaction_id, occurred_at, recorded_at`;

export interface TailFilter {
  types?: readonly string[];
  stream?: string;
}

export async function readTailPage(
  db: CommonQueryMethods,
  after: GlobalCheckpoint,
  o: TailFilter & { limit: number; upTo?: GlobalCheckpoint },
): Promise<z.infer<typeof StoredEventRow>[]> {
  const conds = [
    afterCheckpoint(after),
    o.upTo ? sql.fragment`(transaction_id, global_position) <= (${o.upTo.transactionId}::xid8, ${o.upTo.position}::bigint)` : null,
    o.types?.length ? sql.fragment`event_type = ANY(${sql.array([...o.types], 'text')})` : null,
    o.stream !== undefined ? sql.fragment`stream_id = ${o.stream}` : null,
  ].filter((c) => c !== null);
  return [...(await db.any(sql.type(StoredEventRow)`SELECT ${COLUMNS} FROM event_store WHERE ${sql.join(conds, sql.fragment` AND `)} ${GLOBAL_ORDER} LIMIT ${o.limit}`))];
}

const Pair = z.object({ tx: z.string(), pos: z.number() });

/** The newest place in the gap-free order (what a caught-up reader has seen); START for an empty store. */
export async function tailHead(db: CommonQueryMethods): Promise<GlobalCheckpoint> {
  const r = await db.maybeOne(sql.type(Pair)`
    SELECT transaction_id::text AS tx, global_position AS pos FROM event_store
    WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY transaction_id DESC, global_position DESC LIMIT 1`);
  return r ? { transactionId: r.tx, position: r.pos } : START;
}

/**
 * The place in the gap-free order of the event at this global position (a client's `Last-Event-ID`),
 * archived events included; null if no event has it.
 */
export async function checkpointAt(db: CommonQueryMethods, position: number): Promise<GlobalCheckpoint | null> {
  const r = await db.maybeOne(sql.type(Pair)`
    SELECT transaction_id::text AS tx, global_position AS pos FROM event_store_all WHERE global_position = ${position} LIMIT 1`);
  return r ? { transactionId: r.tx, position: r.pos } : null;
}
