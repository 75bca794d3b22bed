import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { eventsSince, foldCounters, minuteFloor, windowCounts } from '../../eventStore/counters.js';

export const StatisticsSchema = z.object({
  since: z.string().describe('start of the window: the requested since, rounded down to its minute'),
  until: z.string(),
  total: z.number().int(),
  byType: z.array(z.object({ type: z.string(), count: z.number().int() })),
  byPlatform: z.array(z.object({ platform: z.string(), count: z.number().int() })),
  byHour: z.array(z.object({ hour: z.string(), count: z.number().int() })),
  rates: z.object({
    eventsPerSecond: z.number().describe('appended, averaged over the window'),
    eventsPerSecondLast5m: z.number().describe('appended since the start of the minute 5 minutes ago, per second'),
    handledPerSecondLast5m: z.number().describe('handler ledger rows (event, handler) per second over the last 5 minutes'),
  }),
  processing: z.object({
    description: z.string(),
    sampleSize: z.number().int(),
    p50Seconds: z.number().nullable(),
    p99Seconds: z.number().nullable(),
    byHandler: z.array(z.object({ handler: z.string(), processed: z.number().int(), p50Seconds: z.number().nullable(), p99Seconds: z.number().nullable() })),
  }),
});
export type Statistics = z.infer<typeof StatisticsSchema>;

const RateRow = z.object({ handled5: z.number() });
const LagRow = z.object({ handler: z.string().nullable(), n: z.number(), p50: z.number().nullable(), p99: z.number().nullable() });

/** Lag percentiles are computed over at most this many ledger rows of the window, so a long window stays cheap. */
export const LAG_SAMPLE = 20_000;

/**
 * Counts per type, platform and hour from the counters kept as events are appended
 * (src/eventStore/counters.ts): the cost depends on the window's length, never on the store's size.
 * The window starts at the beginning of `since`'s minute (the finest grain counted); `since` in the
 * answer says so. Processing lag is "handler took effect" minus "event recorded", from at most
 * LAG_SAMPLE handler ledger rows of the window (BRIN on processed_at), so it is bounded too; projection
 * lag is reported by /api/events/projections.
 */
export async function statistics(pool: DatabasePool, sinceAt: Date): Promise<Statistics> {
  await foldCounters(pool);
  const last5From = minuteFloor(new Date(Date.now() - 5 * 60_000));
  const [counts, last5, rates, lag] = await Promise.all([
    windowCounts(pool, sinceAt),
    eventsSince(pool, last5From),
    pool.one(sql.type(RateRow)`SELECT (SELECT count(*) FROM event_handler_ledger WHERE processed_at >= now() - interval '5 minutes') AS handled5`),
    pool.any(sql.type(LagRow)`
      WITH sample AS (
        SELECT l.handler, extract(epoch FROM l.processed_at - e.recorded_at)::float8 AS lag
        FROM (SELECT handler, event_id, processed_at FROM event_handler_ledger WHERE processed_at >= ${minuteFloor(sinceAt).toISOString()}::timestamptz LIMIT ${LAG_SAMPLE}) l
        JOIN event_store e ON e.id = l.event_id
      )
      SELECT handler, count(*) AS n,
             percentile_cont(0.5) WITHIN GROUP (ORDER BY lag) AS p50,
             percentile_cont(0.99) WITHIN GROUP (ORDER BY lag) AS p99
      FROM sample GROUP BY ROLLUP (handler)`),
  ]);
  const { since, byType, byPlatform, byHour } = counts;
  const total = byType.reduce((n, t) => n + t.count, 0);
  const now = new Date();
  const windowSeconds = Math.max(1, (now.getTime() - since.getTime()) / 1000);
  const last5Seconds = Math.max(1, (now.getTime() - last5From.getTime()) / 1000);
  const overall = lag.find((r) => r.handler === null);
  const round = (v: number | null) => (v === null ? null : Math.round(v * 1000) / 1000);
  return {
    since: since.toISOString(),
    until: now.toISOString(),
    total,
    byType,
    byPlatform,
    byHour,
    rates: {
      eventsPerSecond: round(total / windowSeconds)!,
      eventsPerSecondLast5m: round(last5 / last5Seconds)!,
      handledPerSecondLast5m: round(rates.handled5 / 300)!,
    },
    processing: {
      description: 'seconds from an event being recorded to a handler taking effect, over up to 20,000 handler ledger rows in the window',
      sampleSize: overall?.n ?? 0,
      p50Seconds: round(overall?.p50 ?? null),
      p99Seconds: round(overall?.p99 ?? null),
      byHandler: lag.filter((r) => r.handler !== null).map((r) => ({ handler: r.handler!, processed: r.n, p50Seconds: round(r.p50), p99Seconds: round(r.p99) })),
    },
  };
}
