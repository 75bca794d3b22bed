import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';

export const MinuteCountsSchema = z.object({
  minute: z.string().describe('Start of the minute (UTC, ISO 8601)'),
  byType: z.record(z.number().int()).describe('Events recorded in that minute, per event type (types with none are left out)'),
});
export type MinuteCounts = z.infer<typeof MinuteCountsSchema>;

const Row = z.object({ minute: z.number(), type: z.string(), count: z.number() });

/**
 * Events recorded per minute and type over the last `minutes` minutes (the current one included),
 * every minute present, oldest first. The window is found through the BRIN index on recorded_at
 * (rows are appended in time order), so the cost follows the last hour's events, not the store
 * (plus block ranges appended since the last VACUUM summarised them: BRIN always reads those).
 */
export async function eventsPerMinute(db: CommonQueryMethods, minutes: number): Promise<MinuteCounts[]> {
  const rows = await db.any(sql.type(Row)`
    WITH since AS (SELECT date_trunc('minute', now()) - make_interval(mins => ${minutes - 1}) AS at)
    SELECT (extract(epoch FROM date_trunc('minute', recorded_at)) * 1000)::float8 AS minute, event_type AS type, count(*) AS count
    FROM event_store, since
    WHERE recorded_at >= since.at
    GROUP BY 1, 2`);
  // The database's clock decides the buckets; the empty minutes around them are filled in here.
  const newest = rows.reduce((m, r) => Math.max(m, r.minute), Math.floor(Date.now() / 60_000) * 60_000);
  const buckets = new Map<number, Record<string, number>>();
  for (let i = minutes - 1; i >= 0; i--) buckets.set(newest - i * 60_000, {});
  for (const r of rows) {
    const b = buckets.get(r.minute);
    if (b) b[r.type] = r.count;
  }
  return [...buckets].map(([minute, byType]) => ({ minute: new Date(minute).toISOString(), byType }));
}
