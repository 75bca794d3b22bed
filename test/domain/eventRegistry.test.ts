import { describe, it, expect } from 'vitest';
import { EventValidationError, eventRegistry, sampleEvent, type DomainEventType } from '../../src/domain/index.js';

const ALL: DomainEventType[] = [
  'TicketDiscovered', 'TicketPriceChanged', 'TicketAvailabilityChanged', 'TicketSoldOut',
  'PurchaseInitiated', 'PurchaseCompleted', 'PurchaseFailed', 'PaymentProcessed',
  'MonitoringStarted', 'MonitoringStopped', 'AlertTriggered',
  'ScrapingJobStarted', 'ScrapingJobCompleted', 'PlatformStatusChanged', 'ErrorOccurred',
];

function caught(fn: () => unknown): EventValidationError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(EventValidationError);
    return error as EventValidationError;
  }
  throw new Error('expected an EventValidationError');
}

describe('eventRegistry', () => {
  it('knows exactly the 15 event types', () => {
    expect([...eventRegistry.types].sort()).toEqual([...ALL].sort());
    for (const t of ALL) expect(eventRegistry.has(t)).toBe(true);
    expect(eventRegistry.has('Nope')).toBe(false);
    expect(eventRegistry.has('toString')).toBe(false);
  });

  it('reports the current schema versions', () => {
    for (const t of ALL) expect(eventRegistry.currentVersion(t)).toBe(t === 'TicketPriceChanged' ? 2 : 1);
    expect(eventRegistry.definition('TicketPriceChanged')).toMatchObject({ type: 'TicketPriceChanged', schemaVersion: 2, streamType: 'ticket' });
  });

  it('rejects an unknown type at field "type", listing the valid types', () => {
    for (const call of [
      () => eventRegistry.validate('TicketExploded', {}),
      () => eventRegistry.definition('TicketExploded'),
      () => eventRegistry.currentVersion('TicketExploded'),
      () => eventRegistry.upcast('TicketExploded', 1, {}),
    ]) {
      const e = caught(call);
      expect(e.field).toBe('type');
      expect(e.message).toMatch(/^type: unknown event type "TicketExploded"; expected one of TicketDiscovered, .*ErrorOccurred$/);
    }
  });

  it('does not echo a huge unknown type back in full', () => {
    expect(caught(() => eventRegistry.validate('x'.repeat(100_000), {})).message.length).toBeLessThan(600);
  });

  it('derives stream ids and types', () => {
    const cases: [DomainEventType, string, string][] = [
      ['TicketDiscovered', 'ticket-tm-0001', 'ticket'],
      ['TicketPriceChanged', 'ticket-tm-0001', 'ticket'],
      ['TicketAvailabilityChanged', 'ticket-tm-0001', 'ticket'],
      ['TicketSoldOut', 'ticket-tm-0001', 'ticket'],
      ['PurchaseInitiated', 'purchase-purchase-0001', 'purchase'],
      ['PurchaseCompleted', 'purchase-purchase-0001', 'purchase'],
      ['PurchaseFailed', 'purchase-purchase-0001', 'purchase'],
      ['PaymentProcessed', 'purchase-purchase-0001', 'purchase'],
      ['MonitoringStarted', 'monitor-monitor-0001', 'monitor'],
      ['MonitoringStopped', 'monitor-monitor-0001', 'monitor'],
      ['AlertTriggered', 'monitor-monitor-0001', 'monitor'],
      ['ScrapingJobStarted', 'scraping_job-job-0001', 'scraping_job'],
      ['ScrapingJobCompleted', 'scraping_job-job-0001', 'scraping_job'],
      ['PlatformStatusChanged', 'platform-stubhub', 'platform'],
      ['ErrorOccurred', 'system-scraper', 'system'],
    ];
    for (const [type, streamId, streamType] of cases) {
      expect(eventRegistry.streamOf(sampleEvent(type)), type).toEqual({ streamId, streamType });
    }
  });

  it('formats one line per issue as "field: message"', () => {
    const payload = { ...sampleEvent('TicketDiscovered').payload, price: { amountMinor: -5, currency: 'XYZ' }, bogus: 1, other: 2 };
    const e = caught(() => eventRegistry.validate('TicketDiscovered', payload));
    expect(e.field).toBe('payload.price.amountMinor');
    expect(e.issues.map((i) => i.field)).toEqual(['payload.price.amountMinor', 'payload.price.currency', 'payload.bogus', 'payload.other']);
    const lines = e.message.split('\n');
    expect(lines[0]).toBe('payload.price.amountMinor: Number must be greater than or equal to 0');
    expect(lines[1]).toMatch(/^payload\.price\.currency: Invalid currency/);
    expect(lines.slice(2)).toEqual(['payload.bogus: unknown field', 'payload.other: unknown field']);
    expect(e.name).toBe('EventValidationError');
  });

  it('reports a missing field as "Required" and a wrong type with the expected type', () => {
    const { ticketId: _, ...noId } = sampleEvent('TicketSoldOut').payload;
    expect(caught(() => eventRegistry.validate('TicketSoldOut', noId)).message).toBe('payload.ticketId: Required');
    expect(caught(() => eventRegistry.validate('TicketSoldOut', { ...noId, ticketId: 7 })).message).toBe('payload.ticketId: Expected string, received number');
  });

  it('caps the message for a payload with very many issues but keeps every issue', () => {
    const payload = { ...sampleEvent('TicketSoldOut').payload, ...Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`x${i}`, i])) };
    const e = caught(() => eventRegistry.validate('TicketSoldOut', payload));
    expect(e.issues).toHaveLength(500);
    expect(e.message.split('\n')).toHaveLength(21);
    expect(e.message).toMatch(/and 480 more issue\(s\)$/);
  });

  it('does not let an own "__proto__" key through', () => {
    const payload = JSON.parse(`{"ticketId":"tm-1","platform":"axs","soldOutAt":"2030-05-01T12:00:00Z","__proto__":{"admin":true}}`);
    expect(caught(() => eventRegistry.validate('TicketSoldOut', payload)).field).toBe('payload.__proto__');
  });

  it('lets the event bus re-prefix issues (batch positions)', () => {
    const e = new EventValidationError([{ field: 'payload.x', message: 'bad' }]);
    const prefixed = new EventValidationError(e.issues.map((i) => ({ field: `events[2].${i.field}`, message: i.message })));
    expect(prefixed.field).toBe('events[2].payload.x');
    expect(prefixed.message).toBe('events[2].payload.x: bad');
  });
});
