import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { countOpenFailures } from '../consumers/failures.js';
import { owedSummary } from '../consumers/owedWork.js';
import { eventRegistry } from '../domain/index.js';
import type { Projection } from '../projections/Projection.js';

export interface DemoStatus {
  at: number;
  /** Events appended so far (the sum of stream versions, cheaper than counting the store). */
  events: number;
  /** Events applied by projections / still owed to them. */
  projected: number;
  lag: number;
  readModelRows: number;
  alerts: number;
  outbox: number;
  /** Events still owed to handlers and projections, from Postgres' owed-work record. */
  owed: number;
  /** Registered consumers that no live worker runs. */
  withoutWorker: string[];
  openFailures: number;
}

const Counts = z.object({
  events: z.number(),
  projected: z.number(),
  lag: z.number(),
  rows: z.number(),
  alerts: z.number(),
  outbox: z.number(),
});

/** (projection, stream type) pairs: a projection owes every event of the stream types it reads. */
function subscriptions(projections: readonly Projection<any>[]): [string, string][] {
  const pairs = new Set<string>();
  for (const p of projections) for (const t of p.handledTypes) pairs.add(`${p.name}\n${eventRegistry.definition(t).streamType}`);
  return [...pairs].map((s) => s.split('\n') as [string, string]);
}

/**
 * One round trip of small aggregate queries for the status line of `npm start`. Independent of the
 * HTTP API, so the demo reports progress even while that is not there.
 */
export async function readDemoStatus(pool: DatabasePool, projections: readonly Projection<any>[]): Promise<DemoStatus> {
  const subs = subscriptions(projections);
  const tables = [...new Set(projections.map((p) => p.table))];
  const rowCounts = tables.length
    ? sql.join(tables.map((t) => sql.fragment`(SELECT count(*) FROM ${sql.identifier([t])})`), sql.fragment` + `)
    : sql.fragment`0`;
  const c = await pool.one(sql.type(Counts)`
    WITH owed AS (
      SELECT s.version AS stream_version, coalesce(c.version, 0) AS done
      FROM unnest(${sql.array(subs.map((s) => s[0]), 'text')}::text[], ${sql.array(subs.map((s) => s[1]), 'text')}::text[]) AS sub(projection, stream_type)
      JOIN event_projections ep ON ep.name = sub.projection
      JOIN event_streams s ON s.stream_type = sub.stream_type
      LEFT JOIN projection_checkpoints c ON c.projection = sub.projection AND c.generation = ep.generation AND c.stream_id = s.stream_id
    )
    SELECT
      (SELECT coalesce(sum(version), 0) FROM event_streams)::int8 AS events,
      (SELECT coalesce(sum(done), 0) FROM owed)::int8 AS projected,
      (SELECT coalesce(sum(stream_version - done), 0) FROM owed)::int8 AS lag,
      (${rowCounts})::int8 AS rows,
      (SELECT count(*) FROM event_store WHERE event_type = 'AlertTriggered')::int8 AS alerts,
      (SELECT count(*) FROM event_outbox)::int8 AS outbox`);
  const [owed, failures] = await Promise.all([owedSummary(pool), countOpenFailures(pool)]);
  return {
    at: Date.now(),
    events: c.events,
    projected: c.projected,
    lag: c.lag,
    readModelRows: c.rows,
    alerts: c.alerts,
    outbox: c.outbox,
    owed: owed.reduce((n, o) => n + o.events, 0),
    withoutWorker: owed.filter((o) => !o.liveWorker).map((o) => o.consumer),
    openFailures: failures,
  };
}

const fmt = (n: number) => n.toLocaleString('en-GB');

/** "12:00:05  events 1,234 (+5.0/s) · projected 1,230, lag 4 · owed 4 · read models 310 rows · alerts 7 · outbox 0 · failures 0" */
export function formatStatusLine(s: DemoStatus, previous?: DemoStatus): string {
  const secs = previous ? Math.max(0.001, (s.at - previous.at) / 1000) : 0;
  const rate = previous ? ` (+${((s.events - previous.events) / secs).toFixed(1)}/s)` : '';
  const time = new Date(s.at).toTimeString().slice(0, 8);
  const noWorker = s.withoutWorker.length ? ` (no live worker: ${s.withoutWorker.join(', ')})` : '';
  return `${time}  events ${fmt(s.events)}${rate} · projected ${fmt(s.projected)}, lag ${fmt(s.lag)} · owed ${fmt(s.owed)}${noWorker} · read models ${fmt(s.readModelRows)} rows · alerts ${fmt(s.alerts)} · outbox ${fmt(s.outbox)} · open failures ${fmt(s.openFailures)}`;
}
