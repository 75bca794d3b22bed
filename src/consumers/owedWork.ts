import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { OutboxEntry } from '../eventBus/publisher.js';
import { SHARED_QUEUE, type ConsumerKind } from './jobs.js';

/**
 * `consumer_owed`: what each consumer still owes, per published batch. The outbox row of an event
 * becomes owed rows (one per batch and registered consumer that handles any of its events) in one
 * statement, before any job is enqueued; a consumer deletes its row in the transaction that commits
 * its effect (or records its failure). So Postgres, not Redis, is the record of owed work.
 */

export interface OwedRow {
  consumer: string;
  job_key: string;
  kind: ConsumerKind;
  event_ids: string[];
  streams: string[];
}

/**
 * The relay's candidates: outbox rows older than `minAgeMs`, oldest first. Read without locks: the
 * conversion that follows deletes by key, so relays racing for a row just leave it to the first.
 */
export async function staleOutboxEntries(db: CommonQueryMethods, limit: number, minAgeMs: number): Promise<OutboxEntry[]> {
  const rows = (await db.any(sql.unsafe`
    SELECT global_position, event_id::text AS event_id, stream_id, event_type FROM event_outbox
    WHERE created_at <= now() - make_interval(secs => ${minAgeMs / 1000})
    ORDER BY global_position LIMIT ${limit}`)) as readonly { global_position: number; event_id: string; stream_id: string; event_type: string }[];
  return rows.map((r) => ({ position: r.global_position, eventId: r.event_id, streamId: r.stream_id, eventType: r.event_type }));
}

export interface ConvertOptions {
  /** The outbox rows to convert (a producer's own just-committed events, or a relay's candidates). */
  entries: readonly OutboxEntry[];
  /** Events per published batch (one job per queue per batch). */
  batchSize: number;
  /** When the reconciler first looks at a row (its job should have run by then). */
  dueMs: number;
  /** Consumers that already took effect for these events (processed in the job that emitted them). */
  done?: readonly string[];
}

/**
 * Moves outbox rows into owed rows. Each outbox row is taken by exactly one caller, so a batch and
 * its key are formed once: the key is the batch's first global position, unique for ever. Returns the
 * owed rows created, with the events and streams of each (computed here from the entries, so the
 * statement stays lean: it returns the consumers owed and the positions it moved).
 */
