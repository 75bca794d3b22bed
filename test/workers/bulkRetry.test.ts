import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorkerHost, type WorkerHost } from '../../src/app/workerHost.js';
import { sampleEvent } from '../../src/domain/index.js';
import type { EventHandler } from '../../src/handlers/Handler.js';
import { waitFor } from '../support/db.js';
import { startHarness, type Harness } from '../http/support.js';

/** A handler whose dependency is down (`broken`), or that still rejects some events (`poison`). */
let broken = true;
const poison = new Set<string>();
const FlakyHandler: EventHandler = {
  name: 'FlakyTicketHandler',
  handledTypes: ['TicketDiscovered'],
  // One attempt: each event fails for good at once, so the test does not wait out a backoff.
  attempts: 1,
  async handle(e) {
    if (broken) throw new Error('inventory service answered 503');
    if (poison.has(e.id)) throw new Error(`ticket ${e.id} rejected by inventory`);
  },
};

let h: Harness;
let host: WorkerHost;

beforeAll(async () => {
  h = await startHarness('bulk_retry', { JOB_BACKOFF_MS: '100' }, { handlers: [FlakyHandler], projections: [] });
  host = await startWorkerHost(h.c, ['handlers', 'relay']);
});
afterAll(async () => {
  await host?.close(5000);
  await h?.close();
});

const Count = z.object({ n: z.number() });
const statusCounts = async () =>
  Object.fromEntries(
    (await h.db.pool.any(sql.type(z.object({ status: z.string(), n: z.number() }))`
      SELECT status, count(*) AS n FROM event_processing_failures WHERE consumer = 'FlakyTicketHandler' GROUP BY status`)).map((r) => [r.status, r.n]),
  );
const handled = () => h.db.pool.oneFirst(sql.type(Count)`SELECT count(*) AS n FROM event_handler_ledger WHERE handler = 'FlakyTicketHandler'`);

describe('bulk retry through a running worker', () => {
  it('bulk-retry-after-outage: 50 failures of a handler whose dependency was down are all resolved by one bulk retry once it is back, in one job; events still rejected are open again, none stuck retrying', async () => {
    const stored = await h.c.bus.dispatchMany(Array.from({ length: 50 }, (_, i) => sampleEvent('TicketDiscovered', { ticketId: `br-${i}` })));
    await waitFor(async () => (await statusCounts()).open === 50, { what: '50 open failures' });
    expect(await handled()).toBe(0);

    const preview = await h.api('POST', '/api/events/failures/retry', { body: { filter: { consumer: 'FlakyTicketHandler', q: '503' }, dryRun: true } });
    expect(preview.body.data).toMatchObject({ dryRun: true, matched: 50, byConsumer: { FlakyTicketHandler: 50 } });

    // The dependency is back, but three events are rejected on their own merits.
    broken = false;
    for (const s of stored.slice(0, 3)) poison.add(s.id);
    const r = await h.api('POST', '/api/events/failures/retry', { body: { filter: { consumer: 'FlakyTicketHandler', q: '503' } } });
    expect(r.status).toBe(200);
    expect(r.body.data).toMatchObject({ dryRun: false, matched: 50, retried: 50, jobs: 1 });
    await waitFor(async () => !(await statusCounts()).retrying, { what: 'no failure left retrying' });
    expect(await statusCounts()).toEqual({ resolved: 47, open: 3 });
    expect(await handled()).toBe(47);
    const reopened = (await h.api('GET', '/api/events/failures?consumer=FlakyTicketHandler')).body.data.failures;
    expect(reopened.map((f: any) => f.event_id).sort()).toEqual(stored.slice(0, 3).map((s) => s.id).sort());
    expect(reopened.every((f: any) => /rejected by inventory/.test(f.error_message) && f.retry_count === 1)).toBe(true);

    // Fixed for good: retrying the rest by id resolves them too, and nothing ran twice.
    poison.clear();
    const rest = await h.api('POST', '/api/events/failures/retry', { body: { filter: { ids: reopened.map((f: any) => f.id) } } });
    expect(rest.body.data).toMatchObject({ matched: 3, retried: 3, jobs: 1 });
    await waitFor(async () => (await statusCounts()).resolved === 50, { what: 'all 50 resolved' });
    expect(await handled()).toBe(50);
    const audit = (await h.api('GET', '/api/events/audit')).body.data.entries;
    expect(audit.map((e: any) => [e.action, e.counts.retried])).toEqual([
      ['bulk-retry', 3],
      ['bulk-retry', 50],
    ]);
  });
});
