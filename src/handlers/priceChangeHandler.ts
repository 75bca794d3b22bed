import { sql } from 'slonik';
import { z } from 'zod';
import { emitAlerts } from './alerting.js';
import type { EventHandler } from './Handler.js';
import { cacheTicketFields } from './ticketCache.js';

/** Price moved: refresh the cache, count it, and on a drop alert the monitors it now satisfies. */
export const PriceChangeHandler: EventHandler = {
  name: 'PriceChangeHandler',
  handledTypes: ['TicketPriceChanged'],
  async handle(e, ctx) {
    if (e.type !== 'TicketPriceChanged') return;
    const p = e.payload;
    cacheTicketFields(ctx.redisBatch, ctx.settings.cachePrefix, p.ticketId, e.version, ctx.settings.cacheTtlSeconds, {
      priceMinor: p.newPrice.amountMinor,
      currency: p.newPrice.currency,
    });
    const drop = p.newPrice.currency === p.oldPrice.currency && p.newPrice.amountMinor < p.oldPrice.amountMinor;
    ctx.countForPlatform(p.platform, e.occurredAt, { price_changes: 1, price_drops: drop ? 1 : 0 });
    if (!drop) return;
    // The fixture and quantity live on the ticket's discovery event: read them from the store, the source of truth.
    // One query for the whole batch (only when some price dropped).
    const discovered = await ctx.memo('discovered', async () => {
      const streams = [...new Set(ctx.batch.map((x) => x.streamId))];
      const rows = await ctx.tx.any(sql.type(z.object({ stream_id: z.string(), eventName: z.string(), quantity: z.number() }))`
        SELECT DISTINCT ON (stream_id) stream_id, payload->>'eventName' AS "eventName", (payload->>'quantity')::int AS quantity
        FROM event_store WHERE stream_id = ANY(${sql.array(streams, 'text')}) AND event_type = 'TicketDiscovered'
        ORDER BY stream_id, version`);
      return new Map(rows.map((r) => [r.stream_id, r]));
    });
    const ticket = discovered.get(e.streamId);
    if (!ticket || ticket.quantity <= 0) return;
    await emitAlerts(this.name, e, { ticketId: p.ticketId, platform: p.platform, eventName: ticket.eventName, price: p.newPrice, quantity: ticket.quantity, reason: 'price_drop' }, ctx, () =>
      [...discovered.values()].map((t) => t.eventName),
    );
  },
};
