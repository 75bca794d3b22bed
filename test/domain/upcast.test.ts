import { describe, it, expect } from 'vitest';
import { EventValidationError, eventRegistry, sampleEvent, upcastTicketPriceChangedV1 } from '../../src/domain/index.js';

const storedV1 = { ticketId: 'tm-0001', platform: 'ticketmaster', oldAmountMinor: 8500, newAmountMinor: 7950 };

describe('upcasting TicketPriceChanged', () => {
  it('turns a stored v1 payload without currency into a valid v2 in GBP', () => {
    const up = eventRegistry.upcast('TicketPriceChanged', 1, storedV1);
    expect(up).toEqual({
      schemaVersion: 2,
      payload: {
        ticketId: 'tm-0001',
        platform: 'ticketmaster',
        oldPrice: { amountMinor: 8500, currency: 'GBP' },
        newPrice: { amountMinor: 7950, currency: 'GBP' },
      },
    });
    expect(eventRegistry.validate('TicketPriceChanged', up.payload)).toEqual({ type: 'TicketPriceChanged', payload: up.payload });
  });

  it('exposes the step itself', () => {
    expect(upcastTicketPriceChangedV1({ ticketId: 't', platform: 'axs', oldAmountMinor: 1, newAmountMinor: 2 }).newPrice).toEqual({ amountMinor: 2, currency: 'GBP' });
  });

  it('leaves a payload of the current version untouched', () => {
    const { payload } = sampleEvent('TicketPriceChanged');
    const up = eventRegistry.upcast('TicketPriceChanged', 2, payload);
    expect(up.schemaVersion).toBe(2);
    expect(up.payload).toBe(payload);
    const other = sampleEvent('TicketSoldOut').payload;
    expect(eventRegistry.upcast('TicketSoldOut', 1, other)).toEqual({ schemaVersion: 1, payload: other });
  });

  it.each([0, 3, -1, 1.5, Number.NaN])('throws for unknown schema version %s', (v) => {
    try {
      eventRegistry.upcast('TicketPriceChanged', v, storedV1);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(EventValidationError);
      expect((e as EventValidationError).field).toBe('schemaVersion');
    }
  });

  it('reports a corrupt stored v1 payload at its field instead of producing a bogus v2', () => {
    try {
      eventRegistry.upcast('TicketPriceChanged', 1, { ...storedV1, newAmountMinor: '79.50' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(EventValidationError);
      expect((e as EventValidationError).field).toBe('payload.newAmountMinor');
    }
  });
});
