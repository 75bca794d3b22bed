import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { startWorkerHost, type WorkerHost } from '../../src/app/workerHost.js';
import { createEventGenerator } from '../../src/demo/eventGenerator.js';
import { DeliveryRelay } from '../../src/consumers/DeliveryRelay.js';
import type { HandlerJobData } from '../../src/consumers/jobs.js';
import type { JobPublisher } from '../../src/consumers/JobPublisher.js';
import { createLogger } from '../../src/logger.js';
import { disposeTestContainer, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';

let db: TestDb;
let relayHost: Container;
let host: WorkerHost;
let producer: Container;
const n = z.object({ n: z.number() });
const outbox = () => db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_outbox`);

beforeAll(async () => {
  db = await createTestDb('relay');
  const prefix = testPrefix('relay');
  // The relay polls only once a minute here: anything faster is the NOTIFY wake-up.
  relayHost = await testContainer({ DATABASE_URL: db.url, QUEUE_PREFIX: prefix, RELAY_POLL_MS: '60000' });
  host = await startWorkerHost(relayHost, ['relay']);
  // A producer whose own Redis connection is broken: nothing listens on port 1 (a test's private
  // redis-server, started on a random port elsewhere, can never take it).
  producer = await testContainer({ DATABASE_URL: db.url, QUEUE_PREFIX: prefix, REDIS_URL: 'redis://127.0.0.1:1' });
});
afterAll(async () => {
  await host?.close(2000);
  await producer?.close();
  await disposeTestContainer(relayHost);
  await db?.drop();
});

describe('outbox relay', () => {
  it('a producer that cannot reach Redis still stores, and its NOTIFY makes a relay deliver at once', async () => {
    // Let the relay's LISTEN connection come up first.
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    const r = await producer.bus.dispatch({ type: 'TicketDiscovered', payload: { ticketId: 'relay-1', platform: 'stubhub', eventName: 'Celtic vs Rangers', venue: 'Celtic Park', eventDate: '2030-01-02T15:00:00Z', quantity: 2, price: { amountMinor: 5000, currency: 'GBP' } } });
    expect(r.version).toBe(1);
    // Every handler of the event gets a job carrying it (on the shared queue or its own), well before
    // the one-minute poll and the 30 s redelivery horizon.
    const handlers = relayHost.handlers.filter((h) => (h.handledTypes as readonly string[]).includes('TicketDiscovered'));
    expect(handlers.length).toBeGreaterThan(0);
    const carried = async (name: string) => {
      const jobs = [...(await relayHost.queues.handlers.getJobs(['waiting'])), ...(await relayHost.consumerQueues.own(name).getJobs(['waiting']))];
      return jobs.some((j) => (j.data as HandlerJobData).eventIds.includes(r.id) && (j.data as HandlerJobData).consumers.includes(name));
    };
    await waitFor(async () => (await outbox()) === 0 && (await Promise.all(handlers.map((h) => carried(h.name)))).every(Boolean), { timeoutMs: 10_000, intervalMs: 50, what: 'the relay to deliver' });
    expect(Date.now() - t0).toBeLessThan(10_000);
  });

  it('several relays sweeping one outbox enqueue every event once', async () => {
    await host.relay?.stop();
    const mark = await db.pool.oneFirst(sql.type(n)`SELECT coalesce(max(global_position), 0) AS n FROM event_store`);
    const gen = createEventGenerator({ seed: 5, streams: 300, runId: 'relays' });
    for (let i = 0; i < 4; i++) await producer.bus.dispatchMany(gen.batch(500));
    // How many stay in the outbox depends on the machine's speed: after a refused enqueue the producer
    // leaves its events there for a moment (0.5 s, doubling), and converts the next batch after that.
    const waiting = await outbox();
    expect(waiting).toBeGreaterThan(0);
    await relayHost.queues.handlers.obliterate({ force: true });
    await relayHost.queues.projections.obliterate({ force: true });
    // The producer's first failed publish turned its events into owed rows (then it left the outbox
    // alone while Redis stayed down): those are the reconciler's, the rest the relays'.
    const handledTypes = sql.array(relayHost.handlers.flatMap((h) => h.handledTypes), 'text');
    const owedBefore = new Set(
      await db.pool.anyFirst(sql.type(z.object({ id: z.string() }))`
        SELECT DISTINCT e.id::text AS id FROM owed_batches b JOIN event_store e ON b.positions @> e.global_position
        WHERE EXISTS (SELECT 1 FROM consumer_owed o WHERE o.job_key = b.job_key AND o.kind = 'handler')
          AND e.global_position > ${mark} AND e.event_type = ANY(${handledTypes})`),
    );
    const relays = [1, 2, 3].map(() => new DeliveryRelay(db.url, relayHost.publisher, null, createLogger('silent'), { batchSize: 100, pollMs: 60_000, minAgeMs: 0 }));
    await Promise.all(relays.map((r) => r.sweep(true)));
    expect(await outbox()).toBe(0);
    expect(relays.reduce((s, r) => s + r.relayed, 0)).toBe(waiting);
    // The batch jobs carry each event id exactly once, and every event some handler handles.
    const jobs = await relayHost.queues.handlers.getJobs(['waiting'], 0, 10_000);
    const ids = jobs.flatMap((j) => (j.data as HandlerJobData).eventIds);
    expect(ids.length - new Set(ids).size).toBe(0);
    expect(ids.filter((id) => owedBefore.has(id))).toEqual([]);
    const handled = relayHost.handlers.flatMap((h) => h.handledTypes);
    const expected = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_store WHERE event_type = ANY(${sql.array(handled, 'text')}) AND global_position > ${mark}`);
    expect(ids.length + owedBefore.size).toBe(expected);
    expect(jobs.some((j) => (j.data as HandlerJobData).consumers.includes('TicketDiscoveredHandler'))).toBe(true);
  });

  // The trap: while Redis was down every producer that could not enqueue NOTIFYed, each NOTIFY woke
  // the relays for a forced round, and each round claimed owed rows and joined them to the store
  // before failing: relays left behind by a test kept three PostgreSQL backends busy for half an hour.
  it('relay-backs-off-while-redis-is-down: failed rounds back off and NOTIFYs no longer cut the wait short', async () => {
    let rounds = 0;
    const counting = { sweep: (limit: number, minAgeMs: number) => (rounds++, producer.publisher.sweep(limit, minAgeMs)) } as unknown as JobPublisher;
    const relay = new DeliveryRelay(db.url, counting, null, createLogger('silent'), { batchSize: 100, pollMs: 20 });
    relay.start();
    // Let its LISTEN connection come up, then dispatch every 20 ms for 3 s from a producer that cannot
    // reach Redis (each leaves its event in the outbox and NOTIFYs), as producers under load would.
    await waitFor(async () => rounds > 0, { timeoutMs: 5000, intervalMs: 20, what: 'the first relay round' });
    const from = rounds;
    const gen = createEventGenerator({ seed: 6, streams: 50, runId: 'backoff' });
    const until = Date.now() + 3000;
    while (Date.now() < until) {
      await producer.bus.dispatchMany(gen.batch(5));
      await producer.publisher.wakeRelays();
      await new Promise((r) => setTimeout(r, 20));
    }
    await relay.stop();
    // Polling every 20 ms, or waking on every NOTIFY, would make 150 rounds or more; backing off from
    // 20 ms towards 5 s makes about 8.
    expect(rounds - from).toBeGreaterThan(1);
    expect(rounds - from).toBeLessThan(30);
  });
});
