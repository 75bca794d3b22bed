import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { tableRowCounts } from '../db/rowEstimates.js';
import { eventTotals, foldCounters } from '../eventStore/counters.js';
import { eventRegistry } from '../domain/index.js';
import type { Projection } from './Projection.js';

export const ProjectionStatusSchema = z.object({
  name: z.string(),
  version: z.number(),
  status: z.string(),
  generation: z.number(),
  table: z.string(),
  /** Read-model rows: exact up to 1,000, else the planner's estimate (rowsEstimated). */
  rows: z.number(),
  rowsEstimated: z.boolean(),
  streams: z.number(),
  checkpointPosition: z.number(),
  lagEvents: z.number(),
  /** Age of the oldest owed work or parked stream while there is lag (0 without lag). */
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
const Counted = z.object({ name: z.string(), generation: z.number(), applied: z.number(), pos: z.number().nullable(), last_updated: z.string().nullable(), parked: z.number(), parked_oldest: z.string().nullable() });

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

export interface ProjectionLag {
  generation: number;
  /** Events in the projection's streams beyond their checkpoints (the sum over streams of version − checkpoint). */
  lagEvents: number;
  /** Events applied: the sum of the generation's checkpoint versions. */
  appliedEvents: number;
  streams: number;
  checkpointPosition: number;
  /** The newest checkpoint change (kept by the checkpoint triggers: the table has no index on it). */
  lastUpdatedAt: string | null;
  parkedStreams: number;
  /** When the oldest parked stream of the generation was parked (null: none). */
  parkedOldestAt: string | null;
}

/**
 * Lag of each projection from counters, not from joining every stream to its checkpoint: the events
 * of its stream types ever appended (event_counts, src/eventStore/counters.ts) minus the sum of its
 * checkpoint versions (projection_counts, kept by triggers on projection_checkpoints, migration
 * 1700000000013). Both sums include archived events, as stream versions do, so this equals
 * Σ(stream version − checkpoint version). Parked streams come from the partial index on parked
 * checkpoints (as many rows as are parked). The cost does not grow with the store.
 */
export async function projectionLags(pool: CommonQueryMethods, projections: readonly { name: string; streamTypes: readonly string[] }[]): Promise<Map<string, ProjectionLag>> {
  if (projections.length === 0) return new Map();
  await foldCounters(pool);
  const [totals, rows] = await Promise.all([
    eventTotals(pool),
    pool.any(sql.type(Counted)`
      SELECT p.name, coalesce(ep.generation, 1) AS generation, coalesce(pc.versions, 0)::int8 AS applied, pc.max_position AS pos, pc.last_updated,
             coalesce(pk.parked, 0)::int8 AS parked, pk.oldest AS parked_oldest
      FROM unnest(${sql.array(projections.map((p) => p.name), 'text')}::text[]) AS p(name)
      LEFT JOIN event_projections ep ON ep.name = p.name
      LEFT JOIN projection_counts pc ON pc.projection = p.name AND pc.generation = coalesce(ep.generation, 1)
      LEFT JOIN LATERAL (
        SELECT count(*) AS parked, min(updated_at) AS oldest FROM projection_checkpoints
        WHERE projection = p.name AND generation = coalesce(ep.generation, 1) AND parked) pk ON true`),
  ]);
  const byName = new Map(rows.map((r) => [r.name, r]));
  return new Map(
    projections.map((p) => {
      const r = byName.get(p.name);
      const of = p.streamTypes.map((t) => totals.byStreamType.get(t) ?? { events: 0, streams: 0 });
      const events = of.reduce((n, s) => n + s.events, 0);
      const applied = r?.applied ?? 0;
      return [
        p.name,
        {
          generation: r?.generation ?? 1,
          lagEvents: Math.max(0, events - applied),
          appliedEvents: applied,
          streams: of.reduce((n, s) => n + s.streams, 0),
          checkpointPosition: r?.pos ?? 0,
          lastUpdatedAt: r?.last_updated ?? null,
          parkedStreams: r?.parked ?? 0,
          parkedOldestAt: r?.parked_oldest ?? null,
        },
      ];
    }),
  );
}

/**
 * How long the projection's oldest unapplied work has waited: the oldest owed work (owed batches and
 * unpublished outbox rows, from Postgres) or the oldest parked stream, whichever is older; 0 without
 * lag. (Before the counters this was the oldest change among lagging streams, found by joining every
 * stream to its checkpoint.)
 */
export function lagSecondsOf(lag: ProjectionLag, owedOldestSeconds: number, now = Date.now()): number {
  if (lag.lagEvents === 0) return 0;
  const parked = lag.parkedOldestAt ? Math.max(0, (now - Date.parse(lag.parkedOldestAt)) / 1000) : 0;
  return Math.max(owedOldestSeconds, parked);
}

/**
 * Name, version, status, checkpoint, lag (events and seconds), rows, last update and last rebuild of
 * each projection, from counters and indexed lookups (see projectionLags); read-model rows are counted
 * exactly up to 1,000 and estimated above (rowsEstimated).
 */
export async function projectionStatuses(pool: DatabasePool, projections: readonly Projection<any>[], owed: readonly OwedInfo[] = []): Promise<ProjectionStatus[]> {
  const out: ProjectionStatus[] = [];
  const owedOf = new Map(owed.map((o) => [o.consumer, o]));
  const [lags, rowCounts] = await Promise.all([
    projectionLags(pool, projections.map((p) => ({ name: p.name, streamTypes: streamTypesOf(p) }))),
    tableRowCounts(pool, [...new Set(projections.map((p) => p.table))]),
  ]);
  for (const p of projections) {
    const meta = await pool.maybeOne(sql.type(Row)`
      SELECT version, status, generation, last_rebuild_started_at, last_rebuild_finished_at, last_rebuild_duration_ms, last_rebuild_events
      FROM event_projections WHERE name = ${p.name}`);
    const lag = lags.get(p.name)!;
    const rows = rowCounts.get(p.table) ?? { rows: 0, estimated: false };
    out.push({
      name: p.name,
      version: p.version,
      status: lag.parkedStreams > 0 && meta?.status === 'live' ? 'degraded' : (meta?.status ?? 'unregistered'),
      generation: lag.generation,
      table: p.table,
      rows: rows.rows,
      rowsEstimated: rows.estimated,
      streams: lag.streams,
      checkpointPosition: lag.checkpointPosition,
      lagEvents: lag.lagEvents,
      lagSeconds: lagSecondsOf(lag, owedOf.get(p.name)?.oldestSeconds ?? 0),
      parkedStreams: lag.parkedStreams,
      owedEvents: owedOf.get(p.name)?.events ?? 0,
      owedOldestSeconds: owedOf.get(p.name)?.oldestSeconds ?? 0,
      liveWorker: owedOf.get(p.name)?.liveWorker ?? false,
      lastUpdatedAt: lag.lastUpdatedAt,
      lastRebuild: meta?.last_rebuild_started_at
        ? { startedAt: meta.last_rebuild_started_at, finishedAt: meta.last_rebuild_finished_at, durationMs: meta.last_rebuild_duration_ms, events: meta.last_rebuild_events }
        : null,
    });
  }
  return out;
}
