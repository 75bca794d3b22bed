import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleEvent } from '../../src/domain/index.js';
import { OpenApiChecker, startHarness, TOKEN, type Harness } from './support.js';

let h: Harness;
let openapi: OpenApiChecker;
const ids: Record<'discovered' | 'price', string[]> = { discovered: [], price: [] };

beforeAll(async () => {
  // No worker runs here: retries stay enqueued, so what a bulk action changed can be read exactly.
  h = await startHarness('failures_console');
  openapi = new OpenApiChecker((await h.api('GET', '/api/docs', { token: null })).body);
  const discovered = await h.c.bus.dispatchMany(Array.from({ length: 12 }, (_, i) => sampleEvent('TicketDiscovered', { ticketId: `fc-${i}` })));
  const price = await h.c.bus.dispatchMany(Array.from({ length: 12 }, (_, i) => sampleEvent('TicketPriceChanged', { ticketId: `fc-${i}` })));
  ids.discovered = discovered.map((d) => d.id);
  ids.price = price.map((d) => d.id);
  await h.c.failures.record('TicketDiscoveredHandler', 'handler', ids.discovered.map((eventId, i) => ({ eventId, message: `ECONNRESET from cache #${i}`, stack: `Error: ECONNRESET\n    at cache (${i})` })), 5, 'job-a');
  await h.c.failures.record('PriceChangeHandler', 'handler', ids.price.map((eventId) => ({ eventId, message: 'price_100%_wrong' })), 5, 'job-b');
  // The price failures happened two days ago.
  await h.db.pool.query(sql.unsafe`UPDATE event_processing_failures SET last_failed_at = now() - interval '2 days', first_failed_at = now() - interval '2 days' WHERE consumer = 'PriceChangeHandler'`);
});
afterAll(async () => {
  await h?.close();
});

async function call(method: string, path: string, init: Parameters<Harness['api']>[2] = {}) {
  const res = await h.api(method, path, init);
  openapi.check(method, path, res.status, res.body);
  return res;
}

const FailureSnapshot = z.object({ id: z.number(), status: z.string(), retry_count: z.number(), resolution_note: z.string().nullable(), skipped: z.boolean() });
const snapshot = () => h.db.pool.any(sql.type(FailureSnapshot)`SELECT id, status, retry_count, resolution_note, skipped FROM event_processing_failures ORDER BY id`);
const auditCount = () => h.db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*) AS n FROM operator_audit`);
const ownJobs = async (consumer: string) => (await h.c.consumerQueues.own(consumer).getJobs(['waiting', 'delayed', 'prioritized', 'active']));
const basic = (user: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${TOKEN}`).toString('base64')}` });
const iso = (msAgo: number) => new Date(Date.now() - msAgo).toISOString();

describe('failures explorer: GET /api/events/failures', () => {
  it('failures-filter-and-paging: each filter narrows the set and `total` counts it; the cursor walks every row once, newest first', async () => {
    const q = (qs: string) => call('GET', `/api/events/failures?${qs}`).then((r) => r.body.data);
    expect((await q('')).total).toBe(24);
    expect((await q('consumer=TicketDiscoveredHandler')).total).toBe(12);
    expect((await q('eventType=TicketPriceChanged')).failures.every((f: any) => f.event_type === 'TicketPriceChanged')).toBe(true);
    expect((await q('eventType=TicketPriceChanged')).total).toBe(12);
    expect((await q('q=econnreset')).total).toBe(12);
    expect((await q('q=%23')).total).toBe(12); // "#"
    // % and _ are literal text, not wildcards.
    expect((await q(`q=${encodeURIComponent('100%_w')}`)).total).toBe(12);
    expect((await q(`q=${encodeURIComponent('1%w')}`)).total).toBe(0);
    expect((await q(`since=${encodeURIComponent(iso(3600_000))}`)).total).toBe(12);
    expect((await q(`until=${encodeURIComponent(iso(3600_000))}`)).total).toBe(12);
    expect((await q(`since=${encodeURIComponent(iso(3 * 86_400_000))}&until=${encodeURIComponent(iso(86_400_000))}&consumer=PriceChangeHandler`)).total).toBe(12);
    expect((await q('consumer=TicketDiscoveredHandler&q=price')).total).toBe(0);
    expect((await q('status=resolved')).total).toBe(0);

    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: any = await q(`limit=5${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(page.total).toBe(24);
      seen.push(...page.failures.map((f: any) => f.id));
      cursor = page.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(5);
    expect(seen).toHaveLength(24);
    expect(new Set(seen).size).toBe(24);
    expect(seen).toEqual([...seen].sort((a, b) => b - a));
  });

  it('bad filter values are 400 naming the field', async () => {
    const cases: [string, string][] = [
      ['since=yesterday', 'since'],
      ['until=2026-13-01T00:00:00Z', 'until'],
      [`since=${encodeURIComponent(iso(0))}&until=${encodeURIComponent(iso(3600_000))}`, 'until'],
      ['limit=501', 'limit'],
      ['limit=0', 'limit'],
      ['cursor=not-a-cursor', 'cursor'],
      ['status=closed', 'status'],
      ['colour=red', 'colour'],
    ];
    for (const [qs, field] of cases) {
      const r = await call('GET', `/api/events/failures?${qs}`);
      expect.soft({ qs, status: r.status, field: r.body.error?.details?.field }).toEqual({ qs, status: 400, field });
    }
  });

  it('GET /api/events/failures/:id: the failure with its event, error, stack and attempts; 404 unknown, 400 bad id', async () => {
    const id = (await call('GET', '/api/events/failures?consumer=TicketDiscoveredHandler&limit=1')).body.data.failures[0].id;
    const r = await call('GET', `/api/events/failures/${id}`);
    expect(r.status).toBe(200);
    const f = r.body.data;
    expect(f).toMatchObject({ id, consumer: 'TicketDiscoveredHandler', consumerKind: 'handler', status: 'open', attempts: 5 });
    expect(f.error).toMatch(/^ECONNRESET from cache #\d+$/);
    expect(f.stack).toMatch(/at cache/);
    expect(ids.discovered).toContain(f.event.id);
    expect(f.event).toMatchObject({ type: 'TicketDiscovered', version: 1 });
    expect(f.event.payload.ticketId).toMatch(/^fc-\d+$/);
    expect(f.event.globalPosition).toBeGreaterThan(0);
    expect((await call('GET', '/api/events/failures/999999')).status).toBe(404);
    expect((await call('GET', '/api/events/failures/abc')).status).toBe(400);
  });
});

