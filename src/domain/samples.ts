import type { DomainEventType, EventOf, PayloadOf } from './events/DomainEvent.js';
import { EventValidationError } from './errors.js';

// Fixed values (no clock, no randomness) so tests and demos that use samples are reproducible.
const KICK_OFF = '2030-05-18T15:00:00.000Z';
const AT = '2030-05-01T12:00:00.000Z';

const SAMPLES: { readonly [T in DomainEventType]: () => PayloadOf<T> } = {
  TicketDiscovered: () => ({
    ticketId: 'tm-0001',
    platform: 'ticketmaster',
    eventName: 'Arsenal vs Chelsea',
    venue: 'Emirates Stadium, London',
    eventDate: KICK_OFF,
    section: 'Block 12',
    row: 'F',
    quantity: 4,
    price: { amountMinor: 8500, currency: 'GBP' },
    url: 'https://www.ticketmaster.co.uk/listing/tm-0001',
  }),
  TicketPriceChanged: () => ({
    ticketId: 'tm-0001',
    platform: 'ticketmaster',
    oldPrice: { amountMinor: 8500, currency: 'GBP' },
    newPrice: { amountMinor: 7950, currency: 'GBP' },
  }),
  TicketAvailabilityChanged: () => ({ ticketId: 'tm-0001', platform: 'ticketmaster', oldQuantity: 4, newQuantity: 2 }),
  TicketSoldOut: () => ({ ticketId: 'tm-0001', platform: 'ticketmaster', soldOutAt: AT }),
  PurchaseInitiated: () => ({
    purchaseId: 'purchase-0001',
    ticketId: 'tm-0001',
    userId: 'user-0001',
    quantity: 2,
    totalPrice: { amountMinor: 15900, currency: 'GBP' },
  }),
  PurchaseCompleted: () => ({ purchaseId: 'purchase-0001', confirmationCode: 'HDT123456', completedAt: AT }),
  PurchaseFailed: () => ({ purchaseId: 'purchase-0001', reason: 'payment declined by issuer', errorCode: 'card_declined' }),
  PaymentProcessed: () => ({
    purchaseId: 'purchase-0001',
    paymentId: 'payment-0001',
    amount: { amountMinor: 15900, currency: 'GBP' },
    method: 'card',
    status: 'succeeded',
  }),
  MonitoringStarted: () => ({
    monitorId: 'monitor-0001',
    userId: 'user-0001',
    eventName: 'Arsenal vs Chelsea',
    platforms: ['ticketmaster', 'stubhub'],
    maxPrice: { amountMinor: 10000, currency: 'GBP' },
    minQuantity: 2,
  }),
  MonitoringStopped: () => ({ monitorId: 'monitor-0001', userId: 'user-0001', reason: 'user stopped watching' }),
  AlertTriggered: () => ({
    alertId: 'alert-0001',
    monitorId: 'monitor-0001',
    userId: 'user-0001',
    ticketId: 'tm-0001',
    platform: 'ticketmaster',
    eventName: 'Arsenal vs Chelsea',
    price: { amountMinor: 7950, currency: 'GBP' },
    reason: 'price_drop',
    quantity: 4,
  }),
  ScrapingJobStarted: () => ({
    jobId: 'job-0001',
    platform: 'ticketmaster',
    target: 'https://www.ticketmaster.co.uk/search?q=Arsenal%20vs%20Chelsea',
    startedAt: AT,
  }),
  ScrapingJobCompleted: () => ({ jobId: 'job-0001', platform: 'ticketmaster', success: true, ticketsFound: 12, durationMs: 2400 }),
  PlatformStatusChanged: () => ({ platform: 'stubhub', oldStatus: 'online', newStatus: 'rate_limited', reason: 'HTTP 429 from platform' }),
  ErrorOccurred: () => ({
    errorId: 'error-0001',
    component: 'scraper',
    severity: 'error',
    message: 'listing page layout changed',
    context: { platform: 'stubhub', httpStatus: 200, retried: true, jobId: null },
  }),
};

/**
 * A valid event of `type` with deterministic values. Overrides are merged shallowly and not
 * validated, so callers can also build invalid payloads from a known-good base. Each call returns
 * fresh objects, so mutating a sample never leaks into another.
 */
export function sampleEvent<T extends DomainEventType>(type: T, overrides: Partial<PayloadOf<T>> = {}): EventOf<T> {
  const make = (SAMPLES as Record<string, (() => object) | undefined>)[type];
  if (!make) throw new EventValidationError([{ field: 'type', message: `no sample for event type ${JSON.stringify(String(type).slice(0, 64))}` }]);
  return { type, payload: { ...make(), ...overrides } } as unknown as EventOf<T>;
}
