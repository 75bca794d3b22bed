import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';

/**
 * Event counts kept as events are appended (migration 1700000000013), so that monitoring costs the
 * same at 10 million events as at 10 thousand (ARCHITECTURE §7): no count(*) or GROUP BY over
 * event_store on a request path.
 *
 * The append's statement trigger writes pre-aggregated delta rows (append-only: concurrent appends
 * never wait on a shared counter row); `foldCounters` moves them into `event_counters`; every read
 * here goes through the `event_counts` view (counters + unfolded deltas, one snapshot). Counters only
 * grow: archived events still count in totals. Grains: all-time per event type and per stream type
 * (with streams created), per hour and per minute by event type and by platform (payload.platform).
 */

/**
 * Folds the pending deltas into the counters; returns how many delta rows it folded, or -1 when
 * another session is folding (reads are correct either way; folding only keeps the delta table
 * short). Cost: proportional to the events appended since the last fold, not to the store.
 */
export async function foldCounters(db: CommonQueryMethods): Promise<number> {
  return db.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT hdt_fold_counters() AS n`);
}

/** How often the worker (and npm start) folds; readers fold too, so this only bounds the delta table. */
export const FOLD_INTERVAL_MS = 5_000;

/** How often the worker vacuums the delta tables (see vacuumCounterDeltas). */
export const VACUUM_DELTAS_INTERVAL_MS = 60_000;

/**
 * Readers scan the delta tables whole, dead rows included, and every fold deletes all their rows: a
 * queue-like table that must be vacuumed often. The migration sets a low autovacuum threshold; this
 * also works where autovacuum is off or behind (measured here: 85k dead rows after one big seed made
 * every read 30 ms). The tables are small, so a VACUUM costs a few milliseconds. Not in a transaction.
 */
export async function vacuumCounterDeltas(db: CommonQueryMethods): Promise<void> {
  await db.query(sql.unsafe`VACUUM event_counter_deltas, projection_counter_deltas`);
}

export interface EventTotals {
  /** Every event ever appended (hot and archived). */
  total: number;
  /** Most frequent first, then by name. */
  byType: { type: string; count: number }[];
  /** Events and streams per stream type (streams: those created, i.e. with an event of version 1). */
  byStreamType: Map<string, { events: number; streams: number }>;
  streams: number;
}

const KeyCount = z.object({ dim: z.string(), key: z.string(), events: z.number(), streams: z.number() });

export async function eventTotals(db: CommonQueryMethods): Promise<EventTotals> {
  const rows = await db.any(sql.type(KeyCount)`
    SELECT dim, key, sum(events)::int8 AS events, sum(streams)::int8 AS streams
    FROM event_counts WHERE grain = 'all' GROUP BY dim, key`);
  const byType = rows
    .filter((r) => r.dim === 'type' && r.events > 0)
    .map((r) => ({ type: r.key, count: r.events }))
    .sort((a, b) => b.count - a.count || (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
  const byStreamType = new Map(rows.filter((r) => r.dim === 'stream_type').map((r) => [r.key, { events: r.events, streams: r.streams }]));
  return {
    total: byType.reduce((n, t) => n + t.count, 0),
    byType,
    byStreamType,
    streams: [...byStreamType.values()].reduce((n, s) => n + s.streams, 0),
  };
}

/** Events of one type ever appended (e.g. AlertTriggered for the status line). */
export async function eventsOfType(db: CommonQueryMethods, type: string): Promise<number> {
  return db.oneFirst(sql.type(z.object({ n: z.number() }))`
    SELECT coalesce(sum(events), 0)::int8 AS n FROM event_counts WHERE grain = 'all' AND dim = 'type' AND key = ${type}`);
}

/** The start of the minute `at` falls in: the finest grain counted. */
export function minuteFloor(at: Date): Date {
  return new Date(Math.floor(at.getTime() / 60_000) * 60_000);
}

/**
 * Events recorded since the start of `since`'s minute (minute rows: at most 1,440 a day of window).
 * `since` within the current hour or older: the cost is the window's minutes, never the store.
 */
export async function eventsSince(db: CommonQueryMethods, since: Date): Promise<number> {
  return db.oneFirst(sql.type(z.object({ n: z.number() }))`
    SELECT coalesce(sum(events), 0)::int8 AS n FROM event_counts
    WHERE grain = 'minute' AND dim = 'type' AND bucket >= ${minuteFloor(since).toISOString()}::timestamptz`);
}

/**
 * Events recorded since the start of a UTC hour (hour rows only, at most 24 × types a day).
 * Today (UTC) starts on an hour, so "events today" is exact from hour rows.
 */
export async function eventsSinceHour(db: CommonQueryMethods, hourStart: Date): Promise<number> {
  return db.oneFirst(sql.type(z.object({ n: z.number() }))`
    SELECT coalesce(sum(events), 0)::int8 AS n FROM event_counts
    WHERE grain = 'hour' AND dim = 'type' AND bucket >= ${hourStart.toISOString()}::timestamptz`);
}

export interface WindowCounts {
  /** The window's start as counted: `since` rounded down to its minute. */
  since: Date;
  byType: { type: string; count: number }[];
  byPlatform: { platform: string; count: number }[];
  /** Hour start (ISO) → events, oldest first. */
  byHour: { hour: string; count: number }[];
}

const WindowRow = z.object({ dim: z.string(), key: z.string(), hour: z.string(), events: z.number() });

/**
 * Counts by type, by platform and by hour since the start of `since`'s minute: whole hours from hour
 * rows, the minutes before the first whole hour from minute rows. A 31-day window reads at most
 * 744 hours + 59 minutes of rows per type and platform, whatever the size of the store.
 */
export async function windowCounts(db: CommonQueryMethods, sinceAt: Date): Promise<WindowCounts> {
  const since = minuteFloor(sinceAt);
  const firstHour = new Date(Math.ceil(since.getTime() / 3_600_000) * 3_600_000);
  const rows = await db.any(sql.type(WindowRow)`
    SELECT dim, key, date_trunc('hour', bucket) AS hour, sum(events)::int8 AS events
    FROM event_counts
    WHERE dim IN ('type', 'platform')
      AND ((grain = 'hour' AND bucket >= ${firstHour.toISOString()}::timestamptz)
        OR (grain = 'minute' AND bucket >= ${since.toISOString()}::timestamptz AND bucket < ${firstHour.toISOString()}::timestamptz))
    GROUP BY dim, key, 3`);
  const sumBy = <K extends string>(dim: string, keyOf: (r: z.infer<typeof WindowRow>) => string, name: K) => {
    const m = new Map<string, number>();
    for (const r of rows) if (r.dim === dim) m.set(keyOf(r), (m.get(keyOf(r)) ?? 0) + r.events);
    return [...m].filter(([, n]) => n > 0).map(([k, count]) => ({ [name]: k, count }) as Record<K, string> & { count: number });
  };
  const byCount = (a: { count: number }, b: { count: number }) => b.count - a.count;
  return {
    since,
    byType: sumBy('type', (r) => r.key, 'type').sort(byCount),
    byPlatform: sumBy('platform', (r) => r.key, 'platform').sort(byCount),
    byHour: sumBy('type', (r) => r.hour, 'hour').sort((a, b) => (a.hour < b.hour ? -1 : 1)),
  };
}