export async function convertOutbox(db: CommonQueryMethods, o: ConvertOptions): Promise<{ moved: number; owed: OwedRow[] }> {
  if (o.entries.length === 0) return { moved: 0, owed: [] };
  // Up to one batch needs no sort for the batch number; more (a relay's sweep) is cut into batches.
  const single = o.entries.length <= o.batchSize;
  const batched = single
    ? sql.fragment`SELECT moved.*, 'p' || min(global_position) OVER () AS job_key FROM moved`
    : sql.fragment`SELECT m.*, 'p' || min(m.global_position) OVER (PARTITION BY (n - 1) / ${o.batchSize}) AS job_key
        FROM (SELECT moved.*, row_number() OVER (ORDER BY global_position) AS n FROM moved) m`;
  // One statement, one round trip. A plain DELETE by key: a row a concurrent caller (a relay racing a
  // producer) took first is simply not in `moved`. The batch's positions are stored once
  // (owed_batches, as runs); each consumer's owed row is thin. The last row carries what was moved.
  const rows = (await db.any(sql.unsafe`
    WITH moved AS (
      DELETE FROM event_outbox o WHERE o.global_position = ANY(${sql.array(o.entries.map((e) => e.position), 'int8')})
      RETURNING o.global_position, o.event_type, o.created_at
    ), batched AS (${batched}
    ), registry AS (
      SELECT name, kind, event_types, unnest(event_types) AS event_type FROM event_consumers
      WHERE NOT (name = ANY(${sql.array([...(o.done ?? [])], 'text')}))
    ), per_consumer AS (
      SELECT c.name AS consumer, c.kind, c.event_types, b.job_key, count(*) AS events, min(b.created_at) AS created_at
      FROM batched b JOIN registry c ON c.event_type = b.event_type
      GROUP BY c.name, c.kind, c.event_types, b.job_key
    ), batches AS (
      INSERT INTO owed_batches (job_key, positions, created_at)
      SELECT job_key, range_agg(int8range(global_position, global_position, '[]')), min(created_at) FROM batched
      WHERE job_key IN (SELECT job_key FROM per_consumer)
      GROUP BY job_key
      ON CONFLICT DO NOTHING
    ), owed AS (
      INSERT INTO consumer_owed (consumer, job_key, kind, events, created_at, due_at, job_queue, job_id)
      SELECT consumer, job_key, kind, events, created_at, now() + make_interval(secs => ${o.dueMs / 1000}),
             CASE kind WHEN 'handler' THEN ${SHARED_QUEUE.handler} ELSE ${SHARED_QUEUE.projection} END,
             CASE kind WHEN 'handler' THEN ${SHARED_QUEUE.handler} ELSE ${SHARED_QUEUE.projection} END || '.' || job_key
      FROM per_consumer
      ORDER BY consumer, job_key
      ON CONFLICT DO NOTHING
    )
    SELECT consumer, job_key, kind, event_types, NULL::int8[] AS positions FROM per_consumer
    UNION ALL
    SELECT NULL, NULL, NULL, NULL, (SELECT coalesce(array_agg(global_position), '{}') FROM moved)`)) as readonly {
    consumer: string | null;
    job_key: string | null;
    kind: ConsumerKind | null;
    event_types: string[] | null;
    positions: number[] | null;
  }[];
  const movedSet = new Set((rows[rows.length - 1]?.positions ?? []).map(Number));
  // The same batches as the statement: moved events in position order, cut every batchSize.
  const moved = o.entries.filter((e) => movedSet.has(e.position)).sort((a, b) => a.position - b.position);
  const batches = new Map<string, OutboxEntry[]>();
  for (let i = 0; i < moved.length; i += o.batchSize) {
    const part = moved.slice(i, i + o.batchSize);
    batches.set(`p${part[0]!.position}`, part);
  }
  const owed: OwedRow[] = [];
  for (const r of rows) {
    if (r.consumer === null) continue;
    const types = new Set(r.event_types);
    const mine = (batches.get(r.job_key!) ?? []).filter((e) => types.has(e.eventType));
    owed.push({ consumer: r.consumer, job_key: r.job_key!, kind: r.kind!, event_ids: mine.map((e) => e.eventId), streams: [...new Set(mine.map((e) => e.streamId))].sort() });
  }
  return { moved: moved.length, owed };
}

/**
 * In the transaction that commits these consumers' effect for the batch (or their failure record):
 * they owe it no more. Statement fragment, so callers can fold it into their own write statement.
 */
export function completeOwedSql(key: string, consumers: readonly string[]) {
  return sql.fragment`DELETE FROM consumer_owed WHERE job_key = ${key} AND consumer = ANY(${sql.array([...consumers].sort(), 'text')})`;
}

export async function completeOwed(db: CommonQueryMethods, key: string, consumers: readonly string[]): Promise<void> {
  if (consumers.length === 0) return;
  await db.query(sql.unsafe`${completeOwedSql(key, consumers)}`);
}

/** The jobs of these batches could not be enqueued: the reconciler should deliver them as soon as it can. */
export async function markDueNow(db: CommonQueryMethods, keys: readonly string[]): Promise<void> {
  if (keys.length === 0) return;
  await db.query(sql.unsafe`UPDATE consumer_owed SET due_at = now() WHERE job_key = ANY(${sql.array([...keys], 'text')})`);
}

export interface DueRow extends OwedRow {
  /** For a redelivery: the batch's event ids (handlers) and the streams of its events of this consumer's types (projections). */
  job_queue: string;
  job_id: string;
  deliveries: number;
}

/**
 * Claims owed rows whose time has come, pushing their next look `horizonMs` ahead in the same
 * statement (SKIP LOCKED: any number of reconcilers share the table without doing a row twice).
 */
