import { randomUUID } from 'node:crypto';
import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleEvent } from '../../src/domain/index.js';
import { runMigrations } from '../../src/db/migrate.js';
import { buildServer } from '../../src/http/server.js';
import { createTestDb, testPrefix } from '../support/db.js';
import { captureContainer, LogCapture, OpenApiChecker, startHarness, TOKEN, type Harness } from './support.js';

let h: Harness;
let doc: any;
let openapi: OpenApiChecker;

beforeAll(async () => {
  h = await startHarness('http_api');
  doc = (await h.api('GET', '/api/docs', { token: null })).body;
  openapi = new OpenApiChecker(doc);
});
afterAll(async () => {
  await h?.close();
});

/** A request whose answer must be documented in /api/docs with a matching body. */
async function call(method: string, path: string, init: Parameters<Harness['api']>[2] = {}) {
  const res = await h.api(method, path, init);
  openapi.check(method, path, res.status, res.body);
  return res;
}

const storedCount = () => h.db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*) AS n FROM event_store`);
const ticket = (ticketId: string, extra: Record<string, unknown> = {}) => ({ type: 'TicketDiscovered', payload: { ...sampleEvent('TicketDiscovered', { ticketId }).payload, ...extra } });

describe('ingest: POST /api/events', () => {
  it('stores one event (201 with id, streamId, version, position) and a batch atomically; retries are idempotent', async () => {
    const one = await call('POST', '/api/events', { body: ticket('api-1') });
    expect(one.status).toBe(201);
    expect(one.body.data).toMatchObject({ streamId: 'ticket-api-1', version: 1 });
    expect(one.body.data.position).toBeGreaterThan(0);

    const events = [
      { id: randomUUID(), ...ticket('api-2') },
      { id: randomUUID(), type: 'TicketPriceChanged', payload: sampleEvent('TicketPriceChanged', { ticketId: 'api-2' }).payload },
      { id: randomUUID(), ...ticket('api-3'), metadata: { source: 'scraper-7', correlation_id: 'c-1' } },
    ];
    const first = await call('POST', '/api/events', { body: { events } });
    expect(first.status).toBe(201);
    expect(first.body.data.events.map((e: any) => [e.id, e.streamId, e.version])).toEqual([
      [events[0]!.id, 'ticket-api-2', 1],
      [events[1]!.id, 'ticket-api-2', 2],
      [events[2]!.id, 'ticket-api-3', 1],
    ]);
    const before = await storedCount();
    const retry = await call('POST', '/api/events', { body: { events } });
    expect(retry.status).toBe(201);
    expect(retry.body).toEqual(first.body);
    expect(retry.headers.get('idempotent-replay')).toBe('true');
    expect(await storedCount()).toBe(before);
  });

  it('409 on a version conflict, and nothing of the batch is stored', async () => {
    await call('POST', '/api/events', { body: ticket('api-c') });
    const before = await storedCount();
    const res = await call('POST', '/api/events', {
      body: { events: [ticket('api-c-other'), { ...ticket('api-c'), expectedVersion: 5 }] },
    });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe('version_conflict');
    expect(await storedCount()).toBe(before);
    const noStream = await call('POST', '/api/events', { body: { ...ticket('api-c'), expectedVersion: 'no_stream' } });
    expect(noStream.status).toBe(409);
  });

  it('answers every kind of bad input with a specific 4xx naming the field, stores nothing, and keeps serving', async () => {
    const before = await storedCount();
    const longId = 'x'.repeat(10_000);
    const cases: { name: string; init: Parameters<Harness['api']>[2]; status: number; code?: string; field?: string }[] = [
      { name: 'malformed JSON', init: { raw: '{"type": "TicketDiscovered", ', headers: { 'content-type': 'application/json' } }, status: 400, code: 'malformed_json' },
      { name: 'NaN literal', init: { raw: '{"type":"TicketDiscovered","payload":{"quantity":NaN}}', headers: { 'content-type': 'application/json' } }, status: 400, code: 'malformed_json' },
      { name: 'prototype pollution', init: { raw: '{"__proto__":{"x":1},"type":"TicketDiscovered","payload":{}}', headers: { 'content-type': 'application/json' } }, status: 400 },
      { name: 'empty JSON body', init: { raw: '', headers: { 'content-type': 'application/json' } }, status: 400, code: 'empty_body' },
      { name: 'wrong content type', init: { raw: JSON.stringify(ticket('bad')), headers: { 'content-type': 'text/plain' } }, status: 415, code: 'unsupported_media_type' },
      { name: 'form content type', init: { raw: 'type=TicketDiscovered', headers: { 'content-type': 'application/x-www-form-urlencoded' } }, status: 415 },
      { name: 'array body', init: { body: [ticket('bad')] }, status: 400, field: '' },
      { name: 'unknown event type', init: { body: { type: 'TicketTeleported', payload: {} } }, status: 422, code: 'validation_failed', field: 'type' },
      { name: 'missing type', init: { body: { payload: {} } }, status: 400, field: 'type' },
      { name: 'missing payload field', init: { body: { type: 'TicketDiscovered', payload: { ticketId: 't1' } } }, status: 422, field: 'payload.platform' },
      { name: 'wrong payload type', init: { body: ticket('bad', { quantity: 'four' }) }, status: 422, field: 'payload.quantity' },
      { name: 'unknown payload field', init: { body: ticket('bad', { discount: 5 }) }, status: 422, field: 'payload.discount' },
      { name: 'unknown envelope field', init: { body: { ...ticket('bad'), expectedversion: 1 } }, status: 400, field: 'expectedversion' },
      { name: 'payload not an object', init: { body: { type: 'TicketDiscovered', payload: 'x' } }, status: 400, field: 'payload' },
      { name: 'id not a uuid', init: { body: { id: "1' OR '1'='1", ...ticket('bad') } }, status: 400, field: 'id' },
      { name: 'bad expectedVersion', init: { body: { ...ticket('bad'), expectedVersion: -1 } }, status: 400, field: 'expectedVersion' },
      { name: 'huge expectedVersion', init: { body: { ...ticket('bad'), expectedVersion: 1e20 } }, status: 400, field: 'expectedVersion' },
      { name: 'bad metadata', init: { body: { ...ticket('bad'), metadata: { source: '' } } }, status: 400, field: 'metadata.source' },
      { name: 'negative number', init: { body: ticket('bad', { quantity: -1 }) }, status: 422, field: 'payload.quantity' },
      { name: 'fractional number', init: { body: ticket('bad', { quantity: 1.5 }) }, status: 422, field: 'payload.quantity' },
      { name: 'overflowing number', init: { raw: JSON.stringify(ticket('bad')).replace('"quantity":4', '"quantity":1e400'), headers: { 'content-type': 'application/json' } }, status: 400, field: 'payload.quantity' },
      { name: 'huge number', init: { body: ticket('bad', { price: { amountMinor: 2 ** 60, currency: 'GBP' } }) }, status: 422, field: 'payload.price.amountMinor' },
      { name: 'NUL byte', init: { body: ticket('bad', { venue: 'Emirates\u0000Stadium' }) }, status: 400, field: 'payload.venue' },
      { name: 'NUL byte in a key', init: { body: { ...ticket('bad'), metadata: { 'a\u0000b': 1 } } }, status: 400 },
      { name: '10,000-character stream id', init: { body: ticket(longId) }, status: 422, field: 'payload.ticketId' },
      { name: 'empty batch', init: { body: { events: [] } }, status: 400, field: 'events' },
      { name: '1,001 events', init: { body: { events: Array.from({ length: 1001 }, (_, i) => ticket(`many-${i}`)) } }, status: 400, field: 'events' },
      { name: 'invalid item in a batch', init: { body: { events: [ticket('ok-1'), ticket('bad', { quantity: -2 })] } }, status: 422, field: 'events[1].payload.quantity' },
      { name: 'duplicate ids in a batch', init: { body: { events: [{ id: '0b9ffb39-2a1e-4f64-8a6f-0a0f6d3e2f11', ...ticket('d1') }, { id: '0b9ffb39-2a1e-4f64-8a6f-0a0f6d3e2f11', ...ticket('d1') }] } }, status: 409 },
      { name: 'deep nesting', init: { raw: `{"type":"ErrorOccurred","payload":{"context":${'['.repeat(5000)}${']'.repeat(5000)}}}`, headers: { 'content-type': 'application/json' } }, status: 400 },
    ];
    for (const t of cases) {
      const res = await call('POST', '/api/events', t.init);
      expect.soft(res.status, `${t.name}: ${res.text.slice(0, 300)}`).toBe(t.status);
      expect.soft(res.body?.success, t.name).toBe(false);
      if (t.code) expect.soft(res.body?.error?.code, t.name).toBe(t.code);
      if (t.field !== undefined) expect.soft(res.body?.error?.details?.field, t.name).toBe(t.field);
    }
    expect(await storedCount()).toBe(before);
    expect((await call('GET', '/health')).status).toBe(200);
  });

  it('413 for a 10 MB body, nothing stored, still serving', async () => {
    const before = await storedCount();
    const big = JSON.stringify({ events: [ticket('big', { venue: 'v'.repeat(10 * 1024 * 1024) })] });
    const res = await call('POST', '/api/events', { raw: big, headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('payload_too_large');
    expect(await storedCount()).toBe(before);
    expect((await call('GET', '/health')).status).toBe(200);
  });

  it('stores SQL metacharacters verbatim and reads them back', async () => {
    const evil = `Robert'); DROP TABLE event_store; -- "\\ %_ $$`;
    const res = await call('POST', '/api/events', { body: ticket('sqlmeta', { eventName: evil }) });
    expect(res.status).toBe(201);
    const stream = await call('GET', '/api/events/streams/ticket-sqlmeta');
    expect(stream.body.data.events[0].payload.eventName).toBe(evil);
    const filtered = await call('GET', `/api/events/recent?type=${encodeURIComponent("x' OR '1'='1")}`);
    expect(filtered.status).toBe(200);
    expect(filtered.body.data.events).toEqual([]);
  });
});

