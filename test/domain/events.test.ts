import { describe, it, expect } from 'vitest';
import { EventValidationError, eventRegistry, sampleEvent, type DomainEventType } from '../../src/domain/index.js';

type Payload = Record<string, unknown>;

interface InvalidCase {
  name: string;
  mutate: (p: Payload) => Payload;
  field: string;
}

const set = (key: string, value: unknown) => (p: Payload) => ({ ...p, [key]: value });
const without = (key: string) => (p: Payload) => {
  const { [key]: _, ...rest } = p;
  return rest;
};
const setIn = (key: string, inner: string, value: unknown) => (p: Payload) => ({ ...p, [key]: { ...(p[key] as Payload), [inner]: value } });

/**
 * The generic cases every event gets, plus the ones that apply to its fields: a price field gets a
 * negative amount and an unknown currency; a platform field gets an unknown platform.
 */
function casesFor(spec: { wrongType: [string, unknown]; missing: string; prices?: string[]; platform?: boolean; extra?: InvalidCase[] }): InvalidCase[] {
  const [wrongField, wrongValue] = spec.wrongType;
  return [
    { name: `wrong type for ${wrongField}`, mutate: set(wrongField, wrongValue), field: `payload.${wrongField}` },
    { name: `missing ${spec.missing}`, mutate: without(spec.missing), field: `payload.${spec.missing}` },
    { name: 'an extra unknown field', mutate: set('bogus', 1), field: 'payload.bogus' },
    ...(spec.prices ?? []).flatMap((f) => [
      { name: `negative ${f}`, mutate: setIn(f, 'amountMinor', -1), field: `payload.${f}.amountMinor` },
      { name: `unknown currency in ${f}`, mutate: setIn(f, 'currency', 'XYZ'), field: `payload.${f}.currency` },
      { name: `float amount in ${f}`, mutate: setIn(f, 'amountMinor', 12.5), field: `payload.${f}.amountMinor` },
    ]),
    ...(spec.platform ? [{ name: 'unknown platform', mutate: set('platform', 'ebay'), field: 'payload.platform' }] : []),
    ...(spec.extra ?? []),
  ];
}

