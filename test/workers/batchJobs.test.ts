import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { startWorkerHost, type WorkerHost } from '../../src/app/workerHost.js';
import { sampleEvent } from '../../src/domain/index.js';
import type { EventHandler } from '../../src/handlers/Handler.js';
import { SHARED_TRANSACTION_MIN_EVENTS } from '../../src/handlers/HandlerRunner.js';
import { defineProjection, TicketReadModelProjection } from '../../src/projections/index.js';
import { disposeTestContainer, idle, queueCounts, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';

// Two handlers of the same events, so a large batch runs them in one shared transaction; one of them
// throws on a single event. The other's effects must still happen exactly once.
const Healthy: EventHandler = {
  name: 'HealthyHandler',
  handledTypes: ['TicketDiscovered'],
  async handle(e, ctx) {
    ctx.notify({ userId: 'u', kind: 'healthy', eventId: e.id, title: 't', body: {} });
  },
};
const Picky: EventHandler = {
  name: 'PickyHandler',
  handledTypes: ['TicketDiscovered'],
  async handle(e, ctx) {
    if (e.type === 'TicketDiscovered' && e.payload.ticketId === 'poison') throw new Error('picky refuses the poison ticket');
    ctx.notify({ userId: 'u', kind: 'picky', eventId: e.id, title: 't', body: {} });
  },
};

// A projection that cannot even say which documents an event touches: its catch-up throws before
// folding, which fails the shared projection transaction of the batch as a whole.
const BrokenKeys = defineProjection<{ seen: number }>({
  name: 'BrokenKeysProjection',
  version: 1,
  table: 'purchase_read_models',
  handledTypes: ['TicketDiscovered'],
  keysOf(e) {
    if (e.type === 'TicketDiscovered' && e.payload.ticketId === 'poison-keys') throw new Error('keysOf refuses the poison ticket');
    return [`bk-${e.streamId}`];
  },
  apply(e, docs) {
    docs.set(`bk-${e.streamId}`, { seen: e.version });
  },
});

let db: TestDb;
let c: Container;
let host: WorkerHost;
const n = z.object({ n: z.number() });

beforeAll(async () => {
  db = await createTestDb('batchjobs');
  c = await testContainer({ DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix('batchjobs'), JOB_ATTEMPTS: '2', JOB_BACKOFF_MS: '100' }, { handlers: [Healthy, Picky], projections: [TicketReadModelProjection, BrokenKeys] });
  host = await startWorkerHost(c, ['handlers', 'projections', 'relay']);
});
afterAll(async () => {
  await host?.close(5000);
  await disposeTestContainer(c);
  await db?.drop();
});

describe('batch jobs', () => {
  it('a handler failing inside a shared transaction: the others take effect once, only its poison event is handed over and recorded', async () => {
    const count = SHARED_TRANSACTION_MIN_EVENTS + 50;
    const events = Array.from({ length: count }, (_, i) => ({
      type: 'TicketDiscovered',
      payload: sampleEvent('TicketDiscovered', { ticketId: i === 7 ? 'poison' : `t-${i}` }).payload,
    }));
    const stored = await c.bus.dispatchMany(events);
    const poisonId = stored[7]!.id;
    const failure = await waitFor(async () => (await c.failures.list()).find((f) => f.event_id === poisonId), { what: 'the failure row' });
    await waitFor(async () => idle(await queueCounts(c)), { what: 'queues to drain' });
    const notes = async (kind: string) => db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM user_notifications WHERE kind = ${kind}`);
    const ledger = async (handler: string) => db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_handler_ledger WHERE handler = ${handler}`);
    expect(await notes('healthy')).toBe(count);
    expect(await ledger('HealthyHandler')).toBe(count);
    expect(await notes('picky')).toBe(count - 1);
    expect(await ledger('PickyHandler')).toBe(count - 1);
    expect(failure).toMatchObject({ consumer: 'PickyHandler', status: 'open', attempts: 2 });
    expect(failure!.error_message).toMatch(/poison/);
    expect(await c.failures.countOpen()).toBe(1);
  });

  it('a projection failing the shared projection transaction: the other projections of the batch still apply it in the same job', async () => {
    const tickets = ['pk-a', 'poison-keys', 'pk-b'];
    const stored = await c.bus.dispatchMany(tickets.map((ticketId) => ({ type: 'TicketDiscovered', payload: sampleEvent('TicketDiscovered', { ticketId }).payload })));
    await waitFor(async () => (await c.failures.list()).find((f) => f.consumer === 'BrokenKeysProjection' && f.event_id === stored[1]!.id), { what: 'the projection failure row' });
    await waitFor(async () => idle(await queueCounts(c)), { what: 'queues to drain' });
    const ticketDocs = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM ticket_read_models WHERE id = ANY(${sql.array(tickets, 'text')})`);
    expect(ticketDocs).toBe(3);
    // Applied by the batch job itself (alone, after the shared transaction failed), not handed over.
    const states = ['completed', 'failed', 'delayed', 'waiting', 'active'] as const;
    expect(await c.consumerQueues.own('TicketReadModelProjection').getJobs([...states], 0, 1000)).toHaveLength(0);
    expect((await c.consumerQueues.own('BrokenKeysProjection').getJobs([...states], 0, 1000)).length).toBeGreaterThan(0);
    // keysOf failing for one event stops only that event's stream: the other two streams of the batch
    // take effect in BrokenKeysProjection too, and only the poison one is parked and recorded.
    const recorded = (await c.failures.list()).filter((f) => f.consumer === 'BrokenKeysProjection').map((f) => f.event_id);
    expect(recorded).toEqual([stored[1]!.id]);
    const brokenDocs = await db.pool.anyFirst(sql.type(z.object({ id: z.string() }))`SELECT id FROM purchase_read_models WHERE id = ANY(${sql.array(tickets.map((t) => `bk-ticket-${t}`), 'text')}) ORDER BY id`);
    expect(brokenDocs).toEqual(['bk-ticket-pk-a', 'bk-ticket-pk-b']);
  });
});
