import { createHash } from 'node:crypto';
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { Price } from '../domain/index.js';
import type { HandledEvent, HandlerContext, PlatformStatsDelta } from './Handler.js';

/** A UUID derived from its inputs, so a retried handler emits the very same event (idempotent append). */
export function deterministicUuid(...parts: string[]): string {
  const h = createHash('sha1').update(parts.join('|')).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${h.slice(18, 20)}-${h.slice(20, 32)}`;
}

export interface AlertCandidate {
  ticketId: string;
  platform: string;
  eventName: string;
  price: Price;
  quantity: number;
  reason: 'ticket_discovered' | 'price_drop';
}

const Criteria = z.object({
  monitorId: z.string(),
  userId: z.string(),
  eventName: z.string(),
  platforms: z.array(z.string()),
  maxPrice: z.object({ amountMinor: z.number(), currency: z.string() }).optional(),
  minQuantity: z.number(),
});
type Criteria = z.infer<typeof Criteria>;

/** One MonitoringStarted or MonitoringStopped of a monitor, at its place in the global order. */
interface MonitorStep {
  xid: bigint;
  position: number;
  started: Criteria | null;
}

interface HistoryRow {
  stream_id: string;
  event_type: string;
  payload: unknown;
  transaction_id: string;
  global_position: number;
}

/**
 * The start/stop history of every monitor that was ever started for one of these fixtures, read from
 * the store in global order (transaction id, position), by fixture. Monitor streams are never archived
 * (events:archive leaves them hot), so the hot table holds every monitor's whole history.
 */
async function monitorHistories(tx: CommonQueryMethods, fixtures: readonly string[]): Promise<Map<string, MonitorStep[][]>> {
  // Our own rows, validated when stored: read as they are (a zod parse per row was the handler worker's largest single cost).
  const rows = (await tx.any(sql.unsafe`
    SELECT m.stream_id, m.event_type, m.payload, m.transaction_id::text AS transaction_id, m.global_position
    FROM event_store m
    WHERE m.event_type IN ('MonitoringStarted', 'MonitoringStopped')
      AND m.stream_id IN (SELECT stream_id FROM event_store WHERE event_type = 'MonitoringStarted' AND payload->>'eventName' = ANY(${sql.array([...fixtures], 'text')}))
    ORDER BY m.stream_id, m.transaction_id, m.global_position`)) as readonly HistoryRow[];
  const byStream = new Map<string, MonitorStep[]>();
  for (const r of rows) {
    const step: MonitorStep = { xid: BigInt(r.transaction_id), position: r.global_position, started: r.event_type === 'MonitoringStarted' ? (r.payload as Criteria) : null };
    const list = byStream.get(r.stream_id);
    if (list) list.push(step);
    else byStream.set(r.stream_id, [step]);
  }
  // By fixture: a monitor is looked at only for the fixtures its starts named.
  const byFixture = new Map<string, MonitorStep[][]>();
  for (const steps of byStream.values()) {
    for (const fixture of new Set(steps.flatMap((s) => (s.started ? [s.started.eventName] : [])))) {
      const list = byFixture.get(fixture);
      if (list) list.push(steps);
      else byFixture.set(fixture, [steps]);
    }
  }
  return byFixture;
}

/** The criteria of a monitor at a point of the global order: its last start or stop before that point. */
function activeAt(steps: readonly MonitorStep[], xid: bigint, position: number): Criteria | null {
  let current: Criteria | null = null;
  for (const s of steps) {
    if (s.xid > xid || (s.xid === xid && s.position >= position)) break;
    current = s.started;
  }
  return current;
}

/**
 * The alert rule (README, Domain rules): monitor M alerts on ticket event E iff M's last
 * MonitoringStarted or MonitoringStopped before E in the global order is a MonitoringStarted for E's
 * fixture, E's platform is one of M's, the ticket's quantity as of E is at least M's minimum, and its
 * price as of E is within M's maximum (same currency). Everything is read from the store as of E, so
 * the same store gives the same alerts however many workers run and however their jobs interleave.
 * `batchFixtures` names every fixture the batch may ask about: one query per batch.
 */
export async function emitAlerts(handlerName: string, source: HandledEvent, c: AlertCandidate, ctx: HandlerContext, batchFixtures: () => string[]): Promise<number> {
  const histories = await ctx.memo('monitor-histories', () => monitorHistories(ctx.tx, [...new Set([c.eventName, ...batchFixtures()])]));
  const xid = BigInt(source.transactionId);
  const matches: Criteria[] = [];
  for (const steps of histories.get(c.eventName) ?? []) {
    const m = activeAt(steps, xid, source.globalPosition);
    if (!m || m.eventName !== c.eventName) continue;
    if (!m.platforms.includes(c.platform)) continue;
    if (c.quantity < m.minQuantity) continue;
    if (m.maxPrice && (m.maxPrice.currency !== c.price.currency || c.price.amountMinor > m.maxPrice.amountMinor)) continue;
    matches.push(m);
  }
  matches.sort((a, b) => (a.monitorId < b.monitorId ? -1 : a.monitorId > b.monitorId ? 1 : 0));
  for (const m of matches) {
    const alertId = deterministicUuid('alert', source.id, m.monitorId);
    await ctx.emit({
      id: deterministicUuid(handlerName, source.id, m.monitorId),
      type: 'AlertTriggered',
      payload: { alertId, monitorId: m.monitorId, userId: m.userId, ticketId: c.ticketId, platform: c.platform, eventName: c.eventName, price: c.price, reason: c.reason, quantity: c.quantity },
      metadata: { causation_id: source.id, correlation_id: (source.metadata.correlation_id as string | undefined) ?? source.id, source: handlerName, ...traceOf(source) },
    });
  }
  return matches.length;
}

/** The source's trace context, copied as stored (whether tracing is on here or not): an alert's processing continues its source's trace. */
function traceOf(source: HandledEvent): { traceparent?: string; tracestate?: string } {
  const { traceparent, tracestate } = source.metadata as { traceparent?: unknown; tracestate?: unknown };
  if (typeof traceparent !== 'string') return {};
  return typeof tracestate === 'string' ? { traceparent, tracestate } : { traceparent };
}

/** A ticket's state after each of its events: what a price change is judged against. */
export interface TicketState {
  eventName: string;
  quantity: number;
}

interface TicketRow {
  stream_id: string;
  version: number;
  event_type: string;
  payload: Record<string, unknown>;
}

/**
 * The state of each ticket stream of the batch as of each of its events, folded from the store (the
 * events of a stream up to a version are all committed once that version is): `stateAt(stream, v)`
 * is the ticket after its event v.
 */
export async function ticketStates(tx: CommonQueryMethods, upTo: ReadonlyMap<string, number>): Promise<(streamId: string, version: number) => TicketState | undefined> {
  if (upTo.size === 0) return () => undefined;
  // One probe of the (stream_id, version) index per stream, as in the projections' catch-up read
  // (eventsAfterCheckpoints: why the types are filtered outside the probe), and our own rows read as
  // they are, without a zod parse per row.
  const read = async (table: 'event_store' | 'event_store_all', streams: ReadonlyMap<string, number>) =>
    (await tx.any(sql.unsafe`
      SELECT e.*
      FROM ${sql.unnest([...streams], ['text', 'int4'])} AS w(stream_id, v)
      CROSS JOIN LATERAL (
        SELECT e.stream_id, e.version, e.event_type, e.payload FROM ${sql.identifier([table])} e
        WHERE e.stream_id = w.stream_id AND e.version <= w.v
        ORDER BY e.version OFFSET 0) e
      WHERE e.event_type IN ('TicketDiscovered', 'TicketAvailabilityChanged', 'TicketSoldOut')
      ORDER BY e.stream_id, e.version`)) as readonly TicketRow[];
  // The hot table first; a stream revived after archiving (its discovery archived) is read again with the archive.
  let rows = [...(await read('event_store', upTo))];
  const discovered = new Set(rows.filter((r) => r.event_type === 'TicketDiscovered').map((r) => r.stream_id));
  const revived = new Map([...upTo].filter(([stream]) => !discovered.has(stream)));
  if (revived.size) rows = [...rows.filter((r) => !revived.has(r.stream_id)), ...(await read('event_store_all', revived))].sort((a, b) => (a.stream_id < b.stream_id ? -1 : a.stream_id > b.stream_id ? 1 : a.version - b.version));
  const byStream = new Map<string, { version: number; state: TicketState }[]>();
  for (const r of rows) {
    const list = byStream.get(r.stream_id) ?? [];
    const prev = list.at(-1)?.state;
    const p = r.payload as { eventName?: string; quantity?: number; newQuantity?: number };
    const state: TicketState | undefined =
      r.event_type === 'TicketDiscovered'
        ? { eventName: String(p.eventName), quantity: Number(p.quantity) }
        : prev && r.event_type === 'TicketAvailabilityChanged'
          ? { ...prev, quantity: Number(p.newQuantity) }
          : prev && r.event_type === 'TicketSoldOut'
            ? { ...prev, quantity: 0 }
            : undefined;
    if (!state) continue;
    list.push({ version: r.version, state });
    byStream.set(r.stream_id, list);
  }
  return (streamId, version) => {
    let found: TicketState | undefined;
    for (const s of byStream.get(streamId) ?? []) {
      if (s.version > version) break;
      found = s.state;
    }
    return found;
  };
}

/**
 * Applies accumulated counters, one upsert, platforms in sorted order (a fixed lock order), into this
 * session's shard of each platform (migration 15): concurrent handler transactions never share a row.
 */
export async function flushPlatformStats(tx: CommonQueryMethods, stats: Map<string, { at: string; delta: PlatformStatsDelta }>): Promise<void> {
  if (stats.size === 0) return;
  const rows = [...stats].sort(([a], [b]) => (a < b ? -1 : 1)).map(([platform, { at, delta }]) => [
    platform, delta.tickets_discovered ?? 0, delta.price_changes ?? 0, delta.price_drops ?? 0, delta.alerts_triggered ?? 0, at,
  ]);
  await tx.query(sql.unsafe`
    INSERT INTO platform_stats (platform, shard, tickets_discovered, price_changes, price_drops, alerts_triggered, last_event_at)
    SELECT u.platform, pg_backend_pid() % 256, u.td, u.pc, u.pd, u.at, u.last
    FROM ${sql.unnest(rows, ['text', 'int8', 'int8', 'int8', 'int8', 'timestamptz'])} AS u(platform, td, pc, pd, at, last)
    ON CONFLICT (platform, shard) DO UPDATE SET
      tickets_discovered = platform_stats.tickets_discovered + EXCLUDED.tickets_discovered,
      price_changes = platform_stats.price_changes + EXCLUDED.price_changes,
      price_drops = platform_stats.price_drops + EXCLUDED.price_drops,
      alerts_triggered = platform_stats.alerts_triggered + EXCLUDED.alerts_triggered,
      last_event_at = GREATEST(platform_stats.last_event_at, EXCLUDED.last_event_at), updated_at = now()`);
}