const INVALID: Record<DomainEventType, InvalidCase[]> = {
  TicketDiscovered: casesFor({
    wrongType: ['ticketId', 123],
    missing: 'venue',
    prices: ['price'],
    platform: true,
    extra: [
      { name: 'bad ticket id', mutate: set('ticketId', '../etc'), field: 'payload.ticketId' },
      { name: 'empty event name', mutate: set('eventName', ''), field: 'payload.eventName' },
      { name: 'too long venue', mutate: set('venue', 'v'.repeat(201)), field: 'payload.venue' },
      { name: 'non-ISO event date', mutate: set('eventDate', '18/05/2030'), field: 'payload.eventDate' },
      { name: 'too long section', mutate: set('section', 's'.repeat(51)), field: 'payload.section' },
      { name: 'too long row', mutate: set('row', 'r'.repeat(21)), field: 'payload.row' },
      { name: 'negative quantity', mutate: set('quantity', -1), field: 'payload.quantity' },
      { name: 'fractional quantity', mutate: set('quantity', 1.5), field: 'payload.quantity' },
      { name: 'huge quantity', mutate: set('quantity', 100_001), field: 'payload.quantity' },
      { name: 'not a URL', mutate: set('url', 'not a url'), field: 'payload.url' },
      { name: 'javascript URL', mutate: set('url', 'javascript:alert(1)'), field: 'payload.url' },
      { name: 'too long URL', mutate: set('url', `https://example.com/${'a'.repeat(2000)}`), field: 'payload.url' },
      { name: 'price as a float', mutate: set('price', 85.0), field: 'payload.price' },
    ],
  }),
  TicketPriceChanged: casesFor({
    wrongType: ['newPrice', '79.50'],
    missing: 'oldPrice',
    prices: ['oldPrice', 'newPrice'],
    platform: true,
    extra: [
      { name: 'v1 shape (no currency)', mutate: (p) => ({ ticketId: p.ticketId, platform: p.platform, oldAmountMinor: 1, newAmountMinor: 2 }), field: 'payload.oldPrice' },
    ],
  }),
  TicketAvailabilityChanged: casesFor({
    wrongType: ['newQuantity', '2'],
    missing: 'oldQuantity',
    platform: true,
    extra: [{ name: 'negative quantity', mutate: set('newQuantity', -1), field: 'payload.newQuantity' }],
  }),
  TicketSoldOut: casesFor({
    wrongType: ['soldOutAt', 1_700_000_000],
    missing: 'soldOutAt',
    platform: true,
    extra: [{ name: 'date without time', mutate: set('soldOutAt', '2030-05-01'), field: 'payload.soldOutAt' }],
  }),
  PurchaseInitiated: casesFor({
    wrongType: ['quantity', '2'],
    missing: 'userId',
    prices: ['totalPrice'],
    extra: [
      { name: 'zero quantity', mutate: set('quantity', 0), field: 'payload.quantity' },
      { name: 'quantity over 100', mutate: set('quantity', 101), field: 'payload.quantity' },
    ],
  }),
  PurchaseCompleted: casesFor({
    wrongType: ['confirmationCode', 123456],
    missing: 'completedAt',
    extra: [
      { name: 'empty confirmation code', mutate: set('confirmationCode', ''), field: 'payload.confirmationCode' },
      { name: 'too long confirmation code', mutate: set('confirmationCode', 'c'.repeat(65)), field: 'payload.confirmationCode' },
    ],
  }),
  PurchaseFailed: casesFor({
    wrongType: ['reason', { text: 'declined' }],
    missing: 'reason',
    extra: [
      { name: 'too long reason', mutate: set('reason', 'r'.repeat(501)), field: 'payload.reason' },
      { name: 'too long error code', mutate: set('errorCode', 'e'.repeat(65)), field: 'payload.errorCode' },
    ],
  }),
  PaymentProcessed: casesFor({
    wrongType: ['status', true],
    missing: 'paymentId',
    prices: ['amount'],
    extra: [
      { name: 'unknown method', mutate: set('method', 'cash'), field: 'payload.method' },
      { name: 'unknown status', mutate: set('status', 'pending'), field: 'payload.status' },
    ],
  }),
  MonitoringStarted: casesFor({
    wrongType: ['platforms', 'ticketmaster'],
    missing: 'minQuantity',
    prices: ['maxPrice'],
    extra: [
      { name: 'unknown platform in the list', mutate: set('platforms', ['ticketmaster', 'ebay']), field: 'payload.platforms.1' },
      { name: 'duplicate platform', mutate: set('platforms', ['stubhub', 'axs', 'stubhub']), field: 'payload.platforms.2' },
      { name: 'no platforms', mutate: set('platforms', []), field: 'payload.platforms' },
      { name: 'more than 20 platforms', mutate: set('platforms', Array.from({ length: 21 }, () => 'axs')), field: 'payload.platforms' },
      { name: 'zero min quantity', mutate: set('minQuantity', 0), field: 'payload.minQuantity' },
      { name: 'min quantity over 100', mutate: set('minQuantity', 101), field: 'payload.minQuantity' },
    ],
  }),
  MonitoringStopped: casesFor({
    wrongType: ['userId', null],
    missing: 'monitorId',
    extra: [{ name: 'too long reason', mutate: set('reason', 'r'.repeat(501)), field: 'payload.reason' }],
  }),
  AlertTriggered: casesFor({
    wrongType: ['quantity', '4'],
    missing: 'alertId',
    prices: ['price'],
    platform: true,
    extra: [{ name: 'unknown reason', mutate: set('reason', 'price_rise'), field: 'payload.reason' }],
  }),
  ScrapingJobStarted: casesFor({
    wrongType: ['target', ['a']],
    missing: 'startedAt',
    platform: true,
    extra: [{ name: 'too long target', mutate: set('target', 't'.repeat(501)), field: 'payload.target' }],
  }),
  ScrapingJobCompleted: casesFor({
    wrongType: ['success', 'true'],
    missing: 'durationMs',
    platform: true,
    extra: [
      { name: 'negative tickets found', mutate: set('ticketsFound', -1), field: 'payload.ticketsFound' },
      { name: 'fractional duration', mutate: set('durationMs', 1.5), field: 'payload.durationMs' },
      { name: 'too long error message', mutate: set('errorMessage', 'e'.repeat(1001)), field: 'payload.errorMessage' },
    ],
  }),
  PlatformStatusChanged: casesFor({
    wrongType: ['newStatus', 3],
    missing: 'oldStatus',
    platform: true,
    extra: [{ name: 'unknown status', mutate: set('newStatus', 'down'), field: 'payload.newStatus' }],
  }),
  ErrorOccurred: casesFor({
    wrongType: ['message', 42],
    missing: 'severity',
    extra: [
      { name: 'unknown severity', mutate: set('severity', 'fatal'), field: 'payload.severity' },
      { name: 'empty message', mutate: set('message', ''), field: 'payload.message' },
      { name: 'too long message', mutate: set('message', 'm'.repeat(2001)), field: 'payload.message' },
      { name: 'bad component id', mutate: set('component', 'scraper worker'), field: 'payload.component' },
      { name: 'nested object in context', mutate: set('context', { deep: { a: 1 } }), field: 'payload.context.deep' },
      { name: 'too long context value', mutate: set('context', { note: 'n'.repeat(2001) }), field: 'payload.context.note' },
      { name: 'too long context key', mutate: set('context', { ['k'.repeat(101)]: 1 }), field: `payload.context.${'k'.repeat(100)}…` },
      { name: 'too many context entries', mutate: set('context', Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i]))), field: 'payload.context' },
    ],
  }),
};

