import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { startWorkerHost, type WorkerHost } from '../../src/app/workerHost.js';
import { FIXTURES, DEMO_PLATFORMS } from '../../src/demo/fixtures.js';
import { rng } from '../../src/demo/random.js';
import type { DispatchInput } from '../../src/eventBus/EventBus.js';
import { deterministicUuid } from '../../src/handlers/alerting.js';
import { disposeTestContainer, idle, owedEvents, queueCounts, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';
import { spawnTs, stopAll, type Spawned } from '../support/processes.js';
import { freePort } from '../support/redisServer.js';

// The trap: alerts looked monitors up in a read model that another worker might not have updated yet,
// and took a ticket's quantity from its discovery: the same input gave 39.6k to 48.0k alerts across
// runs, a monitor and a matching ticket in one batch gave none, and a price drop after a sell-out
// alerted. Alerts must be a function of the store's order alone.
const gbp = (amountMinor: number) => ({ amountMinor, currency: 'GBP' });
const Row = z.object({ id: z.string(), stream_id: z.string(), event_type: z.string(), payload: z.any() });

/** The alert rule of README's Domain rules, computed independently over the store in global order. */
async function expectedAlerts(pool: DatabasePool): Promise<string[]> {
  const rows = await pool.any(sql.type(Row)`SELECT id, stream_id, event_type, payload FROM event_store ORDER BY transaction_id, global_position`);
  const monitors = new Map<string, { userId: string; eventName: string; platforms: string[]; maxPrice?: { amountMinor: number; currency: string }; minQuantity: number } | null>();
  const tickets = new Map<string, { eventName: string; quantity: number }>();
  const out: string[] = [];
  const match = (sourceId: string, platform: string, eventName: string, price: { amountMinor: number; currency: string }, quantity: number) => {
    for (const [monitorId, m] of monitors) {
      if (!m || m.eventName !== eventName || !m.platforms.includes(platform) || quantity < m.minQuantity) continue;
      if (m.maxPrice && (m.maxPrice.currency !== price.currency || price.amountMinor > m.maxPrice.amountMinor)) continue;
      out.push(`${sourceId}/${monitorId}`);
    }
  };
  for (const r of rows) {
    const p = r.payload;
    if (r.event_type === 'MonitoringStarted') monitors.set(p.monitorId, p);
    else if (r.event_type === 'MonitoringStopped') monitors.set(p.monitorId, null);
    else if (r.event_type === 'TicketDiscovered') {
      tickets.set(r.stream_id, { eventName: p.eventName, quantity: p.quantity });
      if (p.quantity > 0) match(r.id, p.platform, p.eventName, p.price, p.quantity);
    } else if (r.event_type === 'TicketAvailabilityChanged') {
      const t = tickets.get(r.stream_id);
      if (t) t.quantity = p.newQuantity;
    } else if (r.event_type === 'TicketSoldOut') {
      const t = tickets.get(r.stream_id);
      if (t) t.quantity = 0;
    } else if (r.event_type === 'TicketPriceChanged') {
      const t = tickets.get(r.stream_id);
      const drop = p.newPrice.currency === p.oldPrice.currency && p.newPrice.amountMinor < p.oldPrice.amountMinor;
      if (drop && t && t.quantity > 0) match(r.id, p.platform, t.eventName, p.newPrice, t.quantity);
    }
  }
  return out.sort();
}

async function storedAlerts(pool: DatabasePool): Promise<string[]> {
  const rows = await pool.any(sql.type(z.object({ k: z.string() }))`
    SELECT (metadata->>'causation_id') || '/' || (payload->>'monitorId') AS k FROM event_store WHERE event_type = 'AlertTriggered'`);
  return rows.map((r) => r.k).sort();
}

/**
 * A fixed workload: 24 monitors over 4 fixtures (some stopped and restarted with other criteria, some
 * started late), 320 ticket streams with discoveries, price moves, availability changes and
 * sell-outs, interleaved; the same ids every time.
 */
function workload(): DispatchInput[] {
  const r = rng(2026);
  const fixtures = FIXTURES.slice(0, 4).map((f) => f.eventName);
  const platforms = DEMO_PLATFORMS.slice(0, 3);
  const events: DispatchInput[] = [];
  let n = 0;
  const push = (e: Omit<DispatchInput, 'id'>) => events.push({ ...e, id: deterministicUuid('alerts-workload', String(n++)) } as DispatchInput);
  const startMonitor = (i: number) =>
    push({
      type: 'MonitoringStarted',
      payload: { monitorId: `m-${i}`, userId: `user-${i % 7}`, eventName: fixtures[i % 4]!, platforms: [platforms[i % 3]!, platforms[(i + 1) % 3]!], maxPrice: gbp(r.int(60, 160) * 100), minQuantity: r.int(1, 3) },
    } as never);
  for (let i = 0; i < 16; i++) startMonitor(i);
  const tickets = Array.from({ length: 320 }, (_, i) => ({ id: `t-${i}`, platform: platforms[i % 3]!, fixture: fixtures[r.int(0, 3)]!, price: r.int(40, 200) * 100, quantity: r.int(0, 6), step: 0 }));
  let late = 16;
  for (let round = 0; round < 6; round++) {
    for (const t of tickets) {
      if (r.chance(0.3)) continue;
      if (t.step++ === 0) {
        push({ type: 'TicketDiscovered', payload: { ticketId: t.id, platform: t.platform, eventName: t.fixture, venue: 'Stadium', eventDate: '2027-03-14T15:00:00Z', section: 'A', row: 'B', quantity: t.quantity, price: gbp(t.price), url: `https://example.com/${t.id}` } } as never);
        continue;
      }
      const x = r.next();
      if (x < 0.55) {
        const next = Math.max(100, Math.round(t.price * (0.75 + r.next() * 0.4)));
        push({ type: 'TicketPriceChanged', payload: { ticketId: t.id, platform: t.platform, oldPrice: gbp(t.price), newPrice: gbp(next) } } as never);
        t.price = next;
      } else if (x < 0.85) {
        const next = r.int(0, 6);
        push({ type: 'TicketAvailabilityChanged', payload: { ticketId: t.id, platform: t.platform, oldQuantity: t.quantity, newQuantity: next } } as never);
        t.quantity = next;
      } else if (t.quantity > 0) {
        push({ type: 'TicketSoldOut', payload: { ticketId: t.id, platform: t.platform, soldOutAt: '2027-01-01T00:00:00.000Z' } } as never);
        t.quantity = 0;
      }
    }
    // Between rounds: some monitors stop, some restart with other criteria, new ones start.
    for (let i = round; i < 16; i += 5) push({ type: 'MonitoringStopped', payload: { monitorId: `m-${i}`, userId: `user-${i % 7}` } } as never);
    for (let i = round + 2; i < 16; i += 6) startMonitor(i);
    if (late < 24) startMonitor(late++);
    if (late < 24) startMonitor(late++);
  }
  return events;
}

const TOKEN = 'alerts-order-token-0123456789abcdef';

/** Posts the workload in order (50 per request) to web + `workers` worker processes on a fresh database; returns the alert set. */
async function runFleet(label: string, workers: number, events: readonly DispatchInput[]): Promise<{ stored: string[]; expected: string[] }> {
  const db = await createTestDb(label);
  const port = await freePort();
  const env = { DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix(label), API_TOKEN: TOKEN, LOG_LEVEL: 'info', WORKER_CONCURRENCY: '4', RELAY_POLL_MS: '300' };
  const procs: Spawned[] = [spawnTs('workers/web.ts', { ...env, PORT: String(port) }), ...Array.from({ length: workers }, () => spawnTs('workers/worker.ts', env))];
  const c = await testContainer(env);
  try {
    await waitFor(() => procs[0]!.output().includes('web server listening') && procs.slice(1).every((p) => p.output().includes('worker started')), { timeoutMs: 60_000, intervalMs: 100, what: 'the fleet to start' });
    for (let i = 0; i < events.length; i += 50) {
      const res = await fetch(`http://127.0.0.1:${port}/api/events`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ events: events.slice(i, i + 50) }) });
      expect(res.status, await res.clone().text()).toBe(201);
    }
    const n = z.object({ n: z.number() });
    await waitFor(
      async () => {
        if ((await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_outbox`)) > 0 || (await owedEvents(c)) > 0) return false;
        return idle(await queueCounts(c));
      },
      { timeoutMs: 90_000, intervalMs: 300, what: 'every event to be processed' },
    );
    return { stored: await storedAlerts(db.pool), expected: await expectedAlerts(db.pool) };
  } finally {
    await stopAll(procs);
    await disposeTestContainer(c);
    await db.drop();
  }
}

let db: TestDb;
let c: Container;
let host: WorkerHost;
beforeAll(async () => {
  db = await createTestDb('alerts_batch');
  c = await testContainer({ DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix('alerts-batch'), RELAY_POLL_MS: '200' });
  host = await startWorkerHost(c, ['handlers', 'projections', 'relay']);
});
afterAll(async () => {
  await host?.close(5000);
  await disposeTestContainer(c);
  await db?.drop();
});

const settled = async () => idle(await queueCounts(c)) && (await owedEvents(c)) === 0;
const alertsFor = (monitorId: string) =>
  db.pool.any(sql.type(z.object({ reason: z.string(), quantity: z.number() }))`
    SELECT payload->>'reason' AS reason, (payload->>'quantity')::int AS quantity FROM event_store WHERE event_type = 'AlertTriggered' AND payload->>'monitorId' = ${monitorId}`);

describe('alerts follow the store order', () => {
  it('monitor-and-ticket-in-one-batch: a monitor started and a matching ticket discovered in the same batch alerts once', async () => {
    await c.bus.dispatchMany([
      { type: 'MonitoringStarted', payload: { monitorId: 'mb-1', userId: 'u-1', eventName: 'Arsenal vs Chelsea', platforms: ['stubhub'], maxPrice: gbp(10_000), minQuantity: 2 } },
      { type: 'TicketDiscovered', payload: { ticketId: 'tb-1', platform: 'stubhub', eventName: 'Arsenal vs Chelsea', venue: 'Emirates', eventDate: '2027-03-14T15:00:00Z', section: 'A', row: 'B', quantity: 3, price: gbp(9_000), url: 'https://example.com/tb-1' } },
    ] as DispatchInput[]);
    await waitFor(settled, { what: 'the batch and its alert to settle' });
    expect(await alertsFor('mb-1')).toEqual([{ reason: 'ticket_discovered', quantity: 3 }]);
  });

  it('price-drop-after-sold-out: a price drop after the ticket sold out alerts nobody', async () => {
    await c.bus.dispatchMany([
      { type: 'MonitoringStarted', payload: { monitorId: 'ms-1', userId: 'u-2', eventName: 'Spurs vs Leeds', platforms: ['axs'], maxPrice: gbp(5_000), minQuantity: 1 } },
      { type: 'TicketDiscovered', payload: { ticketId: 'ts-1', platform: 'axs', eventName: 'Spurs vs Leeds', venue: 'Stadium', eventDate: '2027-03-14T15:00:00Z', section: 'A', row: 'B', quantity: 5, price: gbp(9_000), url: 'https://example.com/ts-1' } },
    ] as DispatchInput[]);
    await c.bus.dispatchMany([{ type: 'TicketSoldOut', payload: { ticketId: 'ts-1', platform: 'axs', soldOutAt: '2027-01-01T00:00:00.000Z' } }] as DispatchInput[]);
    await c.bus.dispatchMany([{ type: 'TicketPriceChanged', payload: { ticketId: 'ts-1', platform: 'axs', oldPrice: gbp(9_000), newPrice: gbp(4_000) } }] as DispatchInput[]);
    await waitFor(settled, { what: 'everything to settle' });
    // £90 was above the monitor's £50 when discovered; the drop to £40 came after the sell-out.
    expect(await alertsFor('ms-1')).toEqual([]);
    expect(await db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*) AS n FROM user_notifications WHERE body->>'ticketId' = 'ts-1'`)).toBe(0);
  });

  it('alerts-same-for-1-and-3-workers: the same workload through the API gives the same alert set with 1 and 3 worker processes, equal to the rule computed over the store', async () => {
    const events = workload();
    expect(events.length).toBeGreaterThan(1000);
    const one = await runFleet('alerts_w1', 1, events);
    const three = await runFleet('alerts_w3', 3, events);
    expect(one.expected.length).toBeGreaterThan(50);
    expect(one.stored).toEqual(one.expected);
    expect(three.stored).toEqual(three.expected);
    expect(three.stored).toEqual(one.stored);
  }, 240_000);
});
