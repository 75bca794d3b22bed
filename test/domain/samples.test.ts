import { describe, it, expect } from 'vitest';
import { EventValidationError, eventRegistry, sampleEvent, type DomainEventType } from '../../src/domain/index.js';

describe('sampleEvent', () => {
  it.each(eventRegistry.types)('gives a valid %s', (type) => {
    const e = sampleEvent(type);
    expect(e.type).toBe(type);
    expect(eventRegistry.validate(type, e.payload)).toEqual(e);
  });

  it('is deterministic and returns fresh objects', () => {
    const a = sampleEvent('TicketDiscovered');
    const b = sampleEvent('TicketDiscovered');
    expect(a).toEqual(b);
    a.payload.price.amountMinor = 1;
    expect(b.payload.price.amountMinor).toBe(8500);
    expect(sampleEvent('TicketDiscovered').payload.price.amountMinor).toBe(8500);
  });

  it('applies overrides shallowly', () => {
    const e = sampleEvent('AlertTriggered', { alertId: 'a1', monitorId: 'm-a1' });
    expect(e.payload).toMatchObject({ alertId: 'a1', monitorId: 'm-a1', userId: 'user-0001' });
    expect(eventRegistry.streamOf(e).streamId).toBe('monitor-m-a1');
  });

  it('throws for an unknown type', () => {
    expect(() => sampleEvent('Nope' as DomainEventType)).toThrow(EventValidationError);
  });
});