describe('reads', () => {
  it('overview counts match the store', async () => {
    const res = await call('GET', '/api/events/overview');
    expect(res.status).toBe(200);
    const d = res.body.data;
    expect(d.total_events).toBe(await storedCount());
    expect(d.events_today).toBe(d.total_events);
    expect(d.event_types.find((t: any) => t.type === 'TicketDiscovered').count).toBeGreaterThan(0);
    expect(Object.keys(d.queues)).toEqual(['handlers', 'projections', 'replay']);
    expect(d.outbox.backlog).toBeGreaterThanOrEqual(0);
  });

  it('recent: newest first, cursor pagination, type and stream filters; bad parameters are 400', async () => {
    const page1 = await call('GET', '/api/events/recent?limit=2');
    expect(page1.body.data.events).toHaveLength(2);
    const [a, b] = page1.body.data.events;
    expect(a.position).toBeGreaterThan(b.position);
    const page2 = await call('GET', `/api/events/recent?limit=2&before=${page1.body.data.nextBefore}`);
    expect(page2.body.data.events[0].position).toBeLessThan(b.position);
    const all: number[] = [];
    let cursor: number | null = null;
    do {
      const r: any = await call('GET', `/api/events/recent?limit=3${cursor ? `&before=${cursor}` : ''}`);
      all.push(...r.body.data.events.map((e: any) => e.position));
      cursor = r.body.data.nextBefore;
    } while (cursor);
    expect(all.length).toBe(await storedCount());
    expect(new Set(all).size).toBe(all.length);
    const byType = await call('GET', '/api/events/recent?type=TicketPriceChanged');
    expect(byType.body.data.events.every((e: any) => e.type === 'TicketPriceChanged')).toBe(true);
    expect(byType.body.data.events[0].payload.oldPrice.currency).toBe('GBP');
    const byStream = await call('GET', '/api/events/recent?stream=ticket-api-2');
    expect(byStream.body.data.events.map((e: any) => e.version)).toEqual([2, 1]);
    for (const q of ['limit=0', 'limit=501', 'limit=-5', 'limit=NaN', 'limit=1e400', 'limit=abc', 'before=99999999999999999999', 'before=-1', 'stream=a%20b', 'type=%00', 'bogus=1']) {
      const r = await call('GET', `/api/events/recent?${q}`);
      expect.soft(r.status, q).toBe(400);
    }
  });

  it('streams: events in version order; 404 for a missing stream; 400 for a 10,000-character id', async () => {
    const ok = await call('GET', '/api/events/streams/ticket-api-2');
    expect(ok.status).toBe(200);
    expect(ok.body.data.stream).toMatchObject({ streamId: 'ticket-api-2', streamType: 'ticket', version: 2 });
    expect(ok.body.data.events.map((e: any) => e.version)).toEqual([1, 2]);
    const paged = await call('GET', '/api/events/streams/ticket-api-2?from=2&limit=1');
    expect(paged.body.data.events.map((e: any) => e.version)).toEqual([2]);
    expect((await call('GET', '/api/events/streams/ticket-nope')).status).toBe(404);
    const long = await call('GET', `/api/events/streams/${'s'.repeat(10_000)}`);
    expect(long.status).toBe(400);
    expect(long.body.error.details.field).toBe('streamId');
    expect((await call('GET', `/api/events/streams/${encodeURIComponent("x'; DROP TABLE event_store;--")}`)).status).toBe(400);
    expect((await call('GET', '/api/events/streams/ticket-api-2?from=-1')).status).toBe(400);
  });

  it('statistics over a window; bad windows are 400', async () => {
    const res = await call('GET', '/api/events/statistics?since=1h');
    expect(res.status).toBe(200);
    expect(res.body.data.total).toBe(await storedCount());
    expect(res.body.data.byPlatform.find((p: any) => p.platform === 'ticketmaster').count).toBeGreaterThan(0);
    expect(res.body.data.byHour.reduce((n: number, x: any) => n + x.count, 0)).toBe(res.body.data.total);
    expect((await call('GET', `/api/events/statistics?since=${new Date(Date.now() - 60_000).toISOString()}`)).status).toBe(200);
    for (const since of ['yesterday', '40d', '2999-01-01T00:00:00Z', '-5h', '1e400h']) expect.soft((await call('GET', `/api/events/statistics?since=${since}`)).status, since).toBe(400);
  });

  it('projections: every configured projection with status and lag', async () => {
    const res = await call('GET', '/api/events/projections');
    expect(res.body.data.projections.map((p: any) => p.name)).toEqual(h.c.projections.map((p) => p.name));
    expect(res.body.data.projections[0].lagEvents).toBeGreaterThan(0);
  });
});

