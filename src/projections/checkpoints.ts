import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';

/**
 * Operator-side writes to `projection_checkpoints` (parking, unparking, skipping past an event). The
 * catch-up's own lock-and-advance statements live in ProjectionRunner, on the hot path.
 */

const currentGeneration = (projection: string) => sql.fragment`(SELECT generation FROM event_projections WHERE name = ${projection})`;

/**
 * After a consumer's work finally failed: park each of these streams that still has an unapplied
 * event, and name that event. Returns the parked (stream, event) pairs so they can be recorded.
 */
export async function parkUnapplied(db: CommonQueryMethods, projection: { name: string; handledTypes: readonly string[] }, streams: readonly string[]): Promise<{ streamId: string; eventId: string }[]> {
  const generation = await db.oneFirst(sql.type(z.object({ generation: z.number() }))`SELECT generation FROM event_projections WHERE name = ${projection.name}`);
  // A job that failed before its first commit on a stream left no checkpoint: create it, or the
  // stream's events would be neither parked nor recorded.
  await db.query(sql.unsafe`
    INSERT INTO projection_checkpoints (projection, generation, stream_id)
    SELECT ${projection.name}, ${generation}, s FROM unnest(${sql.array([...new Set(streams)].sort(), 'text')}::text[]) AS s
    ON CONFLICT DO NOTHING`);
  const rows = await db.any(sql.type(z.object({ stream_id: z.string(), event_id: z.string() }))`
    SELECT c.stream_id, first.id AS event_id
    FROM projection_checkpoints c
    CROSS JOIN LATERAL (
      SELECT e.id FROM event_store e
      WHERE e.stream_id = c.stream_id AND e.version > c.version AND e.event_type = ANY(${sql.array([...projection.handledTypes], 'text')})
      ORDER BY e.version LIMIT 1) first
    WHERE c.projection = ${projection.name} AND c.generation = ${generation} AND c.stream_id = ANY(${sql.array([...streams], 'text')})
    ORDER BY c.stream_id FOR UPDATE OF c`);
  if (rows.length) {
    await db.query(sql.unsafe`
      UPDATE projection_checkpoints c SET parked = true, parked_event_id = u.event_id, updated_at = now()
      FROM ${sql.unnest(rows.map((r) => [r.stream_id, r.event_id]), ['text', 'uuid'])} AS u(stream_id, event_id)
      WHERE c.projection = ${projection.name} AND c.generation = ${generation} AND c.stream_id = u.stream_id`);
  }
  return rows.map((r) => ({ streamId: r.stream_id, eventId: r.event_id }));
}

/** Retrying: the stream goes on from where it stopped. */
export async function unpark(db: CommonQueryMethods, projection: string, streamId: string): Promise<void> {
  await db.query(sql.unsafe`
    UPDATE projection_checkpoints SET parked = false, parked_event_id = NULL, updated_at = now()
    WHERE projection = ${projection} AND stream_id = ${streamId}`);
}

/** Skipping the poison event: the stream continues after it. */
export async function skipPast(db: CommonQueryMethods, projection: string, streamId: string, eventId: string): Promise<void> {
  await db.query(sql.unsafe`
    UPDATE projection_checkpoints c SET parked = false, parked_event_id = NULL,
      version = GREATEST(c.version, e.version), global_position = GREATEST(c.global_position, e.global_position), updated_at = now()
    FROM event_store e
    WHERE e.id = ${eventId} AND c.projection = ${projection} AND c.stream_id = ${streamId}
      AND c.generation = ${currentGeneration(projection)}`);
}

/** A bulk retry: these streams go on from where they stopped, in one statement. */
export async function unparkMany(db: CommonQueryMethods, projection: string, streamIds: readonly string[]): Promise<void> {
  if (streamIds.length === 0) return;
  await db.query(sql.unsafe`
    UPDATE projection_checkpoints SET parked = false, parked_event_id = NULL, updated_at = now()
    WHERE projection = ${projection} AND stream_id = ANY(${sql.array([...new Set(streamIds)].sort(), 'text')})`);
}

/** A bulk resolve: each stream continues after its skipped event, in one statement. */
export async function skipPastMany(db: CommonQueryMethods, projection: string, skipped: readonly { streamId: string; eventId: string }[]): Promise<void> {
  if (skipped.length === 0) return;
  await db.query(sql.unsafe`
    UPDATE projection_checkpoints c SET parked = false, parked_event_id = NULL,
      version = GREATEST(c.version, e.version), global_position = GREATEST(c.global_position, e.global_position), updated_at = now()
    FROM (SELECT s.stream_id, max(e.version) AS version, max(e.global_position) AS global_position
          FROM ${sql.unnest(skipped.map((x) => [x.streamId, x.eventId]), ['text', 'uuid'])} AS s(stream_id, event_id)
          JOIN event_store e ON e.id = s.event_id GROUP BY s.stream_id) e
    WHERE c.projection = ${projection} AND c.stream_id = e.stream_id AND c.generation = ${currentGeneration(projection)}`);
}
