import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { startWorkerHost, type WorkerHost } from '../../src/app/workerHost.js';
import { sampleEvent } from '../../src/domain/index.js';
import { defineProjection } from '../../src/projections/Projection.js';
import { disposeTestContainer, idle, queueCounts, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';

/** Records the order in which it was handed each stream's events. */
const OrderRecorder = defineProjection<{ seen: number[] }>({
  name: 'OrderRecorder',
  version: 1,
  table: 'ticket_read_models',
  handledTypes: ['TicketPriceChanged', 'TicketDiscovered'],
  keysOf: (e) => [e.streamId],
  apply(e, docs) {
    const doc = docs.get(e.streamId) ?? { seen: [] };
    doc.seen.push(e.version);
    docs.set(e.streamId, doc);
  },
});

let poisonOn = true;
/** Fails on any ticket discovered with quantity 13, while `poisonOn` holds. */
const Poisonable = defineProjection<{ versions: number[] }>({
  name: 'Poisonable',
  version: 1,
  table: 'purchase_read_models',
  handledTypes: ['TicketDiscovered', 'TicketAvailabilityChanged'],
  keysOf: (e) => [e.streamId],
  apply(e, docs) {
    if (poisonOn && e.type === 'TicketDiscovered' && e.payload.quantity === 13) throw new Error('cannot handle unlucky tickets');
    const doc = docs.get(e.streamId) ?? { versions: [] };
    doc.versions.push(e.version);
    docs.set(e.streamId, doc);
  },
});

let db: TestDb;
let c: Container;
let host: WorkerHost;
const Doc = z.object({ doc: z.unknown() });

beforeAll(async () => {
  db = await createTestDb('projections');
  c = await testContainer(
    { DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix('proj'), WORKER_CONCURRENCY: '8', JOB_ATTEMPTS: '2', JOB_BACKOFF_MS: '50' },
    { handlers: [], projections: [OrderRecorder, Poisonable] },
  );
  host = await startWorkerHost(c, ['projections', 'relay']);
});
afterAll(async () => {
  await host?.close(5000);
  await disposeTestContainer(c);
  await db?.drop();
});

const docOf = async (table: string, id: string) => (await db.pool.maybeOne(sql.type(Doc)`SELECT doc FROM ${sql.identifier([table])} WHERE id = ${id}`))?.doc;

describe('projection workers', () => {
  it('apply one stream’s events in version order however many concurrent and duplicate jobs carry them', async () => {
    const ticketId = 'order-1';
    await c.bus.dispatch({ type: 'TicketDiscovered', payload: sampleEvent('TicketDiscovered', { ticketId }).payload });
    const changes = Array.from({ length: 150 }, (_, i) => ({
      type: 'TicketPriceChanged',
      payload: { ticketId, platform: 'ticketmaster', oldPrice: { amountMinor: 1000 + i, currency: 'GBP' }, newPrice: { amountMinor: 1001 + i, currency: 'GBP' } },
    }));
    // Many small dispatches (one job each) plus duplicate and stale jobs enqueued by hand.
    await Promise.all(changes.map((ch, i) => (i % 3 === 0 ? c.bus.dispatch(ch) : c.bus.dispatchMany([ch]))));
    await c.queues.projections.addBulk(
      Array.from({ length: 20 }, (_, i) => ({ name: 'OrderRecorder', data: { streams: { OrderRecorder: [`ticket-${ticketId}`] } }, opts: { jobId: `OrderRecorder.dup-${i}` } })),
    );
    const doc = await waitFor(async () => {
      const d = (await docOf('ticket_read_models', `ticket-${ticketId}`)) as { seen: number[] } | undefined;
      return d && d.seen.length >= 151 && idle(await queueCounts(c)) ? d : null;
    }, { what: '151 events applied' });
    expect(doc!.seen).toEqual(Array.from({ length: 151 }, (_, i) => i + 1));
  });

  it('a poison event parks only its stream, is recorded once, and retrying it after the fix unparks the stream', async () => {
    const mk = (ticketId: string, quantity: number) => ({ type: 'TicketDiscovered', payload: sampleEvent('TicketDiscovered', { ticketId, quantity }).payload });
    const avail = (ticketId: string, oldQuantity: number, newQuantity: number) => ({ type: 'TicketAvailabilityChanged', payload: { ticketId, platform: 'ticketmaster', oldQuantity, newQuantity } });
    await c.bus.dispatchMany([avail('bad', 0, 2), mk('good-1', 2), mk('good-2', 3)]);
    await c.bus.dispatchMany([mk('bad', 13), avail('good-1', 2, 1)]);

    const failure = (await waitFor(async () => (await c.failures.list({ consumer: 'Poisonable' }))[0], { what: 'the failure row' }))!;
    expect(failure).toMatchObject({ consumer: 'Poisonable', consumer_kind: 'projection', stream_id: 'ticket-bad', status: 'open', attempts: 2 });
    expect(failure.error_message).toMatch(/cannot handle unlucky tickets/);
    expect(await docOf('purchase_read_models', 'ticket-good-1')).toEqual({ versions: [1, 2] });
    expect(await docOf('purchase_read_models', 'ticket-good-2')).toEqual({ versions: [1] });
    expect(await docOf('purchase_read_models', 'ticket-bad')).toEqual({ versions: [1] });

    // Later events of the parked stream wait; other streams go on.
    await c.bus.dispatchMany([avail('bad', 13, 12), avail('good-2', 3, 2)]);
    await waitFor(async () => JSON.stringify(await docOf('purchase_read_models', 'ticket-good-2')) === JSON.stringify({ versions: [1, 2] }), { what: 'good-2 to advance' });
    await waitFor(async () => idle(await queueCounts(c)), { what: 'idle queues' });
    expect(await docOf('purchase_read_models', 'ticket-bad')).toEqual({ versions: [1] });
    expect((await c.failures.list({ consumer: 'Poisonable', status: 'all' })).length).toBe(1);

    poisonOn = false;
    const { jobId } = await c.failures.retry(failure.id);
    expect(jobId).not.toBe(failure.job_id);
    await waitFor(async () => (await c.failures.get(failure.id)).status === 'resolved', { what: 'the failure to resolve' });
    expect(await docOf('purchase_read_models', 'ticket-bad')).toEqual({ versions: [1, 2, 3] });
  });

  it('retrying or resolving a failure that does not exist is a clear error', async () => {
    await expect(c.failures.retry(987654)).rejects.toThrow(/no processing failure with id 987654/);
    await expect(c.failures.resolve(987654, 'x')).rejects.toThrow(/no processing failure/);
  });
});

