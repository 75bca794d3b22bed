import { createHash } from 'node:crypto';
import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { Price } from '../domain/index.js';
import type { HandledEvent, HandlerContext, PlatformStatsDelta } from './Handler.js';

const MonitorRow = z.object({ monitorId: z.string(), userId: z.string(), platforms: z.array(z.string()), maxPrice: z.object({ amountMinor: z.number(), currency: z.string() }).nullable(), minQuantity: z.number() });

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

/**
 * Checks the active monitors for this fixture and emits one AlertTriggered per matching monitor.
 * `batchFixtures` names every fixture the batch may ask about, so the monitors of all of them are
 * loaded with one query per batch instead of one per fixture.
 */
export async function emitAlerts(handlerName: string, source: HandledEvent, c: AlertCandidate, ctx: HandlerContext, batchFixtures: () => string[]): Promise<number> {
  const byFixture = await ctx.memo('monitors', async () => {
    const names = [...new Set([c.eventName, ...batchFixtures()])];
    const rows = await ctx.tx.any(sql.type(z.object({ doc: MonitorRow.extend({ eventName: z.string() }) }))`
      SELECT doc FROM monitoring_read_models
      WHERE kind = 'monitor' AND doc->>'eventName' = ANY(${sql.array(names, 'text')}) AND doc->>'status' = 'active'
      ORDER BY id`);
    const map = new Map<string, z.infer<typeof MonitorRow>[]>();
    for (const { doc } of rows) map.set(doc.eventName, [...(map.get(doc.eventName) ?? []), doc]);
    return map;
  });
  const monitors = (byFixture.get(c.eventName) ?? []).map((doc) => ({ doc }));
  let emitted = 0;
  for (const { doc: m } of monitors) {
    if (!m.platforms.includes(c.platform)) continue;
    if (c.quantity < m.minQuantity) continue;
    if (m.maxPrice && (m.maxPrice.currency !== c.price.currency || c.price.amountMinor > m.maxPrice.amountMinor)) continue;
    const alertId = deterministicUuid('alert', source.id, m.monitorId);
    await ctx.emit({
      id: deterministicUuid(handlerName, source.id, m.monitorId),
      type: 'AlertTriggered',
      payload: { alertId, monitorId: m.monitorId, userId: m.userId, ticketId: c.ticketId, platform: c.platform, eventName: c.eventName, price: c.price, reason: c.reason, quantity: c.quantity },
      metadata: { causation_id: source.id, correlation_id: (source.metadata.correlation_id as string | undefined) ?? source.id, source: handlerName },
    });
    emitted++;
  }
  return emitted;
}

/** Applies accumulated counters, one upsert, platforms in sorted order (a fixed lock order). */
export async function flushPlatformStats(tx: CommonQueryMethods, stats: Map<string, { at: string; delta: PlatformStatsDelta }>): Promise<void> {
  if (stats.size === 0) return;
  const rows = [...stats].sort(([a], [b]) => (a < b ? -1 : 1)).map(([platform, { at, delta }]) => [
    platform, delta.tickets_discovered ?? 0, delta.price_changes ?? 0, delta.price_drops ?? 0, delta.alerts_triggered ?? 0, at,
  ]);
  await tx.query(sql.unsafe`
    INSERT INTO platform_stats (platform, tickets_discovered, price_changes, price_drops, alerts_triggered, last_event_at)
    SELECT * FROM ${sql.unnest(rows, ['text', 'int8', 'int8', 'int8', 'int8', 'timestamptz'])}
    ON CONFLICT (platform) DO UPDATE SET
      tickets_discovered = platform_stats.tickets_discovered + EXCLUDED.tickets_discovered,
      price_changes = platform_stats.price_changes + EXCLUDED.price_changes,
      price_drops = platform_stats.price_drops + EXCLUDED.price_drops,
      alerts_triggered = platform_stats.alerts_triggered + EXCLUDED.alerts_triggered,
      last_event_at = GREATEST(platform_stats.last_event_at, EXCLUDED.last_event_at), updated_at = now()`);
}
