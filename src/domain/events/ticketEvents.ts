import { z } from 'zod';
import { defineEvent, defineUpcaster } from '../defineEvent.js';
import { IsoDateTimeSchema } from '../valueObjects/IsoDateTime.js';
import { PlatformSourceSchema } from '../valueObjects/PlatformSource.js';
import { PriceSchema } from '../valueObjects/Price.js';
import { TicketIdSchema } from '../valueObjects/TicketId.js';

const ticketStream = (p: { ticketId: string }) => `ticket-${p.ticketId}`;

/** Listing URLs are shown to users; only web URLs, so a scraped "javascript:" link cannot get through. */
const ListingUrlSchema = z
  .string()
  .max(2000)
  .url()
  .refine((u) => /^https?:\/\//i.test(u), 'must be an http(s) URL');

export const TicketDiscoveredPayloadSchema = z
  .object({
    ticketId: TicketIdSchema,
    platform: PlatformSourceSchema,
    /** The fixture, e.g. "Arsenal vs Chelsea". */
    eventName: z.string().min(1).max(200),
    venue: z.string().min(1).max(200),
    eventDate: IsoDateTimeSchema,
    section: z.string().max(50).optional(),
    row: z.string().max(20).optional(),
    quantity: z.number().int().nonnegative().max(100_000),
    price: PriceSchema,
    url: ListingUrlSchema.optional(),
  })
  .strict();
export type TicketDiscoveredPayload = z.infer<typeof TicketDiscoveredPayloadSchema>;

export const TicketDiscovered = defineEvent({
  type: 'TicketDiscovered',
  schemaVersion: 1,
  streamType: 'ticket',
  streamId: ticketStream,
  payload: TicketDiscoveredPayloadSchema,
});

/** Stored shape of schema version 1: bare amounts, no currency. */
export const TicketPriceChangedV1PayloadSchema = z
  .object({
    ticketId: TicketIdSchema,
    platform: PlatformSourceSchema,
    oldAmountMinor: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    newAmountMinor: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  })
  .strict();
export type TicketPriceChangedV1Payload = z.infer<typeof TicketPriceChangedV1PayloadSchema>;

export const TicketPriceChangedPayloadSchema = z
  .object({
    ticketId: TicketIdSchema,
    platform: PlatformSourceSchema,
    oldPrice: PriceSchema,
    newPrice: PriceSchema,
  })
  .strict();
export type TicketPriceChangedPayload = z.infer<typeof TicketPriceChangedPayloadSchema>;

/**
 * v1 events were written while the service only monitored UK listings, when every amount was in
 * pounds, so GBP is the currency those amounts were in (not a guess or a default).
 */
export function upcastTicketPriceChangedV1(v1: TicketPriceChangedV1Payload): TicketPriceChangedPayload {
  return {
    ticketId: v1.ticketId,
    platform: v1.platform,
    oldPrice: { amountMinor: v1.oldAmountMinor, currency: 'GBP' },
    newPrice: { amountMinor: v1.newAmountMinor, currency: 'GBP' },
  };
}

export const TicketPriceChanged = defineEvent({
  type: 'TicketPriceChanged',
  schemaVersion: 2,
  streamType: 'ticket',
  streamId: ticketStream,
  payload: TicketPriceChangedPayloadSchema,
  upcasters: { 1: defineUpcaster(TicketPriceChangedV1PayloadSchema, upcastTicketPriceChangedV1) },
});

export const TicketAvailabilityChangedPayloadSchema = z
  .object({
    ticketId: TicketIdSchema,
    platform: PlatformSourceSchema,
    oldQuantity: z.number().int().nonnegative().max(100_000),
    newQuantity: z.number().int().nonnegative().max(100_000),
  })
  .strict();
export type TicketAvailabilityChangedPayload = z.infer<typeof TicketAvailabilityChangedPayloadSchema>;

export const TicketAvailabilityChanged = defineEvent({
  type: 'TicketAvailabilityChanged',
  schemaVersion: 1,
  streamType: 'ticket',
  streamId: ticketStream,
  payload: TicketAvailabilityChangedPayloadSchema,
});

export const TicketSoldOutPayloadSchema = z
  .object({
    ticketId: TicketIdSchema,
    platform: PlatformSourceSchema,
    soldOutAt: IsoDateTimeSchema,
  })
  .strict();
export type TicketSoldOutPayload = z.infer<typeof TicketSoldOutPayloadSchema>;

export const TicketSoldOut = defineEvent({
  type: 'TicketSoldOut',
  schemaVersion: 1,
  streamType: 'ticket',
  streamId: ticketStream,
  payload: TicketSoldOutPayloadSchema,
});