export async function claimDue(db: CommonQueryMethods, limit: number, horizonMs: number): Promise<DueRow[]> {
  return [
    ...((await db.any(sql.unsafe`
      WITH claimed AS (
        UPDATE consumer_owed o SET due_at = now() + make_interval(secs => ${horizonMs / 1000})
        FROM (SELECT consumer, job_key FROM consumer_owed WHERE due_at <= now() ORDER BY due_at LIMIT ${limit} FOR UPDATE SKIP LOCKED) d
        WHERE o.consumer = d.consumer AND o.job_key = d.job_key
        RETURNING o.consumer, o.job_key, o.kind, o.job_queue, o.job_id, o.deliveries
      )
      SELECT c.consumer, c.job_key, c.kind, c.job_queue, c.job_id, c.deliveries,
             coalesce(ev.event_ids, '{}') AS event_ids, coalesce(ev.streams, '{}') AS streams
      FROM claimed c
      LEFT JOIN owed_batches b ON b.job_key = c.job_key
      LEFT JOIN event_consumers r ON r.name = c.consumer
      LEFT JOIN LATERAL (
        SELECT array_agg(e.id::text ORDER BY e.global_position) AS event_ids, array_agg(DISTINCT e.stream_id) AS streams
        FROM unnest(b.positions) AS run
        JOIN event_store e ON e.global_position >= lower(run) AND e.global_position < upper(run)
        WHERE e.event_type = ANY(r.event_types)) ev ON true`)) as readonly DueRow[]),
  ];
}

/** Batches no consumer owes any more (each consumer deletes only its own row, so the last one cannot tell). */
export async function dropSettledBatches(db: CommonQueryMethods): Promise<void> {
  await db.query(sql.unsafe`
    DELETE FROM owed_batches b
    WHERE b.created_at < now() - interval '5 seconds' AND NOT EXISTS (SELECT 1 FROM consumer_owed o WHERE o.job_key = b.job_key)`);
}

/** The job that now carries this owed row (a hand-over, a forward to the consumer's own queue, a redelivery). */
export async function repointOwed(db: CommonQueryMethods, consumer: string, key: string, queue: string, jobId: string, redelivered = false): Promise<void> {
  await db.query(sql.unsafe`
    UPDATE consumer_owed SET job_queue = ${queue}, job_id = ${jobId}, deliveries = deliveries + ${redelivered ? 1 : 0}
    WHERE consumer = ${consumer} AND job_key = ${key}`);
}

export const OwedSummarySchema = z.object({
  consumer: z.string(),
  kind: z.enum(['handler', 'projection']),
  /** Events the consumer still owes (owed batches plus outbox rows not yet published). */
  events: z.number(),
  batches: z.number(),
  oldestSeconds: z.number(),
  /** A worker running this consumer sent a heartbeat within the last 30 s. */
  liveWorker: z.boolean(),
  lastSeenAt: z.string().nullable(),
});
export type OwedSummary = z.infer<typeof OwedSummarySchema>;

const SummaryRow = z.object({
  consumer: z.string(),
  kind: z.enum(['handler', 'projection']),
  events: z.number(),
  batches: z.number(),
  oldest_seconds: z.number().nullable(),
  live: z.boolean(),
  last_seen_at: z.string().nullable(),
});

/**
 * Owed work per registered consumer, read from Postgres only (never from Redis queue counts). Its
 * cost follows the owed backlog and the outbox, not the size of the store.
 */
export async function owedSummary(db: CommonQueryMethods, liveWindowMs = 30_000): Promise<OwedSummary[]> {
  const rows = await db.any(sql.type(SummaryRow)`
    SELECT c.name AS consumer, c.kind,
           (coalesce(o.events, 0) + coalesce(ob.events, 0))::int8 AS events,
           coalesce(o.batches, 0)::int8 AS batches,
           extract(epoch FROM now() - least(o.oldest, ob.oldest))::float8 AS oldest_seconds,
           coalesce(c.last_seen_at > now() - make_interval(secs => ${liveWindowMs / 1000}), false) AS live,
           c.last_seen_at
    FROM event_consumers c
    LEFT JOIN (SELECT consumer, sum(events) AS events, count(*) AS batches, min(created_at) AS oldest FROM consumer_owed GROUP BY consumer) o ON o.consumer = c.name
    LEFT JOIN LATERAL (SELECT count(*) AS events, min(created_at) AS oldest FROM event_outbox WHERE event_type = ANY(c.event_types)) ob ON true
    ORDER BY c.name`);
  return rows.map((r) => ({
    consumer: r.consumer,
    kind: r.kind,
    events: r.events,
    batches: r.batches,
    oldestSeconds: r.events > 0 ? Math.max(0, r.oldest_seconds ?? 0) : 0,
    liveWorker: r.live,
    lastSeenAt: r.last_seen_at,
  }));
}
