import type { Price } from '../domain/index.js';
import { defineProjection } from './Projection.js';

export interface TicketDoc {
  ticketId: string;
  platform: string;
  eventName: string | null;
  venue: string | null;
  eventDate: string | null;
  section: string | null;
  row: string | null;
  quantity: number;
  price: Price | null;
  lowestPrice: Price | null;
  highestPrice: Price | null;
  priceChanges: number;
  status: 'available' | 'sold_out';
  discoveredAt: string | null;
  soldOutAt: string | null;
  lastEventAt: string;
  version: number;
}

const lower = (a: Price | null, b: Price) => (!a || (a.currency === b.currency && b.amountMinor < a.amountMinor) ? b : a);
const higher = (a: Price | null, b: Price) => (!a || (a.currency === b.currency && b.amountMinor > a.amountMinor) ? b : a);

function blank(ticketId: string, platform: string, at: string): TicketDoc {
  return { ticketId, platform, eventName: null, venue: null, eventDate: null, section: null, row: null, quantity: 0, price: null, lowestPrice: null, highestPrice: null, priceChanges: 0, status: 'available', discoveredAt: null, soldOutAt: null, lastEventAt: at, version: 0 };
}

/** One document per ticket listing: current price and availability, price range and history count. */
export const TicketReadModelProjection = defineProjection<TicketDoc>({
  name: 'TicketReadModelProjection',
  version: 1,
  table: 'ticket_read_models',
  handledTypes: ['TicketDiscovered', 'TicketPriceChanged', 'TicketAvailabilityChanged', 'TicketSoldOut'],
  keysOf: (e) => [(e.payload as { ticketId: string }).ticketId],
  apply(e, docs) {
    const p = e.payload as { ticketId: string; platform: string };
    const doc = docs.get(p.ticketId) ?? blank(p.ticketId, p.platform, e.occurredAt);
    switch (e.type) {
      case 'TicketDiscovered': {
        const d = e.payload;
        Object.assign(doc, {
          platform: d.platform,
          eventName: d.eventName,
          venue: d.venue,
          eventDate: d.eventDate,
          section: d.section ?? null,
          row: d.row ?? null,
          quantity: d.quantity,
          price: d.price,
          lowestPrice: lower(doc.lowestPrice, d.price),
          highestPrice: higher(doc.highestPrice, d.price),
          status: d.quantity > 0 ? 'available' : 'sold_out',
          discoveredAt: doc.discoveredAt ?? e.occurredAt,
        });
        break;
      }
      case 'TicketPriceChanged':
        doc.price = e.payload.newPrice;
        doc.lowestPrice = lower(doc.lowestPrice, e.payload.newPrice);
        doc.highestPrice = higher(doc.highestPrice, e.payload.newPrice);
        doc.priceChanges += 1;
        break;
      case 'TicketAvailabilityChanged':
        doc.quantity = e.payload.newQuantity;
        doc.status = e.payload.newQuantity > 0 ? 'available' : 'sold_out';
        if (doc.status === 'available') doc.soldOutAt = null;
        break;
      case 'TicketSoldOut':
        doc.quantity = 0;
        doc.status = 'sold_out';
        doc.soldOutAt = e.payload.soldOutAt;
        break;
      default:
        return;
    }
    doc.lastEventAt = e.occurredAt;
    doc.version = e.version;
    docs.set(p.ticketId, doc);
  },
});
