import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventRegistry, sampleEvent, ticketAggregate, type DomainEvent } from '../../src/domain/index.js';
import { PostgresEventStore } from '../../src/eventStore/PostgresEventStore.js';
import { createTestDb, type TestDb } from '../support/db.js';

let db: TestDb;
let store: PostgresEventStore;

beforeAll(async () => {
  db = await createTestDb('snapshots');
  store = new PostgresEventStore(db.pool, { upcaster: (t, v, p) => eventRegistry.upcast(t, v, p) });
});
afterAll(async () => db?.drop());

const foldAll = async (streamId: string) =>
  (await store.readStream(streamId)).reduce((s, e) => ticketAggregate.evolve(s, { type: e.type, payload: e.payload } as DomainEvent), ticketAggregate.initialState());

function ticketEvents(ticketId: string, n: number, startPrice: number) {
  const events: { type: string; payload: unknown }[] = [{ type: 'TicketDiscovered', payload: sampleEvent('TicketDiscovered', { ticketId }).payload }];
  for (let i = 0; i < n; i++) {
    const old = startPrice + i;
    events.push(
      i % 10 === 9
        ? { type: 'TicketAvailabilityChanged', payload: { ticketId, platform: 'ticketmaster', oldQuantity: 4, newQuantity: i % 20 === 19 ? 0 : 4 } }
        : { type: 'TicketPriceChanged', payload: { ticketId, platform: 'ticketmaster', oldPrice: { amountMinor: old, currency: 'GBP' }, newPrice: { amountMinor: old + (i % 3) - 1, currency: 'GBP' } } },
    );
  }
  return events.map((e) => ({ ...e, schemaVersion: eventRegistry.currentVersion(e.type) }));
}

describe('Ticket aggregate with snapshots', () => {
  it('loaded from snapshot + tail equals the fold of all events', async () => {
    const streamId = 'ticket-snap-1';
    await store.append(streamId, ticketEvents('snap-1', 119, 5000), { expectedVersion: 'no_stream' });
    const first = await store.loadAggregate(streamId, ticketAggregate);
    expect(first.fromSnapshot).toBeNull();
    expect(first.snapshotSaved).toBe(true);
    expect(first.version).toBe(120);

    await store.append(streamId, ticketEvents('snap-1', 7, 9000).slice(1), { expectedVersion: 120 });
    const second = await store.loadAggregate(streamId, ticketAggregate);
    expect(second.fromSnapshot).toBe(120);
    expect(second.snapshotSaved).toBe(false);
    expect(second.version).toBe(127);
    expect(second.state).toEqual(await foldAll(streamId));
    expect(second.state?.priceChanges).toBeGreaterThan(100);
  });

  it('ignores a snapshot whose shape no longer matches and folds from the start', async () => {
    const streamId = 'ticket-snap-2';
    await store.append(streamId, ticketEvents('snap-2', 10, 100));
    await store.saveSnapshot(streamId, 5, { some: 'old shape' });
    const loaded = await store.loadAggregate(streamId, ticketAggregate);
    expect(loaded.fromSnapshot).toBeNull();
    expect(loaded.state).toEqual(await foldAll(streamId));
  });
});
