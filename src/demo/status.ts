import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { countOpenFailures } from '../consumers/failures.js';
import { owedSummary } from '../consumers/owedWork.js';
import { tableRowCounts } from '../db/rowEstimates.js';
import { eventsOfType, eventTotals } from '../eventStore/counters.js';
import type { Projection } from '../projections/Projection.js';
import { projectionLags, streamTypesOf } from '../projections/status.js';

export interface DemoStatus {
  at: number;
  /** Events appended so far (the append counters; archived events included). */
  events: number;
  /** Events applied by projections / still owed to them. */
  projected: number;
  lag: number;
  readModelRows: number;
  /** Some table's rows are the planner's estimate (over 1,000 rows): shown with "~". */
  readModelRowsEstimated: boolean;
  alerts: number;
  outbox: number;
  /** Events still owed to handlers and projections, from Postgres' owed-work record. */
  owed: number;
  /** Registered consumers that no live worker runs. */
  withoutWorker: string[];
  openFailures: number;
}

/**
 * The status line of `npm start`, from counters and bounded reads only (it refreshes every few seconds
 * for as long as the demo runs, so it must not slow down as the store grows): events and alerts from
 * the append counters, projected/lag from projectionLags, read-model rows counted up to 1,000 and
 * estimated above, outbox and owed work (backlogs). Independent of the HTTP API, so the demo reports
 * progress even while that is not there.
 */
export async function readDemoStatus(pool: DatabasePool, projections: readonly Projection<any>[]): Promise<DemoStatus> {
  const tables = [...new Set(projections.map((p) => p.table))];
  const lags = await projectionLags(pool, projections.map((p) => ({ name: p.name, streamTypes: streamTypesOf(p) })));
  const [totals, alerts, rowCounts, outbox, owed, failures] = await Promise.all([
    eventTotals(pool),
    eventsOfType(pool, 'AlertTriggered'),
    tableRowCounts(pool, tables),
    pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*) AS n FROM event_outbox`),
    owedSummary(pool),
    countOpenFailures(pool),
  ]);
  const all = [...lags.values()];
  const rows = [...rowCounts.values()];
  return {
    at: Date.now(),
    events: totals.total,
    projected: all.reduce((n, l) => n + l.appliedEvents, 0),
    lag: all.reduce((n, l) => n + l.lagEvents, 0),
    readModelRows: rows.reduce((n, r) => n + r.rows, 0),
    readModelRowsEstimated: rows.some((r) => r.estimated),
    alerts,
    outbox,
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
  return `${time}  events ${fmt(s.events)}${rate} · projected ${fmt(s.projected)}, lag ${fmt(s.lag)} · owed ${fmt(s.owed)}${noWorker} · read models ${s.readModelRowsEstimated ? '~' : ''}${fmt(s.readModelRows)} rows · alerts ${fmt(s.alerts)} · outbox ${fmt(s.outbox)} · open failures ${fmt(s.openFailures)}`;
}
