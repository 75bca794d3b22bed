import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';

export const StatisticsSchema = z.object({
  since: z.string(),
  until: z.string(),
  total: z.number().int(),
  byType: z.array(z.object({ type: z.string(), count: z.number().int() })),
  byPlatform: z.array(z.object({ platform: z.string(), count: z.number().int() })),
  byHour: z.array(z.object({ hour: z.string(), count: z.number().int() })),
  rates: z.object({
    eventsPerSecond: z.number().describe('appended, averaged over the window'),
    eventsPerSecondLast5m: z.number(),
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

const GroupRow = z.object({ type: z.string().nullable(), platform: z.string().nullable(), hour: z.string().nullable(), count: z.number(), g: z.number() });
const RateRow = z.object({ last5: z.number(), handled5: z.number() });
const LagRow = z.object({ handler: z.string().nullable(), n: z.number(), p50: z.number().nullable(), p99: z.number().nullable() });

/** Lag percentiles are computed over at most this many ledger rows of the window, so a long window stays cheap. */
export const LAG_SAMPLE = 20_000;

/**
 * Counts per type, platform and hour in one scan (GROUPING SETS) of the window, found through the
 * BRIN index on recorded_at. Processing lag is "handler took effect" minus "event recorded", from the
 * handler ledger (BRIN on processed_at); projection lag is reported by /api/events/projections.
 */
export async function statistics(pool: DatabasePool, since: Date): Promise<Statistics> {
  const [groups, rates, lag] = await Promise.all([
    pool.any(sql.type(GroupRow)`
      SELECT event_type AS type, payload->>'platform' AS platform, date_trunc('hour', recorded_at) AS hour, count(*) AS count,
             GROUPING(event_type, payload->>'platform', date_trunc('hour', recorded_at)) AS g
      FROM event_store WHERE recorded_at >= ${since.toISOString()}::timestamptz
      GROUP BY GROUPING SETS ((event_type), (payload->>'platform'), (date_trunc('hour', recorded_at)))`),
    pool.one(sql.type(RateRow)`
      SELECT (SELECT count(*) FROM event_store WHERE recorded_at >= now() - interval '5 minutes') AS last5,
             (SELECT count(*) FROM event_handler_ledger WHERE processed_at >= now() - interval '5 minutes') AS handled5`),
    pool.any(sql.type(LagRow)`
      WITH sample AS (
        SELECT l.handler, extract(epoch FROM l.processed_at - e.recorded_at)::float8 AS lag
        FROM (SELECT handler, event_id, processed_at FROM event_handler_ledger WHERE processed_at >= ${since.toISOString()}::timestamptz LIMIT ${LAG_SAMPLE}) l
        JOIN event_store e ON e.id = l.event_id
      )
      SELECT handler, count(*) AS n,
             percentile_cont(0.5) WITHIN GROUP (ORDER BY lag) AS p50,
             percentile_cont(0.99) WITHIN GROUP (ORDER BY lag) AS p99
      FROM sample GROUP BY ROLLUP (handler)`),
  ]);
  // GROUPING() bits, leftmost argument highest: type=0b011, platform=0b101, hour=0b110.
  const byType = groups.filter((r) => r.g === 3).map((r) => ({ type: r.type!, count: r.count })).sort((a, b) => b.count - a.count);
  const byPlatform = groups.filter((r) => r.g === 5 && r.platform !== null).map((r) => ({ platform: r.platform!, count: r.count })).sort((a, b) => b.count - a.count);
  const byHour = groups.filter((r) => r.g === 6 && r.hour !== null).map((r) => ({ hour: r.hour!, count: r.count })).sort((a, b) => (a.hour < b.hour ? -1 : 1));
  const total = byType.reduce((n, t) => n + t.count, 0);
  const now = new Date();
  const windowSeconds = Math.max(1, (now.getTime() - since.getTime()) / 1000);
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
      eventsPerSecondLast5m: round(rates.last5 / 300)!,
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
