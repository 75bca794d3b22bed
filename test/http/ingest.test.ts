import { randomUUID } from 'node:crypto';
import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorkerHost, type WorkerHost } from '../../src/app/workerHost.js';
import { sampleEvent } from '../../src/domain/index.js';
import { projectionStatuses } from '../../src/projections/status.js';
import { waitFor } from '../support/db.js';
import { actualDocs, diffDocs, expectedDocs } from '../support/readModels.js';
import { parsePrometheus, startHarness, sumMetric, type Harness } from './support.js';

let h: Harness;
let host: WorkerHost;

beforeAll(async () => {
  h = await startHarness('http_ingest', { WORKER_CONCURRENCY: '4', RELAY_POLL_MS: '200' });
  host = await startWorkerHost(h.c, ['handlers', 'projections', 'relay']);
});
afterAll(async () => {
  await host?.close(5000);
  await h?.close();
});

const TOTAL = 20_000;
const BATCH = 1_000;
const gbp = (amountMinor: number) => ({ amountMinor, currency: 'GBP' as const });

/**
 * One batch of 1,000 events: 80 tickets (discovered, then 9 price/availability changes each) and 100
 * purchases (initiated, completed), so every batch spans 120 streams and feeds two read models.
 */
function batch(b: number): unknown[] {
  const events: unknown[] = [];
  for (let t = 0; t < 80; t++) {
    const ticketId = `ing-${b}-${t}`;
    events.push({ id: randomUUID(), type: 'TicketDiscovered', payload: sampleEvent('TicketDiscovered', { ticketId, price: gbp(10_000) }).payload });
    for (let k = 0; k < 9; k++) {
      events.push(
        k % 3 === 2
          ? { id: randomUUID(), type: 'TicketAvailabilityChanged', payload: { ticketId, platform: 'ticketmaster', oldQuantity: 4, newQuantity: 3 } }
          : { id: randomUUID(), type: 'TicketPriceChanged', payload: { ticketId, platform: 'ticketmaster', oldPrice: gbp(10_000 + k), newPrice: gbp(10_001 + k) } },
      );
    }
  }
  for (let p = 0; p < 100; p++) {
    const purchaseId = `ing-${b}-p${p}`;
    events.push({ id: randomUUID(), type: 'PurchaseInitiated', payload: sampleEvent('PurchaseInitiated', { purchaseId, ticketId: `ing-${b}-${p}` }).payload });
    events.push({ id: randomUUID(), type: 'PurchaseCompleted', payload: sampleEvent('PurchaseCompleted', { purchaseId }).payload });
  }
  return events;
}

const storeCount = () => h.db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*) AS n FROM event_store`);

describe('ingest under load', () => {
  it('20,000 events through POST /api/events batches while workers run: all reach the read models, overview matches the store, /metrics moves', async () => {
    const metricsBefore = parsePrometheus((await h.api('GET', '/metrics')).text);
    const started = Date.now();
    const batches = Array.from({ length: TOTAL / BATCH }, (_, b) => batch(b));
    expect(batches.every((events) => events.length === BATCH)).toBe(true);
    // Two producers at a time, like two scrapers.
    let next = 0;
    await Promise.all(
      [0, 1].map(async () => {
        while (next < batches.length) {
          const events = batches[next++]!;
          const res = await h.api('POST', '/api/events', { body: { events } });
          expect(res.status, res.text.slice(0, 300)).toBe(201);
          expect(res.body.data.events).toHaveLength(BATCH);
        }
      }),
    );
    const ingestMs = Date.now() - started;

    await waitFor(
      async () => {
        const statuses = await projectionStatuses(h.db.pool, h.c.projections);
        return statuses.every((s) => s.lagEvents === 0) && (await h.api('GET', '/api/events/overview')).body.data.outbox.backlog === 0;
      },
      { timeoutMs: 90_000, intervalMs: 250, what: 'projections caught up' },
    );
    const processedMs = Date.now() - started;

    const stored = await storeCount();
    expect(stored).toBeGreaterThanOrEqual(TOTAL);
    const overview = (await h.api('GET', '/api/events/overview')).body.data;
    expect(overview.total_events).toBe(stored);
    expect(overview.event_types.reduce((n: number, t: { count: number }) => n + t.count, 0)).toBe(stored);
    expect(overview.event_types.find((t: { type: string }) => t.type === 'TicketDiscovered').count).toBe(80 * (TOTAL / BATCH));
    expect(overview.events_today).toBe(stored);
    expect(overview.failed_processing).toBe(0);

    for (const p of h.c.projections.filter((x) => x.table !== 'monitoring_read_models')) {
      const diff = diffDocs(await expectedDocs(h.db.pool, p), await actualDocs(h.db.pool, p.table));
      expect(diff, p.name).toEqual([]);
    }
    expect((await actualDocs(h.db.pool, 'ticket_read_models')).size).toBe(80 * (TOTAL / BATCH));
    expect((await actualDocs(h.db.pool, 'purchase_read_models')).size).toBe(100 * (TOTAL / BATCH));

    const stats = (await h.api('GET', '/api/events/statistics?since=1h')).body.data;
    expect(stats.total).toBe(stored);
    expect(stats.processing.sampleSize).toBeGreaterThan(0);
    expect(stats.processing.p99Seconds).toBeGreaterThanOrEqual(stats.processing.p50Seconds);

    const metrics = parsePrometheus((await h.api('GET', '/metrics')).text);
    const delta = (name: string, label = '') => sumMetric(metrics, name, label) - sumMetric(metricsBefore, name, label);
    expect(delta('hdt_events_appended_total')).toBe(TOTAL);
    expect(delta('hdt_events_appended_total', 'type="TicketDiscovered"')).toBe(80 * (TOTAL / BATCH));
    expect(delta('hdt_jobs_processed_total', 'consumer="TicketReadModelProjection"')).toBeGreaterThan(0);
    expect(delta('hdt_jobs_processed_total', 'kind="handler"')).toBeGreaterThan(0);
    expect(delta('hdt_job_duration_seconds_count')).toBeGreaterThan(0);
    expect(metrics.get('hdt_projection_lag_events{projection="TicketReadModelProjection"}')).toBe(0);
    expect(metrics.get('hdt_outbox_backlog')).toBe(0);
    expect(metrics.get('hdt_failures_open')).toBe(0);
    expect(metrics.has('hdt_queue_jobs{queue="handlers",state="waiting"}')).toBe(true);
    console.log(`ingested ${TOTAL} events over HTTP in ${ingestMs} ms; all projected in ${processedMs} ms`);
  });
});
