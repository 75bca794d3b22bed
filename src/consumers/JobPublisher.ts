import type { JobsOptions } from 'bullmq';
import { sql, type DatabasePool } from 'slonik';
import type { OutboxEntry, Publisher } from '../eventBus/publisher.js';
import { isTracingEnabled, linkToEventTraces, MAX_LINKS, SpanKind, withSpan } from '../tracing.js';
import { BATCH_JOB_NAME, jobOptions, SHARED_QUEUE, type HandlerJobData, type ProjectionJobData, type RetryPolicy } from './jobs.js';
import { convertOutbox, markDueNow, staleOutboxEntries, type OwedRow } from './owedWork.js';
import type { ConsumerQueues } from './queues.js';

export const OUTBOX_CHANNEL = 'hdt_outbox';

export interface PublisherOptions {
  /** Events one batch job covers at most (JOB_BATCH_SIZE). */
  batchSize: number;
  /** OWED_REDELIVER_AFTER_MS: when the reconciler first checks that a batch's job ran. */
  redeliverAfterMs: number;
  enqueueTimeoutMs?: number;
}

/**
 * Turns committed events into owed work and jobs: first, in one statement, the outbox rows become
 * owed rows for every registered consumer that handles them (the registry decides, not this
 * process); then one job per batch is enqueued on each shared queue. If Redis does not take the jobs,
 * the owed rows are marked due and the reconciler delivers them once it can.
 */
export class JobPublisher implements Publisher {
  // After Redis refused jobs, publishing pauses for a moment (doubling, at most 5 s) and leaves the
  // outbox rows alone: the relay then publishes the backlog in large batches once Redis answers,
  // instead of every producer call turning its events into owed rows to be redelivered one by one.
  private blockedUntil = 0;
  private blockMs = 0;

  constructor(
    private readonly pool: DatabasePool,
    private readonly queues: ConsumerQueues,
    private readonly defaults: RetryPolicy,
    private readonly options: PublisherOptions,
  ) {}

  async publish(entries: readonly OutboxEntry[], options: { done?: readonly string[] } = {}): Promise<void> {
    if (entries.length === 0) return;
    this.checkRedisRecentlyFailed();
    const { owed } = await convertOutbox(this.pool, {
      entries,
      batchSize: this.options.batchSize,
      dueMs: this.options.redeliverAfterMs,
      done: options.done,
    });
    await this.enqueueOwed(owed);
  }

  /** The relay's sweep: outbox rows older than `minAgeMs` (their producer did not publish them). */
  async sweep(limit: number, minAgeMs: number): Promise<{ moved: number; more: boolean }> {
    this.checkRedisRecentlyFailed();
    const entries = await staleOutboxEntries(this.pool, limit, minAgeMs);
    if (entries.length === 0) return { moved: 0, more: false };
    // Rows of many traces: the sweep is a root span linked to them (README, Tracing).
    return withSpan('relay sweep', { kind: SpanKind.PRODUCER, root: true, attributes: { 'hdt.events': entries.length } }, async (span) => {
      if (span) linkToEventTraces(span, await traceContextsOf(this.pool, entries));
      const { moved, owed } = await convertOutbox(this.pool, { entries, batchSize: this.options.batchSize, dueMs: this.options.redeliverAfterMs });
      await this.enqueueOwed(owed);
      // A full page means more may be waiting (even if another relay took some of this one).
      return { moved, more: entries.length === limit };
    });
  }

  async wakeRelays(): Promise<void> {
    await this.pool.query(sql.unsafe`SELECT pg_notify(${OUTBOX_CHANNEL}, '')`);
  }

  private async enqueueOwed(owed: readonly OwedRow[]): Promise<void> {
    if (owed.length === 0) return;
    const { handlerJobs, projectionJobs } = jobsOf(owed, jobOptions(this.defaults));
    try {
      await withSpan('enqueue', { kind: SpanKind.PRODUCER, attributes: isTracingEnabled() ? { 'hdt.job_ids': [...handlerJobs, ...projectionJobs].map((j) => j.opts.jobId!) } : undefined }, () => withTimeout(
        Promise.all([
          handlerJobs.length ? this.queues.handlers.addBulk(handlerJobs) : null,
          projectionJobs.length ? this.queues.projections.addBulk(projectionJobs) : null,
        ]),
        this.options.enqueueTimeoutMs ?? 3000,
      ));
      this.blockMs = 0;
    } catch (error) {
      this.blockMs = Math.min(5000, Math.max(500, this.blockMs * 2));
      this.blockedUntil = Date.now() + this.blockMs;
      // The owed rows are the record; ask the reconciler to deliver them as soon as Redis answers.
      await markDueNow(this.pool, [...new Set(owed.map((o) => o.job_key))]).catch(() => {});
      throw error;
    }
  }

  private checkRedisRecentlyFailed(): void {
    if (Date.now() < this.blockedUntil) throw new Error('Redis refused jobs moments ago; these events stay in the outbox for the relay');
  }
}

/** One shared job per batch and queue: all the batch's handlers in one, all its projections in the other. */
export function jobsOf(owed: readonly OwedRow[], opts: JobsOptions) {
  const byKey = new Map<string, { handlers: OwedRow[]; projections: OwedRow[] }>();
  for (const o of owed) {
    const g = byKey.get(o.job_key) ?? { handlers: [], projections: [] };
    (o.kind === 'handler' ? g.handlers : g.projections).push(o);
    byKey.set(o.job_key, g);
  }
  const handlerJobs: { name: string; data: HandlerJobData; opts: JobsOptions }[] = [];
  const projectionJobs: { name: string; data: ProjectionJobData; opts: JobsOptions }[] = [];
  for (const [key, g] of byKey) {
    if (g.handlers.length) {
      const ids = new Set<string>();
      for (const h of g.handlers) for (const id of h.event_ids) ids.add(id);
      handlerJobs.push({ name: BATCH_JOB_NAME, data: { consumers: g.handlers.map((h) => h.consumer), eventIds: [...ids], owed: key }, opts: { ...opts, jobId: `${SHARED_QUEUE.handler}.${key}` } });
    }
    if (g.projections.length) {
      const streams: Record<string, string[]> = {};
      for (const p of g.projections) streams[p.consumer] = p.streams;
      projectionJobs.push({ name: BATCH_JOB_NAME, data: { streams, owed: key }, opts: { ...opts, jobId: `${SHARED_QUEUE.projection}.${key}` } });
    }
  }
  return { handlerJobs, projectionJobs };
}

/** The distinct trace contexts of these events (only read when tracing is on). */
async function traceContextsOf(pool: DatabasePool, entries: readonly OutboxEntry[]): Promise<{ id: string; metadata: Record<string, unknown> }[]> {
  return (await pool.any(sql.unsafe`
    SELECT DISTINCT ON (metadata->>'traceparent') id::text AS id, jsonb_build_object('traceparent', metadata->>'traceparent', 'tracestate', metadata->>'tracestate') AS metadata
    FROM event_store WHERE id = ANY(${sql.array(entries.map((e) => e.eventId), 'uuid')}) AND metadata ? 'traceparent'
    LIMIT ${MAX_LINKS}`)) as { id: string; metadata: Record<string, unknown> }[];
}

/** A producer must not hang on a Redis that is down or reconnecting: the owed rows cover it. */
async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Redis did not accept the jobs within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
