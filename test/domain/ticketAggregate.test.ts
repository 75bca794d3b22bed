import { describe, it, expect } from 'vitest';
import { sampleEvent, ticketAggregate, type DomainEvent, type TicketState } from '../../src/domain/index.js';

const gbp = (amountMinor: number) => ({ amountMinor, currency: 'GBP' as const });
const fold = (events: DomainEvent[], from: TicketState | null = ticketAggregate.initialState()) => events.reduce(ticketAggregate.evolve, from);

const discovered = sampleEvent('TicketDiscovered', { quantity: 4, price: gbp(8500) });
const repriced = (from: number, to: number) => sampleEvent('TicketPriceChanged', { oldPrice: gbp(from), newPrice: gbp(to) });
const availability = (from: number, to: number) => sampleEvent('TicketAvailabilityChanged', { oldQuantity: from, newQuantity: to });

describe('ticketAggregate', () => {
  it('starts with no ticket and snapshots every 50 events', () => {
    expect(ticketAggregate.initialState()).toBeNull();
    expect(ticketAggregate.snapshotEvery).toBe(50);
  });

  it('is created by TicketDiscovered', () => {
    expect(fold([discovered])).toEqual({
      ticketId: 'tm-0001',
      platform: 'ticketmaster',
      eventName: 'Arsenal vs Chelsea',
      venue: 'Emirates Stadium, London',
      eventDate: '2030-05-18T15:00:00.000Z',
      section: 'Block 12',
      row: 'F',
      quantity: 4,
      price: gbp(8500),
      status: 'available',
      priceChanges: 0,
      lowestPrice: gbp(8500),
      highestPrice: gbp(8500),
    });
  });

  it('a discovery with no seats is sold out', () => {
    expect(fold([sampleEvent('TicketDiscovered', { quantity: 0 })])?.status).toBe('sold_out');
  });

  it('tracks price, number of price changes and the price range', () => {
    const s = fold([discovered, repriced(8500, 7000), repriced(7000, 9900), repriced(9900, 8000)]);
    expect(s).toMatchObject({ price: gbp(8000), priceChanges: 3, lowestPrice: gbp(7000), highestPrice: gbp(9900) });
  });

  it('restarts the range when the currency changes', () => {
    const eur = { amountMinor: 9000, currency: 'EUR' as const };
    const s = fold([discovered, repriced(8500, 7000), sampleEvent('TicketPriceChanged', { oldPrice: gbp(7000), newPrice: eur })]);
    expect(s).toMatchObject({ price: eur, priceChanges: 2, lowestPrice: eur, highestPrice: eur });
  });

  it('goes sold out at zero availability and back to available when seats return', () => {
    const soldOut = fold([discovered, availability(4, 2), availability(2, 0)]);
    expect(soldOut).toMatchObject({ quantity: 0, status: 'sold_out' });
    expect(fold([availability(0, 3)], soldOut)).toMatchObject({ quantity: 3, status: 'available' });
  });

  it('TicketSoldOut zeroes the quantity', () => {
    expect(fold([discovered, sampleEvent('TicketSoldOut')])).toMatchObject({ quantity: 0, status: 'sold_out' });
  });

  it('a rediscovery refreshes the listing but keeps its history', () => {
    const s = fold([discovered, repriced(8500, 6000), sampleEvent('TicketDiscovered', { price: gbp(9000), quantity: 1, section: 'Block 1' })]);
    expect(s).toMatchObject({ price: gbp(9000), quantity: 1, section: 'Block 1', priceChanges: 1, lowestPrice: gbp(6000), highestPrice: gbp(9000) });
  });

  it('ignores changes to a ticket that was never discovered', () => {
    expect(fold([repriced(1, 2), availability(0, 2), sampleEvent('TicketSoldOut')])).toBeNull();
  });

  it('ignores events of other streams and other tickets', () => {
    const s = fold([discovered]);
    const others: DomainEvent[] = [
      sampleEvent('PurchaseInitiated'),
      sampleEvent('MonitoringStarted'),
      sampleEvent('AlertTriggered'),
      sampleEvent('ErrorOccurred'),
      sampleEvent('TicketPriceChanged', { ticketId: 'someone-else', newPrice: gbp(1) }),
    ];
    expect(fold(others, s)).toBe(s);
  });

  it('never mutates the state it is given', () => {
    const s = fold([discovered])!;
    const copy = structuredClone(s);
    fold([repriced(8500, 100), availability(4, 0), sampleEvent('TicketSoldOut')], s);
    expect(s).toEqual(copy);
  });

  it('produces states its snapshot schema accepts, and rejects a snapshot of another shape', () => {
    const s = fold([discovered, repriced(8500, 7000), availability(4, 0)]);
    expect(ticketAggregate.stateSchema.parse(JSON.parse(JSON.stringify(s)))).toEqual(s);
    expect(ticketAggregate.stateSchema.parse(null)).toBeNull();
    expect(ticketAggregate.stateSchema.safeParse({ ...s, priceHistory: [] }).success).toBe(false);
    const { lowestPrice: _, ...old } = s!;
    expect(ticketAggregate.stateSchema.safeParse(old).success).toBe(false);
  });

  it('folding from a snapshot equals folding from the start', () => {
    const events = [discovered, repriced(8500, 7000), availability(4, 1), repriced(7000, 7500), availability(1, 0), availability(0, 5)];
    const snapshot = ticketAggregate.stateSchema.parse(JSON.parse(JSON.stringify(fold(events.slice(0, 3)))));
    expect(fold(events.slice(3), snapshot)).toEqual(fold(events));
  });
});
