import { emitAlerts, ticketStates } from './alerting.js';
import type { EventHandler } from './Handler.js';
import { cacheTicketFields } from './ticketCache.js';

/** Price moved: refresh the cache, count it, and on a drop alert the monitors it now satisfies. */
export const PriceChangeHandler: EventHandler = {
  name: 'PriceChangeHandler',
  handledTypes: ['TicketPriceChanged'],
  readsStoreOrder: true,
  async handle(e, ctx) {
    if (e.type !== 'TicketPriceChanged') return;
    const p = e.payload;
    cacheTicketFields(ctx.cache, ctx.settings.cachePrefix, p.ticketId, e.version, ctx.settings.cacheTtlSeconds, {
      priceMinor: p.newPrice.amountMinor,
      currency: p.newPrice.currency,
    });
    const drop = p.newPrice.currency === p.oldPrice.currency && p.newPrice.amountMinor < p.oldPrice.amountMinor;
    ctx.countForPlatform(p.platform, e.occurredAt, { price_changes: 1, price_drops: drop ? 1 : 0 });
    if (!drop) return;
    // The ticket as of this event (its fixture, and its quantity then: a drop after a sell-out alerts
    // nobody), folded from the store for every price change of the batch in one query.
    const stateAt = await ctx.memo('ticket-states', () => {
      const upTo = new Map<string, number>();
      for (const x of ctx.batch) if (x.type === 'TicketPriceChanged') upTo.set(x.streamId, Math.max(upTo.get(x.streamId) ?? 0, x.version));
      return ticketStates(ctx.tx, upTo);
    });
    const ticket = stateAt(e.streamId, e.version);
    if (!ticket || ticket.quantity <= 0) return;
    const fixtures = ctx.batch.flatMap((x) => (x.type === 'TicketPriceChanged' ? [stateAt(x.streamId, x.version)?.eventName ?? ''] : [])).filter(Boolean);
    await emitAlerts(this.name, e, { ticketId: p.ticketId, platform: p.platform, eventName: ticket.eventName, price: p.newPrice, quantity: ticket.quantity, reason: 'price_drop' }, ctx, () => fixtures);
  },
};
