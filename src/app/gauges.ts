import type { Queue } from 'bullmq';
import { Counter, Gauge } from 'prom-client';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { countOpenFailures } from '../consumers/failures.js';
import { owedSummary } from '../consumers/owedWork.js';
import { xminHorizon } from '../db/horizon.js';
import { storeSizes } from '../eventStore/archive.js';
import { lagSecondsOf, projectionLags } from '../projections/status.js';
import { QUEUE_STATES, registry } from '../metrics/metrics.js';

// Scrape-time gauges: read from Postgres/Redis when /metrics is scraped, so any web process reports
// the same fleet-wide values.
const projectionLag = new Gauge({
  name: 'hdt_projection_lag_events',
  help: 'Events in a projection’s streams not yet applied to its read model',
  labelNames: ['projection'] as const,
  registers: [registry],
});
const projectionLagSeconds = new Gauge({
  name: 'hdt_projection_lag_seconds',
  help: 'While a projection lags: age of its oldest owed work or parked stream (0 without lag)',
  labelNames: ['projection'] as const,
  registers: [registry],
});
const outboxBacklog = new Gauge({ name: 'hdt_outbox_backlog', help: 'Outbox rows not yet handed to Redis', registers: [registry] });
const outboxOldest = new Gauge({ name: 'hdt_outbox_oldest_seconds', help: 'Age of the oldest outbox row (0 when empty)', registers: [registry] });
const queueDepth = new Gauge({
  name: 'hdt_queue_jobs',
  help: 'BullMQ jobs by queue and state',
  labelNames: ['queue', 'state'] as const,
  registers: [registry],
});
const owedEvents = new Gauge({
  name: 'hdt_owed_events',
  help: 'Events a registered consumer still owes (from Postgres: owed batches plus unpublished outbox rows)',
  labelNames: ['consumer'] as const,
  registers: [registry],
});
const owedOldest = new Gauge({
  name: 'hdt_owed_oldest_seconds',
  help: 'Age of the oldest event a consumer still owes (0 when it owes nothing)',
  labelNames: ['consumer'] as const,
  registers: [registry],
});
const consumerLive = new Gauge({
  name: 'hdt_consumer_live_worker',
  help: '1 when a worker running the consumer sent a heartbeat within 30 s, else 0',
  labelNames: ['consumer'] as const,
  registers: [registry],
});
const openFailures = new Gauge({ name: 'hdt_failures_open', help: 'Processing failures not resolved (open or retrying)', registers: [registry] });
const storeEvents = new Gauge({
  name: 'hdt_event_store_events',
  help: 'Events by table: hot (planner estimate, pg_class.reltuples) and archive (counted by events:archive)',
  labelNames: ['table'] as const,
  registers: [registry],
});
const storeBytes = new Gauge({ name: 'hdt_event_store_bytes', help: 'pg_total_relation_size of event_store (hot) and event_store_archive (archive)', labelNames: ['table'] as const, registers: [registry] });
const storeGrowth = new Gauge({ name: 'hdt_event_store_events_last_24h', help: 'Events recorded in the last 24 hours (growth per day)', registers: [registry] });
const storeGrowthBytes = new Gauge({ name: 'hdt_event_store_growth_bytes_per_day', help: 'Events of the last 24 h × average bytes per hot event (estimate)', registers: [registry] });
const horizonAge = new Gauge({
  name: 'hdt_xmin_horizon_age_seconds',
  help: 'Age of the oldest transaction holding back gap-free readers (replay, catch-up, alerting); GET /api/events/overview names its application_name',
  registers: [registry],
});
const scrapeErrors = new Counter({
  name: 'hdt_metrics_scrape_errors_total',
  help: 'Scrape-time gauge sources that could not be read (the gauge keeps its previous value)',
  labelNames: ['source'] as const,
  registers: [registry],
});


export interface GaugeSources {
  pool: DatabasePool;
  queues: Record<string, Queue>;
  /** Name and the stream types it reads; lag comes from counters (projectionLags), not by scanning the store. */
  projections: readonly { name: string; streamTypes: readonly string[] }[];
}

const OutboxRow = z.object({ n: z.number(), oldest: z.string().nullable() });

/**
 * Sets the scrape-time gauges. Each source is read independently: with Redis down the Postgres gauges
 * still refresh (and vice versa), and the failing source bumps hdt_metrics_scrape_errors_total.
 */
export async function refreshGauges(s: GaugeSources): Promise<void> {
  const now = Date.now();
  // Read once for the owed gauges and the projections' lag seconds; each guard sees its failure.
  const owedP = owedSummary(s.pool);
  owedP.catch(() => {});
  await Promise.all([
    guard('projections', async () => {
      if (s.projections.length === 0) return;
      // From counters (projectionLags), not by joining every stream to its checkpoint.
      const [lags, owed] = await Promise.all([projectionLags(s.pool, s.projections), owedP]);
      const owedOf = new Map(owed.map((o) => [o.consumer, o.oldestSeconds]));
      projectionLag.reset();
      projectionLagSeconds.reset();
      for (const [projection, lag] of lags) {
        projectionLag.set({ projection }, lag.lagEvents);
        projectionLagSeconds.set({ projection }, lagSecondsOf(lag, owedOf.get(projection) ?? 0, now));
      }
    }),
    guard('outbox', async () => {
      const r = await s.pool.one(sql.type(OutboxRow)`SELECT count(*) AS n, min(created_at) AS oldest FROM event_outbox`);
      outboxBacklog.set(r.n);
      outboxOldest.set(r.oldest ? Math.max(0, (now - Date.parse(r.oldest)) / 1000) : 0);
    }),
    guard('owed', async () => {
      const rows = await owedP;
      owedEvents.reset();
      owedOldest.reset();
      consumerLive.reset();
      for (const r of rows) {
        owedEvents.set({ consumer: r.consumer }, r.events);
        owedOldest.set({ consumer: r.consumer }, r.oldestSeconds);
        consumerLive.set({ consumer: r.consumer }, r.liveWorker ? 1 : 0);
      }
    }),
    guard('horizon', async () => {
      horizonAge.set((await xminHorizon(s.pool)).ageSeconds);
    }),
    guard('storage', async () => {
      const st = await storeSizes(s.pool);
      storeEvents.set({ table: 'hot' }, st.hotEventsEstimate);
      storeEvents.set({ table: 'archive' }, st.archivedEvents);
      storeBytes.set({ table: 'hot' }, st.hotBytes);
      storeBytes.set({ table: 'archive' }, st.archivedBytes);
      storeGrowth.set(st.eventsLast24h);
      storeGrowthBytes.set(st.bytesPerDayEstimate);
    }),
    guard('failures', async () => {
      openFailures.set(await countOpenFailures(s.pool));
    }),
    guard('queues', async () => {
      const counts = await Promise.all(Object.entries(s.queues).map(async ([name, q]) => [name, await q.getJobCounts(...QUEUE_STATES)] as const));
      queueDepth.reset();
      for (const [name, c] of counts) for (const state of QUEUE_STATES) queueDepth.set({ queue: name, state }, c[state] ?? 0);
    }),
  ]);
}

async function guard(source: string, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch {
    scrapeErrors.inc({ source });
  }
}

