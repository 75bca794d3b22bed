import { z } from 'zod';
import type { DomainEvent } from '../events/DomainEvent.js';
import { IsoDateTimeSchema } from '../valueObjects/IsoDateTime.js';
import { PlatformSourceSchema } from '../valueObjects/PlatformSource.js';
import { PriceSchema, type Price } from '../valueObjects/Price.js';
import { TicketIdSchema } from '../valueObjects/TicketId.js';
import type { Aggregate } from './Aggregate.js';

export const TICKET_STATUSES = ['available', 'sold_out'] as const;

export const TicketStateSchema = z
  .object({
    ticketId: TicketIdSchema,
    platform: PlatformSourceSchema,
    eventName: z.string().min(1).max(200),
    venue: z.string().min(1).max(200),
    eventDate: IsoDateTimeSchema,
    section: z.string().max(50).optional(),
    row: z.string().max(20).optional(),
    quantity: z.number().int().nonnegative(),
    price: PriceSchema,
    status: z.enum(TICKET_STATUSES),
    priceChanges: z.number().int().nonnegative(),
    lowestPrice: PriceSchema,
    highestPrice: PriceSchema,
  })
  .strict();

export type TicketState = z.infer<typeof TicketStateSchema>;

/**
 * Amounts in different currencies are not comparable, so when a listing is repriced in another
 * currency its range restarts from the new price rather than mixing units.
 */
function widenRange(state: Pick<TicketState, 'lowestPrice' | 'highestPrice'>, price: Price): Pick<TicketState, 'lowestPrice' | 'highestPrice'> {
  if (state.lowestPrice.currency !== price.currency || state.highestPrice.currency !== price.currency) {
    return { lowestPrice: price, highestPrice: price };
  }
  return {
    lowestPrice: price.amountMinor < state.lowestPrice.amountMinor ? price : state.lowestPrice,
    highestPrice: price.amountMinor > state.highestPrice.amountMinor ? price : state.highestPrice,
  };
}

const statusFor = (quantity: number): TicketState['status'] => (quantity > 0 ? 'available' : 'sold_out');

/**
 * A ticket exists once discovered: until then the state is null, and changes to an undiscovered
 * ticket are ignored because there is no listing (name, venue, date) to apply them to.
 */
function evolve(state: TicketState | null, event: DomainEvent): TicketState | null {
  switch (event.type) {
    case 'TicketDiscovered': {
      const p = event.payload;
      if (state && state.ticketId !== p.ticketId) return state;
      // A rediscovery refreshes the listing but keeps the history it already has.
      const range = state ? widenRange(state, p.price) : { lowestPrice: p.price, highestPrice: p.price };
      return {
        ticketId: p.ticketId,
        platform: p.platform,
        eventName: p.eventName,
        venue: p.venue,
        eventDate: p.eventDate,
        ...(p.section !== undefined ? { section: p.section } : {}),
        ...(p.row !== undefined ? { row: p.row } : {}),
        quantity: p.quantity,
        price: p.price,
        status: statusFor(p.quantity),
        priceChanges: state?.priceChanges ?? 0,
        ...range,
      };
    }
    case 'TicketPriceChanged':
      if (!state || state.ticketId !== event.payload.ticketId) return state;
      return { ...state, price: event.payload.newPrice, priceChanges: state.priceChanges + 1, ...widenRange(state, event.payload.newPrice) };
    case 'TicketAvailabilityChanged':
      if (!state || state.ticketId !== event.payload.ticketId) return state;
      return { ...state, quantity: event.payload.newQuantity, status: statusFor(event.payload.newQuantity) };
    case 'TicketSoldOut':
      if (!state || state.ticketId !== event.payload.ticketId) return state;
      return { ...state, quantity: 0, status: 'sold_out' };
    default:
      return state;
  }
}

export const ticketAggregate = {
  initialState: (): TicketState | null => null,
  evolve,
  // Nullable: a stream whose first event was not a discovery legitimately folds to null.
  stateSchema: TicketStateSchema.nullable(),
  snapshotEvery: 50,
} as const satisfies Aggregate<TicketState | null>;
