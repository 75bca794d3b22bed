import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, TOKEN, type Harness } from './support.js';

const PRODUCER = 'producer-token-scraper-4b8e1f0a';
const PARTNER = 'producer-token-partner-77c2d9e3';
let h: Harness;

const event = (id: string, metadata?: Record<string, string>) => ({
  id,
  type: 'TicketDiscovered',
  ...(metadata ? { metadata } : {}),
  payload: { ticketId: `tm-${id.slice(0, 8)}`, platform: 'ticketmaster', eventName: 'Arsenal vs Chelsea', venue: 'Emirates', eventDate: '2030-05-18T15:00:00Z', quantity: 2, price: { amountMinor: 8500, currency: 'GBP' } },
});
const sourceOf = (id: string) => h.db.pool.oneFirst(sql.type(z.object({ source: z.string().nullable() }))`SELECT metadata->>'source' AS source FROM event_store WHERE id = ${id}`);

beforeAll(async () => {
  h = await startHarness('producertokens', { INGEST_TOKENS: `scraper:${PRODUCER},partner-2:${PARTNER}` });
});
afterAll(async () => {
  await h?.close();
});

describe('producer tokens (INGEST_TOKENS)', () => {
  it('every-route-needs-credentials: without them every non-public route of the OpenAPI document answers 401 (the stream too)', async () => {
    const docs = await h.api('GET', '/api/docs', { token: null });
    const paths = docs.body.paths as Record<string, Record<string, { 'x-access': string; responses: Record<string, unknown> }>>;
    const checked: string[] = [];
    for (const [path, ops] of Object.entries(paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const url = path.replace(/\{[^}]+\}/g, '1');
        const res = await h.api(method.toUpperCase(), url, { token: null });
        if (op['x-access'] === 'public') {
          expect(res.status, `${method} ${path}`).not.toBe(401);
          continue;
        }
        expect({ route: `${method} ${path}`, status: res.status, code: res.body?.error?.code }).toEqual({ route: `${method} ${path}`, status: 401, code: 'unauthorized' });
        expect(op.responses, `${method} ${path} documents 401`).toHaveProperty('401');
        checked.push(`${method} ${path}`);
      }
    }
    for (const r of ['get /api/events/stream', 'get /api/events/audit', 'get /api/events/failures/{id}', 'post /api/events/failures/retry', 'post /api/events/failures/resolve', 'post /api/events']) expect(checked).toContain(r);
    // The rendered document is public, like the document itself.
    const ui = await h.api('GET', '/api/docs/ui', { token: null });
    expect(ui.status).toBe(200);
    expect(ui.headers.get('content-type')).toMatch(/text\/html/);
    // Offline: the page's scripts come from this server, and it renders this server's document.
    expect(ui.text).not.toMatch(/https?:\/\/(?!127\.0\.0\.1)[^"' ]*\.(js|css)/);
    const bundle = await h.api('GET', '/api/docs/ui/static/swagger-ui-bundle.js', { token: null });
    expect(bundle.status).toBe(200);
    expect(bundle.text.length).toBeGreaterThan(100_000);
    const served = await h.api('GET', '/api/docs/ui/json', { token: null });
    expect(served.body.paths).toEqual(docs.body.paths);
  });

  it('producer-token-may-only-ingest: 201 on POST /api/events, 403 on every other route of the OpenAPI document', async () => {
    const docs = await h.api('GET', '/api/docs', { token: null });
    expect(docs.status).toBe(200);
    const paths = docs.body.paths as Record<string, Record<string, { 'x-access': string; responses: Record<string, unknown> }>>;
    const checked: string[] = [];
    for (const [path, ops] of Object.entries(paths)) {
      for (const [method, op] of Object.entries(ops)) {
        if (method === 'post' && path === '/api/events') continue;
        const url = path.replace(/\{[^}]+\}/g, '1');
        const res = await h.api(method.toUpperCase(), url, { token: PRODUCER });
        if (op['x-access'] === 'public') {
          expect(res.status, `${method} ${path}`).not.toBe(403);
          continue;
        }
        expect({ route: `${method} ${path}`, status: res.status, code: res.body?.error?.code }).toEqual({ route: `${method} ${path}`, status: 403, code: 'forbidden' });
        expect(op.responses, `${method} ${path} documents 403`).toHaveProperty('403');
        checked.push(`${method} ${path}`);
      }
    }
    // The document really lists the operator routes (a handful of reads and writes, and /metrics).
    expect(checked).toContain('get /metrics');
    expect(checked.filter((r) => r.startsWith('post ')).length).toBeGreaterThanOrEqual(2);
    expect(checked.length).toBeGreaterThanOrEqual(8);
    for (const r of ['get /api/events/stream', 'get /api/events/audit', 'get /api/events/failures/{id}', 'post /api/events/failures/retry', 'post /api/events/failures/resolve']) expect(checked).toContain(r);

    const id = '2f6a3c1e-9b7d-4e21-8c55-0a1b2c3d4e01';
    const ingest = await h.api('POST', '/api/events', { token: PRODUCER, body: event(id) });
    expect(ingest.status, ingest.text).toBe(201);
    expect(await sourceOf(id)).toBe('scraper');
  });

  it("a producer's own metadata.source is kept; each producer's name is its own; the operator's events get no default", async () => {
    const own = '2f6a3c1e-9b7d-4e21-8c55-0a1b2c3d4e02';
    expect((await h.api('POST', '/api/events', { token: PRODUCER, body: { events: [event(own, { source: 'feed-7' })] } })).status).toBe(201);
    expect(await sourceOf(own)).toBe('feed-7');
    const partner = '2f6a3c1e-9b7d-4e21-8c55-0a1b2c3d4e03';
    expect((await h.api('POST', '/api/events', { token: PARTNER, body: event(partner, { correlation_id: 'c-1' }) })).status).toBe(201);
    expect(await sourceOf(partner)).toBe('partner-2');
    const operator = '2f6a3c1e-9b7d-4e21-8c55-0a1b2c3d4e04';
    expect((await h.api('POST', '/api/events', { body: event(operator) })).status).toBe(201);
    expect(await sourceOf(operator)).toBeNull();
  });

  it('bull-board refuses a producer token as bearer and as basic password (403); the operator token still gets in', async () => {
    const basic = (token: string) => `Basic ${Buffer.from(`anyone:${token}`).toString('base64')}`;
    for (const authorization of [`Bearer ${PRODUCER}`, basic(PRODUCER), basic(PARTNER)]) {
      const res = await h.api('GET', '/admin/queues', { headers: { authorization } });
      expect(res.status, authorization.split(' ')[0]).toBe(403);
      expect(res.text).not.toContain(PRODUCER);
    }
    expect((await h.api('GET', '/admin/queues/api/queues', { headers: { authorization: basic(PRODUCER) } })).status).toBe(403);
    expect((await h.api('GET', '/admin/queues', { headers: { authorization: basic(TOKEN) } })).status).toBe(200);
    expect((await h.api('GET', '/admin/queues', { token: PRODUCER.replace(/.$/, 'x') })).status).toBe(401);
  });

  it('the operator token keeps everything; a wrong token or none gets 401; no token reaches the logs', async () => {
    expect((await h.api('GET', '/api/events/overview')).status).toBe(200);
    expect((await h.api('GET', '/metrics')).status).toBe(200);
    expect((await h.api('GET', '/api/events/overview', { token: 'x'.repeat(32) })).status).toBe(401);
    expect((await h.api('GET', '/api/events/overview', { token: null })).status).toBe(401);
    expect((await h.api('POST', '/api/events', { token: null, body: event('2f6a3c1e-9b7d-4e21-8c55-0a1b2c3d4e05') })).status).toBe(401);
    expect((await h.api('POST', '/api/events', { token: PRODUCER.slice(0, -1), body: event('2f6a3c1e-9b7d-4e21-8c55-0a1b2c3d4e06') })).status).toBe(401);
    for (const secret of [TOKEN, PRODUCER, PARTNER]) expect(h.logs.text).not.toContain(secret);
  });
});
