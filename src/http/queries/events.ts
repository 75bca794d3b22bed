import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { StoredEventRow, type Upcaster } from '../../eventStore/types.js';

export const EventViewSchema = z.object({
  id: z.string(),
  streamId: z.string(),
  streamType: z.string(),
  version: z.number().int(),
  type: z.string(),
  schemaVersion: z.number().int(),
  payload: z.unknown(),
  metadata: z.record(z.unknown()),
  position: z.number().int(),
  occurredAt: z.string(),
  recordedAt: z.string(),
});
export type EventView = z.infer<typeof EventViewSchema>;

const COLUMNS = sql.fragment`id, stream_id, stream_type, version, event_type, schema_version, payload, metadata,
  global_position, transaction_id::text AS transaction_id, occurred_at, recorded_at`;

export function toEventView(r: z.infer<typeof StoredEventRow>, upcast?: Upcaster): EventView {
  let schemaVersion = r.schema_version;
  let payload = r.payload;
  if (upcast) {
    // A stored row that no longer upcasts is still shown, as stored, rather than failing the whole page.
    try {
      ({ schemaVersion, payload } = upcast(r.event_type, r.schema_version, r.payload));
    } catch {
      /* shown as stored */
    }
  }
  return {
    id: r.id,
    streamId: r.stream_id,
    streamType: r.stream_type,
    version: r.version,
    type: r.event_type,
    schemaVersion,
    payload,
    metadata: r.metadata,
    position: r.global_position,
    occurredAt: r.occurred_at,
    recordedAt: r.recorded_at,
  };
}

export interface RecentOptions {
  limit: number;
  /** Cursor: only events with a global position below this one. */
  before?: number;
  type?: string;
  stream?: string;
}

/**
 * Newest first by global position. Each filter has an index walked backwards: the PK alone,
 * (event_type, global_position) for `type`, (stream_id, version) for `stream` (position order equals
 * version order within a stream). One extra row tells whether another page exists.
 */
export async function recentEvents(pool: DatabasePool, o: RecentOptions, upcast?: Upcaster): Promise<{ events: EventView[]; nextBefore: number | null }> {
  const conds = [
    o.before !== undefined ? sql.fragment`global_position < ${o.before}` : null,
    o.type !== undefined ? sql.fragment`event_type = ${o.type}` : null,
    o.stream !== undefined ? sql.fragment`stream_id = ${o.stream}` : null,
  ].filter((c) => c !== null);
  const where = conds.length ? sql.fragment`WHERE ${sql.join(conds, sql.fragment` AND `)}` : sql.fragment``;
  const order = o.stream !== undefined ? sql.fragment`ORDER BY version DESC` : sql.fragment`ORDER BY global_position DESC`;
  const rows = await pool.any(sql.type(StoredEventRow)`SELECT ${COLUMNS} FROM event_store ${where} ${order} LIMIT ${o.limit + 1}`);
  const page = rows.slice(0, o.limit);
  return { events: page.map((r) => toEventView(r, upcast)), nextBefore: rows.length > o.limit ? page[page.length - 1]!.global_position : null };
}

export const StreamInfoSchema = z.object({ streamId: z.string(), streamType: z.string(), version: z.number().int(), createdAt: z.string(), updatedAt: z.string() });
export type StreamInfo = z.infer<typeof StreamInfoSchema>;

const StreamRow = z.object({ stream_id: z.string(), stream_type: z.string(), version: z.number(), created_at: z.string(), updated_at: z.string() });

/** A stream's header and its events from `fromVersion`, oldest first; null when the stream does not exist. */
export async function streamEvents(
  pool: DatabasePool,
  streamId: string,
  o: { fromVersion: number; limit: number },
  upcast?: Upcaster,
): Promise<{ stream: StreamInfo; events: EventView[]; nextFromVersion: number | null } | null> {
  const s = await pool.maybeOne(sql.type(StreamRow)`SELECT stream_id, stream_type, version, created_at, updated_at FROM event_streams WHERE stream_id = ${streamId}`);
  if (!s) return null;
  const rows = await pool.any(sql.type(StoredEventRow)`
    SELECT ${COLUMNS} FROM event_store_all WHERE stream_id = ${streamId} AND version >= ${o.fromVersion} ORDER BY version LIMIT ${o.limit}`);
  const last = rows[rows.length - 1];
  return {
    stream: { streamId: s.stream_id, streamType: s.stream_type, version: s.version, createdAt: s.created_at, updatedAt: s.updated_at },
    events: rows.map((r) => toEventView(r, upcast)),
    nextFromVersion: last && last.version < s.version ? last.version + 1 : null,
  };
}
