import type { Queue } from 'bullmq';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { countOpenFailures } from '../../consumers/failures.js';
import { owedSummary, OwedSummarySchema } from '../../consumers/owedWork.js';
import { storeSizes, StoreSizesSchema } from '../../eventStore/archive.js';
import { eventsSinceHour, eventTotals, foldCounters } from '../../eventStore/counters.js';
import { xminHorizon, XminHorizonSchema } from '../../db/horizon.js';
import { QUEUE_STATES } from '../../metrics/metrics.js';

export const QueueDepthSchema = z.object(Object.fromEntries(QUEUE_STATES.map((s) => [s, z.number().int()])) as Record<(typeof QUEUE_STATES)[number], z.ZodNumber>);

export const OverviewSchema = z.object({
  total_events: z.number().int(),
  events_today: z.number().int(),
  last_event: z.object({ position: z.number().int(), recordedAt: z.string() }).nullable(),
  active_projections: z.number().int(),
  projections: z.array(z.object({ name: z.string(), status: z.string(), version: z.number().int() })),
  failed_processing: z.number().int(),
  event_types: z.array(z.object({ type: z.string(), count: z.number().int() })),
  outbox: z.object({ backlog: z.number().int(), oldestSeconds: z.number() }),
  /**
   * What each registered consumer still owes, from Postgres (never from Redis queue counts): owed
   * batches whose effect is not committed yet, plus outbox rows not yet published.
   */
  owed: z.object({ events: z.number().int(), consumers: z.array(OwedSummarySchema), withoutLiveWorker: z.array(z.string()) }),
  /** null when Redis could not be asked (the rest of the overview still answers). */
  queues: z.record(QueueDepthSchema).nullable(),
  /** Store size and growth: hot (estimate) and archived (counted by npm run events:archive), bytes, events in the last 24 h. */
  storage: StoreSizesSchema,
  /** The stall alarm: the oldest transactions holding back gap-free readers, and who runs them. */
  xminHorizon: XminHorizonSchema,
  generatedAt: z.string(),
});
export type Overview = z.infer<typeof OverviewSchema>;

const Counts = z.object({
  last_position: z.number().nullable(),
  last_recorded_at: z.string().nullable(),
  outbox: z.number(),
  outbox_oldest: z.string().nullable(),
});
const ProjectionRow = z.object({ name: z.string(), status: z.string(), version: z.number() });

export async function queueDepths(queues: Record<string, Queue>): Promise<Record<string, Record<(typeof QUEUE_STATES)[number], number>>> {
  const entries = await Promise.all(
    Object.entries(queues).map(async ([name, q]) => {
      const c = await q.getJobCounts(...QUEUE_STATES);
      return [name, Object.fromEntries(QUEUE_STATES.map((s) => [s, c[s] ?? 0]))] as const;
    }),
  );
  return Object.fromEntries(entries) as never;
}

/**
 * Totals, events per type and "today" (the UTC day, from hour rows) come from the counters kept as
 * events are appended (src/eventStore/counters.ts), never from scanning the store: the overview costs
 * the same at any store size. Totals include archived events. The last event is one step down the
 * primary key; the outbox and owed work are backlogs (bounded by what is not yet delivered, not by the store).
 */
export async function overview(pool: DatabasePool, queues: Record<string, Queue>): Promise<Overview> {
  await foldCounters(pool);
  const todayUtc = new Date(Math.floor(Date.now() / 86_400_000) * 86_400_000);
  const [totals, today, counts, projections, depths, owed, failures, storage, horizon] = await Promise.all([
    eventTotals(pool),
    eventsSinceHour(pool, todayUtc),
    pool.one(sql.type(Counts)`
      SELECT last.global_position AS last_position, last.recorded_at AS last_recorded_at,
             (SELECT count(*) FROM event_outbox) AS outbox,
             (SELECT min(created_at) FROM event_outbox) AS outbox_oldest
      FROM (SELECT 1) one
      LEFT JOIN LATERAL (SELECT global_position, recorded_at FROM event_store ORDER BY global_position DESC LIMIT 1) last ON true`),
    pool.any(sql.type(ProjectionRow)`SELECT name, status, version FROM event_projections ORDER BY name`),
    queueDepths(queues).catch(() => null),
    owedSummary(pool),
    countOpenFailures(pool),
    storeSizes(pool),
    xminHorizon(pool),
  ]);
  return {
    total_events: totals.total,
    events_today: today,
    last_event: counts.last_position !== null && counts.last_recorded_at ? { position: counts.last_position, recordedAt: counts.last_recorded_at } : null,
    active_projections: projections.filter((p) => p.status === 'live').length,
    projections: [...projections],
    failed_processing: failures,
    event_types: totals.byType,
    outbox: { backlog: counts.outbox, oldestSeconds: counts.outbox_oldest ? Math.max(0, (Date.now() - Date.parse(counts.outbox_oldest)) / 1000) : 0 },
    owed: { events: owed.reduce((n, o) => n + o.events, 0), consumers: owed, withoutLiveWorker: owed.filter((o) => !o.liveWorker).map((o) => o.consumer) },
    queues: depths,
    storage,
    xminHorizon: horizon,
    generatedAt: new Date().toISOString(),
  };
}
