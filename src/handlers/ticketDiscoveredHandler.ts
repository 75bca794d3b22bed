import { emitAlerts } from './alerting.js';
import type { EventHandler } from './Handler.js';
import { cacheTicketFields } from './ticketCache.js';

/** New listing: cache it, count it for its platform, and alert the users whose monitors it matches. */
export const TicketDiscoveredHandler: EventHandler = {
  name: 'TicketDiscoveredHandler',
  handledTypes: ['TicketDiscovered'],
  readsStoreOrder: true,
  async handle(e, ctx) {
    if (e.type !== 'TicketDiscovered') return;
    const p = e.payload;
    cacheTicketFields(ctx.cache, ctx.settings.cachePrefix, p.ticketId, e.version, ctx.settings.cacheTtlSeconds, {
      platform: p.platform,
      eventName: p.eventName,
      venue: p.venue,
      eventDate: p.eventDate,
      priceMinor: p.price.amountMinor,
      currency: p.price.currency,
      quantity: p.quantity,
      status: p.quantity > 0 ? 'available' : 'sold_out',
    });
    ctx.countForPlatform(p.platform, e.occurredAt, { tickets_discovered: 1 });
    if (p.quantity > 0) {
      await emitAlerts(this.name, e, { ticketId: p.ticketId, platform: p.platform, eventName: p.eventName, price: p.price, quantity: p.quantity, reason: 'ticket_discovered' }, ctx, () =>
        ctx.batch.flatMap((x) => (x.type === 'TicketDiscovered' ? [x.payload.eventName] : [])),
      );
    }
  },
};