describe('failures and replays', () => {
  it('lists, retries and resolves failures; unknown ids are 404, resolved ones 409, bad ids 400', async () => {
    const stored = await h.api('POST', '/api/events', { body: ticket('fail-1') });
    await h.c.failures.record('TicketDiscoveredHandler', 'handler', [{ eventId: stored.body.data.id, message: 'boom' }], 5, 'job-x');
    const list = await call('GET', '/api/events/failures');
    expect(list.body.data.failures).toHaveLength(1);
    const id = list.body.data.failures[0].id;
    expect((await call('GET', '/api/events/failures?status=resolved')).body.data.failures).toHaveLength(0);
    expect((await call('GET', '/api/events/failures?status=bogus')).status).toBe(400);

    const retry = await call('POST', `/api/events/failures/${id}/retry`);
    expect(retry.status).toBe(202);
    expect(retry.body.data.failure.status).toBe('retrying');
    expect(await h.c.consumerQueues.own('TicketDiscoveredHandler').getJob(retry.body.data.jobId)).toBeTruthy();

    expect((await call('POST', `/api/events/failures/${id}/resolve`, { body: {} })).body.error.details.field).toBe('note');
    const resolved = await call('POST', `/api/events/failures/${id}/resolve`, { body: { note: 'not needed' } });
    expect(resolved.status).toBe(200);
    expect(resolved.body.data).toMatchObject({ status: 'resolved', resolution_note: 'not needed' });
    expect((await call('POST', `/api/events/failures/${id}/resolve`, { body: { note: 'again' } })).status).toBe(409);
    expect((await call('POST', `/api/events/failures/${id}/retry`)).status).toBe(409);

    for (const path of ['/api/events/failures/999999/retry', '/api/events/failures/999999/resolve']) {
      const r = await call('POST', path, { body: { note: 'x' } });
      expect(r.status).toBe(404);
      expect(r.body.error.code).toBe('failure_not_found');
    }
    for (const bad of ['abc', '0', '-1', '1.5', '99999999999999999999']) expect.soft((await call('POST', `/api/events/failures/${bad}/retry`)).status, bad).toBe(400);
  });

  it('rebuild enqueues a replay (202) whose progress is readable; unknown projection 404; a second rebuild while queued joins the first (same job id)', async () => {
    const res = await call('POST', '/api/events/projections/TicketReadModelProjection/rebuild');
    expect(res.status).toBe(202);
    const status = await call('GET', `/api/events/replays/${res.body.data.jobId}`);
    expect(status.status).toBe(200);
    expect(status.body.data).toMatchObject({ jobId: res.body.data.jobId, projections: ['TicketReadModelProjection'] });
    const second = await call('POST', '/api/events/projections/TicketReadModelProjection/rebuild');
    expect(second.status).toBe(202);
    expect(second.body.data).toMatchObject({ jobId: res.body.data.jobId, alreadyQueued: true });
    const unknown = await call('POST', '/api/events/projections/NoSuchProjection/rebuild');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.details.validNames).toContain('TicketReadModelProjection');
    expect((await call('POST', '/api/events/projections/PurchaseReadModelProjection/rebuild', { body: { chunk: -1 } })).status).toBe(400);
    expect((await call('GET', '/api/events/replays/no-such-job')).status).toBe(404);
  });
});