describe('bulk retry and resolve', () => {
  it('bulk-retry-dry-run-changes-nothing: counts per consumer, no row, job or audit entry changes', async () => {
    const before = await snapshot();
    const audits = await auditCount();
    const r = await call('POST', '/api/events/failures/retry', { body: { filter: { q: 'econnreset' }, dryRun: true } });
    expect(r.status).toBe(200);
    expect(r.body.data).toEqual({ dryRun: true, matched: 12, byConsumer: { TicketDiscoveredHandler: 12 }, retried: 0, jobs: 0, auditId: null });
    const all = await call('POST', '/api/events/failures/resolve', { body: { filter: {}, dryRun: true } });
    expect(all.body.data).toMatchObject({ dryRun: true, matched: 24, byConsumer: { TicketDiscoveredHandler: 12, PriceChangeHandler: 12 }, resolved: 0 });
    expect(await snapshot()).toEqual(before);
    expect(await auditCount()).toBe(audits);
    expect(await ownJobs('TicketDiscoveredHandler')).toHaveLength(0);
  });

  it('bulk-filter-refuses-bad-input: unknown filter fields and bad times are 400 naming the field, and change nothing', async () => {
    const before = await snapshot();
    for (const [body, field] of [
      [{ filter: { consumr: 'x' } }, 'filter.consumr'],
      [{ filter: { since: 'last week' } }, 'filter.since'],
      [{ filter: { ids: [] } }, 'filter.ids'],
      [{}, 'filter'],
      [{ filter: {}, dryRun: 'yes' }, 'dryRun'],
    ] as const) {
      const r = await call('POST', '/api/events/failures/retry', { body });
      expect.soft({ field, status: r.status, got: r.body.error?.details?.field }).toEqual({ field, status: 400, got: field });
    }
    expect(await snapshot()).toEqual(before);
  });

  it('bulk-resolve-needs-a-note: 422 naming `note` and nothing resolved; with a note the matched failures are skipped for good and audited', async () => {
    const before = await snapshot();
    const refused = await call('POST', '/api/events/failures/resolve', { body: { filter: { consumer: 'PriceChangeHandler' } } });
    expect(refused.status).toBe(422);
    expect(refused.body.error.details.field).toBe('note');
    expect((await call('POST', '/api/events/failures/resolve', { body: { filter: { consumer: 'PriceChangeHandler' }, note: '   ' } })).status).toBe(400);
    expect(await snapshot()).toEqual(before);

    const ok = await call('POST', '/api/events/failures/resolve', { body: { filter: { consumer: 'PriceChangeHandler', q: 'wrong' }, note: 'bad feed, re-scraped' }, headers: basic('alice') });
    expect(ok.status).toBe(200);
    expect(ok.body.data).toMatchObject({ dryRun: false, matched: 12, resolved: 12, byConsumer: { PriceChangeHandler: 12 } });
    const rows = (await call('GET', '/api/events/failures?consumer=PriceChangeHandler&status=resolved&limit=100')).body.data;
    expect(rows.total).toBe(12);
    expect(rows.failures.every((f: any) => f.resolution_note === 'bad feed, re-scraped' && f.skipped)).toBe(true);
    // Skipped for good: the handler's ledger has every event, so no later run repeats it.
    const ledger = await h.db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`
      SELECT count(*) AS n FROM event_handler_ledger WHERE handler = 'PriceChangeHandler' AND event_id = ANY(${sql.array(ids.price, 'uuid')})`);
    expect(ledger).toBe(12);
    const entry = (await call('GET', '/api/events/audit?limit=1')).body.data.entries[0];
    expect(entry).toMatchObject({ id: ok.body.data.auditId, actor: 'alice', action: 'bulk-resolve', filter: { consumer: 'PriceChangeHandler', q: 'wrong' }, counts: { matched: 12, resolved: 12 }, details: { note: 'bad feed, re-scraped' } });
    // Nothing left to resolve: a second call matches nothing.
    expect((await call('POST', '/api/events/failures/resolve', { body: { filter: { consumer: 'PriceChangeHandler' }, note: 'again' } })).body.data.matched).toBe(0);
  });

  it('bulk-retry-groups-jobs: the matched open failures become `retrying` in one job per consumer (not one per failure), and are not matched twice', async () => {
    const r = await call('POST', '/api/events/failures/retry', { body: { filter: { consumer: 'TicketDiscoveredHandler' } }, headers: { 'x-actor': 'ops-script' } });
    expect(r.status).toBe(200);
    expect(r.body.data).toMatchObject({ dryRun: false, matched: 12, retried: 12, jobs: 1, byConsumer: { TicketDiscoveredHandler: 12 } });
    const jobs = await ownJobs('TicketDiscoveredHandler');
    expect(jobs).toHaveLength(1);
    expect([...jobs[0]!.data.eventIds].sort()).toEqual([...ids.discovered].sort());
    expect(jobs[0]!.data.retryOf).toHaveLength(12);
    const rows = (await call('GET', '/api/events/failures?consumer=TicketDiscoveredHandler&status=retrying&limit=100')).body.data;
    expect(rows.total).toBe(12);
    expect(rows.failures.every((f: any) => f.retry_count === 1)).toBe(true);
    const again = (await call('POST', '/api/events/failures/retry', { body: { filter: { consumer: 'TicketDiscoveredHandler' } } })).body.data;
    expect(again).toMatchObject({ matched: 0, retried: 0, jobs: 0 });
    expect(await ownJobs('TicketDiscoveredHandler')).toHaveLength(1);
    const entry = (await call('GET', '/api/events/audit?limit=10')).body.data.entries.find((e: any) => e.id === r.body.data.auditId);
    expect(entry).toMatchObject({ actor: 'ops-script', action: 'bulk-retry', filter: { consumer: 'TicketDiscoveredHandler' }, counts: { matched: 12, retried: 12, jobs: 1 } });
  });
});

