import type { JobsOptions, Queue } from 'bullmq';
import { sql, type DatabasePool } from 'slonik';
import { BATCH_JOB_NAME, batchJobId, chunk, jobOptions, type ConsumerRoute, type HandlerBatchJobData, type ProjectionBatchJobData, type RetryPolicy } from './queues.js';

/** What the fan-out needs to know of an event: its id, stream, type and outbox key. */
export interface OutboxEntry {
  position: number;
  eventId: string;
  streamId: string;
  eventType: string;
}

/**
 * Turns committed events into BullMQ batch jobs (see `HandlerBatchJobData`), then removes the outbox rows.
 */
export class JobPublisher {
  constructor(
    private readonly pool: DatabasePool,
    private readonly queues: { handlers: Queue; projections: Queue },
    private readonly routes: readonly ConsumerRoute[],
    private readonly defaults: RetryPolicy,
    private readonly batchSize = 100,
    private readonly enqueueTimeoutMs = 3000,
  ) {}

  get consumers(): readonly ConsumerRoute[] {
    return this.routes;
  }

  /**
   * Enqueues the jobs for these events: per chunk of JOB_BATCH_SIZE events, one batch job for all the
   * handlers that handle any of them and one for all the projections. Throws if Redis does not take
   * them (the outbox keeps the rows).
   */
  async enqueue(entries: readonly OutboxEntry[]): Promise<number> {
    const opts = jobOptions(this.defaults);
    const handlers = this.routes.filter((r) => r.kind === 'handler');
    const projections = this.routes.filter((r) => r.kind === 'projection');
    const handlerJobs: { name: string; data: HandlerBatchJobData; opts: JobsOptions }[] = [];
    const projectionJobs: { name: string; data: ProjectionBatchJobData; opts: JobsOptions }[] = [];
    for (const part of chunk(entries, this.batchSize)) {
      const forHandlers = part.filter((e) => handlers.some((h) => h.handles(e.eventType)));
      if (forHandlers.length) {
        const eventIds = forHandlers.map((e) => e.eventId);
        const consumers = handlers.filter((h) => forHandlers.some((e) => h.handles(e.eventType))).map((h) => h.name);
        handlerJobs.push({ name: BATCH_JOB_NAME, data: { batch: true, consumers, eventIds }, opts: { ...opts, jobId: batchJobId('handlers', eventIds) } });
      }
      const streams: Record<string, string[]> = {};
      const ids: string[] = [];
      for (const p of projections) {
        const mine = part.filter((e) => p.handles(e.eventType));
        if (mine.length === 0) continue;
        streams[p.name] = [...new Set(mine.map((e) => e.streamId))].sort();
        for (const e of mine) ids.push(e.eventId);
      }
      // Keyed by the events, not the streams: later events of the same streams need a new job.
      if (ids.length) projectionJobs.push({ name: BATCH_JOB_NAME, data: { batch: true, streams }, opts: { ...opts, jobId: batchJobId('projections', [...new Set(ids)]) } });
    }
    await withTimeout(
      Promise.all([
        handlerJobs.length ? this.queues.handlers.addBulk(handlerJobs) : null,
        projectionJobs.length ? this.queues.projections.addBulk(projectionJobs) : null,
      ]),
      this.enqueueTimeoutMs,
    );
    return handlerJobs.length + projectionJobs.length;
  }

  /**
   * Wakes every outbox relay (LISTEN on the channel) so rows this process could not enqueue are swept
   * now by a relay that can, instead of at its next poll.
   */
  async wakeRelays(): Promise<void> {
    await this.pool.query(sql.unsafe`SELECT pg_notify('hdt_outbox', '')`);
  }

  /** Enqueue, then forget the outbox rows. If Redis refuses, the rows stay for the relay. */
  async publish(entries: readonly OutboxEntry[]): Promise<void> {
    if (entries.length === 0) return;
    await this.enqueue(entries);
    await this.forget(entries);
  }

  /** Removes the outbox rows of events every consumer has been given (enqueued or processed). */
  async forget(entries: readonly OutboxEntry[]): Promise<void> {
    await this.pool.query(sql.unsafe`DELETE FROM event_outbox WHERE global_position = ANY(${sql.array(entries.map((e) => e.position), 'int8')})`);
  }
}

/** A producer must not hang on a Redis that is down or reconnecting: the outbox covers it. */
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