describe('auth, health, docs', () => {
  it('401 without or with a wrong token on every protected route and on /admin/queues; the token never reaches the logs', async () => {
    const protectedOps = Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, ops]) =>
      Object.entries(ops).filter(([, op]) => op['x-access'] !== 'public').map(([method, op]) => ({ method: method.toUpperCase(), path: path.replace(/\{[^}]+\}/g, 'x1'), op })),
    );
    expect(protectedOps.length).toBeGreaterThanOrEqual(12);
    for (const { method, path } of protectedOps) {
      for (const token of [null, 'wrong-token-wrong-token', TOKEN.slice(0, -1), `${TOKEN}x`]) {
        const r = await call(method, path, { token, ...(method === 'POST' ? { body: { note: 'x' } } : {}) });
        expect.soft(r.status, `${method} ${path} token=${token}`).toBe(401);
        expect.soft(r.body?.error?.code).toBe('unauthorized');
      }
    }
    for (const path of ['/admin/queues', '/admin/queues/api/queues']) {
      const r = await h.api('GET', path, { token: null });
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Basic/);
      const basic = Buffer.from(`admin:${TOKEN}`).toString('base64');
      expect((await h.api('GET', path, { token: null, headers: { authorization: `Basic ${basic}` } })).status).toBe(200);
      expect((await h.api('GET', path)).status).toBe(200);
    }
    for (const path of ['/health', '/ready', '/api/docs']) expect((await h.api('GET', path, { token: null })).status).toBe(200);
    // Trace-level logging of everything above, including rejected and accepted credentials.
    expect(h.logs.text.length).toBeGreaterThan(1000);
    expect(h.logs.text).not.toContain(TOKEN);
    expect(h.logs.text).not.toContain(Buffer.from(`admin:${TOKEN}`).toString('base64'));
    expect(h.logs.text).not.toContain('wrong-token-wrong-token');
  });

  it('PUBLIC_READ=true opens GETs but not POSTs; production without API_TOKEN refuses to start; elsewhere it warns', async () => {
    const logs = new LogCapture();
    const pub = await captureContainer({ DATABASE_URL: h.db.url, QUEUE_PREFIX: testPrefix('pub'), API_TOKEN: TOKEN, PUBLIC_READ: 'true' }, logs);
    const app = await buildServer(pub);
    try {
      expect((await app.inject({ method: 'GET', url: '/api/events/overview' })).statusCode).toBe(200);
      expect((await app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(200);
      expect((await app.inject({ method: 'POST', url: '/api/events', payload: ticket('pub') })).statusCode).toBe(401);
      expect((await app.inject({ method: 'GET', url: '/admin/queues' })).statusCode).toBe(401);
    } finally {
      await app.close();
      await pub.close();
    }
    const prod = await captureContainer({ DATABASE_URL: h.db.url, QUEUE_PREFIX: testPrefix('prod'), NODE_ENV: 'production' }, logs);
    await expect(buildServer(prod)).rejects.toThrow(/API_TOKEN: required when NODE_ENV=production/);
    await prod.close();
    const dev = await captureContainer({ DATABASE_URL: h.db.url, QUEUE_PREFIX: testPrefix('dev'), NODE_ENV: 'development' }, logs);
    const devApp = await buildServer(dev);
    expect(logs.text).toMatch(/API_TOKEN is not set/);
    await devApp.close();
    await dev.close();
  });

  it('/ready is 503 naming what is missing when a migration is pending', async () => {
    const db = await createTestDb('http_ready', { migrate: false });
    try {
      await runMigrations(db.url, 'up', 2);
      const c = await captureContainer({ DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix('ready'), API_TOKEN: TOKEN }, new LogCapture());
      const app = await buildServer(c);
      try {
        const res = await app.inject({ method: 'GET', url: '/ready' });
        expect(res.statusCode).toBe(503);
        const body = res.json();
        openapi.check('GET', '/ready', 503, body);
        expect(body.data.checks.postgres.ok).toBe(true);
        expect(body.data.checks.redis.ok).toBe(true);
        expect(body.data.checks.migrations.pending).toContain('1700000000003_http-statistics');
      } finally {
        await app.close();
        await c.close();
      }
    } finally {
      await db.drop();
    }
  });

  it('serves an OpenAPI 3.1 document covering every route, 404 envelope for unknown routes', async () => {
    expect(doc.openapi).toBe('3.1.0');
    for (const p of ['/api/events', '/api/events/overview', '/api/events/statistics', '/api/events/recent', '/api/events/projections', '/api/events/failures', '/api/events/projections/{name}/rebuild', '/api/events/replays/{jobId}', '/api/events/failures/{id}/resolve', '/api/events/failures/{id}/retry', '/api/events/streams/{streamId}', '/health', '/ready', '/metrics']) {
      expect(doc.paths[p], p).toBeTruthy();
    }
    // The ingest body is documented per event type from the domain's own schemas.
    expect(JSON.stringify(doc.paths['/api/events'].post.requestBody)).toContain('TicketPriceChanged');
    const nf = await h.api('GET', '/api/nothing-here');
    expect(nf.status).toBe(404);
    expect(nf.body).toMatchObject({ success: false, error: { code: 'not_found' } });
  });
});
