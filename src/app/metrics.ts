import type { Queue } from 'bullmq';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';

// One registry per process, free of HTTP, so the event bus and the workers can count into it and
// whichever process serves /metrics exposes what it did. Counters are process-local (Prometheus sums
// them across processes); the gauges below are read from Postgres/Redis at scrape time, so any web
// process reports the same fleet-wide values.
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'hdt_' });

export const eventsAppended = new Counter({
  name: 'hdt_events_appended_total',
  help: 'Events appended to the store through the event bus (idempotent retries not counted), by type',
  labelNames: ['type'] as const,
  registers: [registry],
});

export const jobsProcessed = new Counter({
  name: 'hdt_jobs_processed_total',
  help: 'Handler/projection jobs that completed, by consumer',
  labelNames: ['consumer', 'kind'] as const,
  registers: [registry],
});

export const jobsFailed = new Counter({
  name: 'hdt_jobs_failed_total',
  help: 'Handler/projection job attempts that threw (each attempt counts; the final one also lands in event_processing_failures), by consumer',
  labelNames: ['consumer', 'kind'] as const,
  registers: [registry],
});

export const jobDuration = new Histogram({
  name: 'hdt_job_duration_seconds',
  help: 'Time a worker spent on one handler/projection job attempt',
  labelNames: ['consumer', 'kind'] as const,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});

const projectionLag = new Gauge({
  name: 'hdt_projection_lag_events',
  help: 'Events in a projection’s streams not yet applied to its read model',
  labelNames: ['projection'] as const,
  registers: [registry],
});
const projectionLagSeconds = new Gauge({
  name: 'hdt_projection_lag_seconds',
  help: 'Age of the oldest stream change a projection has not applied yet',
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
const openFailures = new Gauge({ name: 'hdt_failures_open', help: 'Processing failures not resolved (open or retrying)', registers: [registry] });
const scrapeErrors = new Counter({
  name: 'hdt_metrics_scrape_errors_total',
  help: 'Scrape-time gauge sources that could not be read (the gauge keeps its previous value)',
  labelNames: ['source'] as const,
  registers: [registry],
});

export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'failed', 'completed'] as const;

export interface GaugeSources {
  pool: DatabasePool;
  queues: Record<string, Queue>;
  /** Name and the stream types it reads; lag is computed from event_streams, not by scanning the store. */
  projections: readonly { name: string; streamTypes: readonly string[] }[];
}

const LagRow = z.object({ projection: z.string(), lag: z.number(), oldest: z.string().nullable() });
const OutboxRow = z.object({ n: z.number(), oldest: z.string().nullable() });

/**
 * Sets the scrape-time gauges. Each source is read independently: with Redis down the Postgres gauges
 * still refresh (and vice versa), and the failing source bumps hdt_metrics_scrape_errors_total.
 */
export async function refreshGauges(s: GaugeSources): Promise<void> {
  const now = Date.now();
  await Promise.all([
    guard('projections', async () => {
      if (s.projections.length === 0) return;
      const rows = await s.pool.any(sql.type(LagRow)`
        SELECT p.name AS projection,
               coalesce(sum(st.version - coalesce(c.version, 0)), 0)::int8 AS lag,
               min(st.updated_at) FILTER (WHERE st.version > coalesce(c.version, 0)) AS oldest
        FROM unnest(${sql.array(s.projections.map((p) => p.name), 'text')}::text[], ${sql.array(s.projections.map((p) => p.streamTypes.join(',')), 'text')}::text[]) AS p(name, types)
        LEFT JOIN event_projections ep ON ep.name = p.name
        LEFT JOIN event_streams st ON st.stream_type = ANY(string_to_array(p.types, ','))
        LEFT JOIN projection_checkpoints c ON c.projection = p.name AND c.generation = coalesce(ep.generation, 1) AND c.stream_id = st.stream_id
        GROUP BY p.name`);
      projectionLag.reset();
      projectionLagSeconds.reset();
      for (const r of rows) {
        projectionLag.set({ projection: r.projection }, r.lag);
        projectionLagSeconds.set({ projection: r.projection }, r.oldest ? Math.max(0, (now - Date.parse(r.oldest)) / 1000) : 0);
      }
    }),
    guard('outbox', async () => {
      const r = await s.pool.one(sql.type(OutboxRow)`SELECT count(*) AS n, min(created_at) AS oldest FROM event_outbox`);
      outboxBacklog.set(r.n);
      outboxOldest.set(r.oldest ? Math.max(0, (now - Date.parse(r.oldest)) / 1000) : 0);
    }),
    guard('failures', async () => {
      openFailures.set(await s.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*) AS n FROM event_processing_failures WHERE status <> 'resolved'`));
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

/** Counts one consumer's run inside a batch job (its share of the job, timed as the whole batch). */
export function countConsumerRun(consumer: string, kind: 'handler' | 'projection', ok: boolean, seconds: number): void {
  jobDuration.observe({ consumer, kind }, seconds);
  (ok ? jobsProcessed : jobsFailed).inc({ consumer, kind });
}

/** Wraps one job attempt: duration histogram plus processed/failed counters. */
export async function instrumentJob<T>(consumer: string, kind: 'handler' | 'projection', run: () => Promise<T>): Promise<T> {
  const end = jobDuration.startTimer({ consumer, kind });
  try {
    const result = await run();
    jobsProcessed.inc({ consumer, kind });
    return result;
  } catch (error) {
    jobsFailed.inc({ consumer, kind });
    throw error;
  } finally {
    end();
  }
}