function rejection(type: string, payload: unknown): EventValidationError {
  try {
    eventRegistry.validate(type, payload);
  } catch (error) {
    expect(error).toBeInstanceOf(EventValidationError);
    return error as EventValidationError;
  }
  throw new Error(`${type}: payload was accepted: ${JSON.stringify(payload).slice(0, 200)}`);
}

describe.each(eventRegistry.types)('%s', (type) => {
  it('accepts a valid payload and returns it parsed', () => {
    const { payload } = sampleEvent(type);
    expect(eventRegistry.validate(type, payload)).toEqual({ type, payload });
  });

  it('rejects a payload that is not an object', () => {
    for (const bad of [null, undefined, 'x', 1, []]) expect(rejection(type, bad).field).toBe('payload');
  });

  it.each(INVALID[type].map((c) => [c.name, c] as const))('rejects %s', (_, c) => {
    const payload = c.mutate(sampleEvent(type).payload as Payload);
    const error = rejection(type, payload);
    expect(error.field).toBe(c.field);
    expect(error.message.split('\n')[0]).toMatch(new RegExp(`^${c.field.replace(/\./g, '\\.')}: .+`));
  });
});

describe('optional fields', () => {
  it('may be left out', () => {
    const drop = (type: DomainEventType, ...keys: string[]) => {
      const p = { ...(sampleEvent(type).payload as Payload) };
      for (const k of keys) delete p[k];
      return eventRegistry.validate(type, p);
    };
    expect(() => drop('TicketDiscovered', 'section', 'row', 'url')).not.toThrow();
    expect(() => drop('PurchaseFailed', 'errorCode')).not.toThrow();
    expect(() => drop('MonitoringStarted', 'maxPrice')).not.toThrow();
    expect(() => drop('MonitoringStopped', 'reason')).not.toThrow();
    expect(() => drop('ScrapingJobCompleted', 'errorMessage')).not.toThrow();
    expect(() => drop('PlatformStatusChanged', 'reason')).not.toThrow();
    expect(() => drop('ErrorOccurred', 'context')).not.toThrow();
  });

  it('accepts datetimes with an offset', () => {
    expect(() => eventRegistry.validate('TicketSoldOut', sampleEvent('TicketSoldOut', { soldOutAt: '2030-05-01T13:00:00+01:00' }).payload)).not.toThrow();
  });
});