describe('audit log: GET /api/events/audit', () => {
  it('audit-names-the-actor: single retry, resolve and rebuild are audited with the basic-auth user, else X-Actor, else "operator"; newest first, paged', async () => {
    const [one] = await h.c.bus.dispatchMany([sampleEvent('TicketDiscovered', { ticketId: 'fc-audit' })]);
    await h.c.failures.record('TicketDiscoveredHandler', 'handler', [{ eventId: one!.id, message: 'boom' }], 5, 'job-c');
    const id = (await call('GET', '/api/events/failures?q=boom')).body.data.failures[0].id;
    expect((await call('POST', `/api/events/failures/${id}/retry`, { headers: basic('bob') })).status).toBe(202);
    expect((await call('POST', `/api/events/failures/${id}/resolve`, { body: { note: 'fixed upstream' }, headers: { 'x-actor': 'carol' } })).status).toBe(200);
    expect((await call('POST', '/api/events/projections/TicketReadModelProjection/rebuild')).status).toBe(202);

    const page = (await call('GET', '/api/events/audit?limit=3')).body.data;
    expect(page.entries.map((e: any) => [e.action, e.actor])).toEqual([
      ['rebuild', 'operator'],
      ['resolve', 'carol'],
      ['retry', 'bob'],
    ]);
    expect(page.entries[0]).toMatchObject({ filter: { projection: 'TicketReadModelProjection' }, details: { projections: ['TicketReadModelProjection'] } });
    expect(page.entries[1]).toMatchObject({ filter: { ids: [id] }, counts: { resolved: 1 }, details: { note: 'fixed upstream' } });
    expect(Date.parse(page.entries[0].at)).toBeGreaterThan(Date.now() - 60_000);
    const next = (await call('GET', `/api/events/audit?limit=10&before=${page.nextBefore}`)).body.data;
    // The earlier bulk actions, each audited even when it matched nothing (someone tried).
    expect(next.entries.map((e: any) => e.action)).toEqual(['bulk-retry', 'bulk-retry', 'bulk-resolve', 'bulk-resolve']);
    expect(next.entries.map((e: any) => e.counts.matched)).toEqual([0, 12, 0, 12]);
    expect(next.nextBefore).toBeNull();
    expect((await call('GET', '/api/events/audit?limit=0')).status).toBe(400);
    // A refused action is not audited.
    const audits = await auditCount();
    expect((await call('POST', `/api/events/failures/${id}/retry`)).status).toBe(409);
    expect(await auditCount()).toBe(audits);
  });
});
