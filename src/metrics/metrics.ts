import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

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

export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'failed', 'completed'] as const;

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

export const infrastructureUp = new Gauge({
  name: 'hdt_infrastructure_up',
  help: "1 while this process reaches the service, 0 while it waits for it (an outage: work is delayed, not failed)",
  labelNames: ['service'] as const,
  registers: [registry],
});
infrastructureUp.set({ service: 'postgres' }, 1);
infrastructureUp.set({ service: 'redis' }, 1);

export const infrastructureFaults = new Counter({
  name: 'hdt_infrastructure_faults_total',
  help: 'Jobs delayed and requests answered 503 because Postgres or Redis was unavailable (no attempt used, no failure recorded), by service',
  labelNames: ['service'] as const,
  registers: [registry],
});

export const replayRuns = new Counter({
  name: 'hdt_replay_runs_total',
  help: 'Projection rebuilds a replay process finished (completed) or gave up on (failed), by projection',
  labelNames: ['projection', 'outcome'] as const,
  registers: [registry],
});

export const replayEvents = new Counter({
  name: 'hdt_replay_events_total',
  help: 'Events this replay process applied to rebuilt read models (a resumed rebuild counts only what it ran after resuming), by projection',
  labelNames: ['projection'] as const,
  registers: [registry],
});

export const streamClients = new Gauge({
  name: 'hdt_stream_clients',
  help: 'Clients connected to the live event stream (GET /api/events/stream) of this web process',
  registers: [registry],
});

export const streamClientsDropped = new Counter({
  name: 'hdt_stream_clients_dropped_total',
  help: 'Live-stream clients disconnected because they read slower than events arrived (their buffer passed STREAM_CLIENT_BUFFER_BYTES)',
  registers: [registry],
});
