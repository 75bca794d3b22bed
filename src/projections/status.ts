import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { eventRegistry } from '../domain/index.js';
import type { Projection } from './Projection.js';

export const ProjectionStatusSchema = z.object({
  name: z.string(),
  version: z.number(),
  status: z.string(),
  generation: z.number(),
  table: z.string(),
  rows: z.number(),
  streams: z.number(),
  checkpointPosition: z.number(),
  lagEvents: z.number(),
  lagSeconds: z.number(),
  parkedStreams: z.number(),
  /** Events owed to this projection per Postgres' owed-work record (published, not yet applied). */
  owedEvents: z.number(),
  owedOldestSeconds: z.number(),
  /** A worker running this projection sent a heartbeat within 30 s. */
  liveWorker: z.boolean(),
  lastUpdatedAt: z.string().nullable(),
  lastRebuild: z
    .object({ startedAt: z.string().nullable(), finishedAt: z.string().nullable(), durationMs: z.number().nullable(), events: z.number().nullable() })
    .nullable(),
});
export type ProjectionStatus = z.infer<typeof ProjectionStatusSchema>;

const Row = z.object({
  version: z.number(),
  status: z.string(),
  generation: z.number(),
  last_rebuild_started_at: z.string().nullable(),
  last_rebuild_finished_at: z.string().nullable(),
  last_rebuild_duration_ms: z.number().nullable(),
  last_rebuild_events: z.number().nullable(),
});
const Lag = z.object({ lag: z.number(), oldest: z.string().nullable(), streams: z.number() });
const Ck = z.object({ pos: z.number().nullable(), updated: z.string().nullable(), parked: z.number() });

/** Owed work of a consumer, as the consumer pipeline reports it (passed in: projections sit below it). */
export interface OwedInfo {
  consumer: string;
  events: number;
  oldestSeconds: number;
  liveWorker: boolean;
}

/** Which stream types a projection reads (its lag is measured over those streams). */
export function streamTypesOf(p: Projection<any>): string[] {
  return [...new Set(p.handledTypes.map((t) => eventRegistry.definition(t).streamType))];
}

/**
 * Name, version, status, checkpoint, lag (events and seconds), rows, last update and last rebuild of
 * each projection. Lag counts events in the projection's streams beyond their checkpoints, using
 * event_streams (one row per stream) rather than scanning the store.
 */
export async function projectionStatuses(pool: DatabasePool, projections: readonly Projection<any>[], owed: readonly OwedInfo[] = []): Promise<ProjectionStatus[]> {
  const out: ProjectionStatus[] = [];
  const owedOf = new Map(owed.map((o) => [o.consumer, o]));
  for (const p of projections) {
    const meta = await pool.maybeOne(sql.type(Row)`
      SELECT version, status, generation, last_rebuild_started_at, last_rebuild_finished_at, last_rebuild_duration_ms, last_rebuild_events
      FROM event_projections WHERE name = ${p.name}`);
    const generation = meta?.generation ?? 1;
    const lag = await pool.one(sql.type(Lag)`
      SELECT coalesce(sum(s.version - coalesce(c.version, 0)), 0)::int8 AS lag,
             min(s.updated_at) FILTER (WHERE s.version > coalesce(c.version, 0)) AS oldest,
             count(*)::int8 AS streams
      FROM event_streams s
      LEFT JOIN projection_checkpoints c ON c.projection = ${p.name} AND c.generation = ${generation} AND c.stream_id = s.stream_id
      WHERE s.stream_type = ANY(${sql.array(streamTypesOf(p), 'text')})`);
    const ck = await pool.one(sql.type(Ck)`
      SELECT max(global_position) AS pos, max(updated_at) AS updated, count(*) FILTER (WHERE parked)::int8 AS parked
      FROM projection_checkpoints WHERE projection = ${p.name} AND generation = ${generation}`);
    const rows = await pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*) AS n FROM ${sql.identifier([p.table])}`);
    out.push({
      name: p.name,
      version: p.version,
      status: ck.parked > 0 && meta?.status === 'live' ? 'degraded' : (meta?.status ?? 'unregistered'),
      generation,
      table: p.table,
      rows,
      streams: lag.streams,
      checkpointPosition: ck.pos ?? 0,
      lagEvents: lag.lag,
      lagSeconds: lag.oldest ? Math.max(0, (Date.now() - Date.parse(lag.oldest)) / 1000) : 0,
      parkedStreams: ck.parked,
      owedEvents: owedOf.get(p.name)?.events ?? 0,
      owedOldestSeconds: owedOf.get(p.name)?.oldestSeconds ?? 0,
      liveWorker: owedOf.get(p.name)?.liveWorker ?? false,
      lastUpdatedAt: ck.updated,
      lastRebuild: meta?.last_rebuild_started_at
        ? { startedAt: meta.last_rebuild_started_at, finishedAt: meta.last_rebuild_finished_at, durationMs: meta.last_rebuild_duration_ms, events: meta.last_rebuild_events }
        : null,
    });
  }
  return out;
}
