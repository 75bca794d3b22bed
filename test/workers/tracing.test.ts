import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { FastifyInstance } from 'fastify';
import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { startTracing, type Tracing } from '../../src/app/tracingSdk.js';
import { startWorkerHost, type WorkerHost } from '../../src/app/workerHost.js';
import { buildServer } from '../../src/http/server.js';
import { isTracingEnabled, setTracingEnabled, TRACER_NAME } from '../../src/tracing.js';
import { disposeTestContainer, idle, owedEvents, queueCounts, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';

const TOKEN = 'tracing-test-token-0123456789';
const gbp = (amountMinor: number) => ({ amountMinor, currency: 'GBP' as const });

let exporter: InMemorySpanExporter;
let tracing: Tracing;
let db: TestDb;
let c: Container;
let host: WorkerHost;
let app: FastifyInstance;
let receiver: Server;
const received: { traceparent: string | undefined; body: string }[] = [];

beforeAll(async () => {
  // The SDK set-up the processes use, with an in-memory exporter instead of OTLP.
  exporter = new InMemorySpanExporter();
  tracing = await startTracing([new SimpleSpanProcessor(exporter)]);
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      received.push({ traceparent: req.headers.traceparent as string | undefined, body });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  db = await createTestDb('tracing');
  c = await testContainer({
    DATABASE_URL: db.url,
    QUEUE_PREFIX: testPrefix('trace'),
    API_TOKEN: TOKEN,
    ALERT_WEBHOOK_URL: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/alerts`,
  });
  host = await startWorkerHost(c, ['handlers', 'projections', 'relay']);
  app = await buildServer(c);
});
afterAll(async () => {
  await app?.close();
  await host?.close(5000);
  await disposeTestContainer(c);
  await db?.drop();
  receiver?.close();
  await tracing?.shutdown();
});

const settled = async () => idle(await queueCounts(c)) && (await owedEvents(c)) === 0;
const StoredRow = z.object({ id: z.string(), event_type: z.string(), metadata: z.record(z.unknown()) });
const stored = (ids: readonly string[]) => db.pool.any(sql.type(StoredRow)`SELECT id::text AS id, event_type, metadata FROM event_store WHERE id = ANY(${sql.array([...ids], 'uuid')}) ORDER BY global_position`);
const traceIdOf = (traceparent: unknown) => (typeof traceparent === 'string' ? traceparent.split('-')[1] : undefined);
const inTrace = (traceId: string) => (s: ReadableSpan) => s.spanContext().traceId === traceId;
const linkedTo = (traceId: string) => (s: ReadableSpan) => s.links.some((l) => l.context.traceId === traceId);
const eventIdsOf = (s: ReadableSpan) => (s.attributes['hdt.event_ids'] as string[] | undefined) ?? [];

async function post(events: unknown[], headers: Record<string, string> = {}) {
  const res = await app.inject({ method: 'POST', url: '/api/events', headers: { authorization: `Bearer ${TOKEN}`, ...headers }, payload: { events } });
  expect(res.statusCode).toBe(201);
  return (res.json().data.events as { id: string }[]).map((e) => e.id);
}

describe('tracing', () => {
  it('one-post-one-trace: one POST of 3 events gives spans for the request, dispatch, append, publish, enqueue, every consumer of those events and of the alert they raised, and the webhook delivery, all in the request trace; job spans are roots linked to it', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const ids = await post(
      [
        { type: 'MonitoringStarted', payload: { monitorId: 'tr-m1', userId: 'u-1', eventName: 'Trace vs Span', platforms: ['stubhub'], maxPrice: gbp(10_000), minQuantity: 1 } },
        { type: 'TicketDiscovered', payload: { ticketId: 'tr-t1', platform: 'stubhub', eventName: 'Trace vs Span', venue: 'Emirates', eventDate: '2027-03-14T15:00:00Z', section: 'A', row: 'B', quantity: 2, price: gbp(9_000), url: 'https://example.com/tr-t1' } },
        { type: 'TicketPriceChanged', payload: { ticketId: 'tr-t1', platform: 'stubhub', oldPrice: gbp(9_000), newPrice: gbp(9_500) } },
      ],
      { traceparent: `00-${traceId}-${callerSpan}-01` },
    );
    await waitFor(async () => (await settled()) && received.length > 0, { what: 'the events, their alert and its webhook to settle' });

    // Every event of the request, and the alert a handler emitted for it, carries the request's trace.
    const rows = await db.pool.any(sql.type(StoredRow)`SELECT id::text AS id, event_type, metadata FROM event_store WHERE metadata->>'traceparent' LIKE ${`00-${traceId}-%`} ORDER BY global_position`);
    expect(rows.slice(0, 3).map((r) => r.id)).toEqual(ids);
    const alerts = rows.filter((r) => r.event_type === 'AlertTriggered');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.metadata).toMatchObject({ causation_id: ids[1], source: 'TicketDiscoveredHandler', traceparent: rows[1]!.metadata.traceparent });

    // Expected consumers: every registered handler and projection that handles one of these events.
    const expected = rows.flatMap((r) => c.routes.filter((route) => route.handles(r.event_type)).map((route) => ({ consumer: route.name, kind: route.kind, eventId: r.id })));
    expect(expected.length).toBeGreaterThanOrEqual(8);

    const spans = (await waitFor(
      () => {
        const all = exporter.getFinishedSpans();
        const ours = all.filter(inTrace(traceId));
        const covered = expected.every((x) => ours.some((s) => s.name === `${x.kind} ${x.consumer}` && eventIdsOf(s).includes(x.eventId)));
        return covered && ours.some((s) => s.name === 'webhook delivery') ? all : null;
      },
      { what: 'a span for every consumer of every event of the trace' },
    ))!;
    const ours = spans.filter(inTrace(traceId));
    const byName = (name: string) => ours.filter((s) => s.name === name);

    // The request continues the caller's span; dispatch, append, publish and enqueue are below it.
    const request = byName('POST /api/events');
    expect(request).toHaveLength(1);
    expect(request[0]!.parentSpanContext?.spanId).toBe(callerSpan);
    const dispatch = byName('dispatch').find((s) => s.parentSpanContext?.spanId === request[0]!.spanContext().spanId)!;
    expect(dispatch).toBeDefined();
    expect(rows[0]!.metadata.traceparent).toBe(`00-${traceId}-${dispatch.spanContext().spanId}-01`);
    expect(byName('eventStore.append').some((s) => s.parentSpanContext?.spanId === dispatch.spanContext().spanId)).toBe(true);
    const publish = byName('publish').find((s) => s.parentSpanContext?.spanId === dispatch.spanContext().spanId)!;
    expect(publish).toBeDefined();
    expect(byName('enqueue').some((s) => s.parentSpanContext?.spanId === publish.spanContext().spanId)).toBe(true);

    // Each consumer's run is a child of the dispatch span its events carry, linked to the job that ran it.
    const consumerSpans = ours.filter((s) => s.name.startsWith('handler ') || s.name.startsWith('projection '));
    for (const s of consumerSpans) {
      expect(s.parentSpanContext?.spanId).toBe(dispatch.spanContext().spanId);
      expect(s.links).toHaveLength(1);
    }
    const jobs = spans.filter((s) => s.name.startsWith('job '));
    const jobSpanIds = new Set(jobs.map((j) => j.spanContext().spanId));
    for (const s of consumerSpans) expect(jobSpanIds.has(s.links[0]!.context.spanId)).toBe(true);

    // Job spans are roots of their own traces, linked to the request trace: both shared queues took part.
    const linkedJobs = jobs.filter(linkedTo(traceId));
    expect(new Set(linkedJobs.map((j) => j.attributes['messaging.destination.name']))).toEqual(new Set(['handlers', 'projections']));
    for (const j of linkedJobs) {
      expect(j.spanContext().traceId).not.toBe(traceId);
      expect(j.parentSpanContext).toBeUndefined();
    }

    // The webhook call is a span of the trace and sends its traceparent to the receiver.
    const webhook = byName('webhook delivery');
    expect(webhook).toHaveLength(1);
    expect(webhook[0]!.attributes).toMatchObject({ 'hdt.event_id': alerts[0]!.id, 'http.response.status_code': 200 });
    expect(received).toHaveLength(1);
    expect(received[0]!.traceparent).toBe(`00-${traceId}-${webhook[0]!.spanContext().spanId}-01`);
  });

  it('a dispatch from code without a request starts a root trace of its own, stored in the event', async () => {
    const [r] = [await c.bus.dispatch({ type: 'TicketSoldOut', payload: { ticketId: 'tr-t9', platform: 'axs', soldOutAt: '2027-01-01T00:00:00.000Z' } })];
    const [row] = await stored([r!.id]);
    const traceId = traceIdOf(row!.metadata.traceparent)!;
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    const dispatch = exporter.getFinishedSpans().find((s) => s.name === 'dispatch' && inTrace(traceId)(s))!;
    expect(dispatch.parentSpanContext).toBeUndefined();
    await waitFor(settled, { what: 'the event to settle' });
  });

  it('tracing-off-stores-nothing: with tracing off, none of our spans is made and the stored metadata is exactly what was sent, request traceparent or not', async () => {
    setTracingEnabled(false);
    try {
      const before = exporter.getFinishedSpans().length;
      expect(before).toBeGreaterThan(0);
      const ids = await post(
        [
          { type: 'TicketSoldOut', payload: { ticketId: 'tr-off-1', platform: 'axs', soldOutAt: '2027-01-01T00:00:00.000Z' }, metadata: { source: 'scraper-7' } },
          { type: 'TicketSoldOut', payload: { ticketId: 'tr-off-2', platform: 'axs', soldOutAt: '2027-01-01T00:00:00.000Z' } },
        ],
        { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' },
      );
      await waitFor(settled, { what: 'the events to settle' });
      expect((await stored(ids)).map((r) => r.metadata)).toEqual([{ source: 'scraper-7' }, {}]);
      // (The Postgres client, slonik, traces its own queries whenever a tracer provider is registered, as here.)
      expect(exporter.getFinishedSpans().slice(before).filter((s) => s.instrumentationScope.name === TRACER_NAME)).toEqual([]);
    } finally {
      setTracingEnabled(true);
    }
    expect(isTracingEnabled()).toBe(true);
  });

  it('metadata.traceparent is validated as a W3C traceparent', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/api/events',
      headers: { authorization: `Bearer ${TOKEN}` },
      payload: { type: 'TicketSoldOut', payload: { ticketId: 'tr-bad', platform: 'axs', soldOutAt: '2027-01-01T00:00:00.000Z' }, metadata: { traceparent: 'not-a-traceparent' } },
    });
    expect(res.statusCode).toBe(400);
    expect(res.body).toMatch(/traceparent/);
  });
});
