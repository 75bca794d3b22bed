import type { Queue } from 'bullmq';
import { sql, type DatabasePool } from 'slonik';
import { batchJobId, chunk, jobOptions, policyOf, type ConsumerRoute, type HandlerJobData, type ProjectionJobData, type RetryPolicy } from './queues.js';

/** What the fan-out needs to know of an event: its id, stream, type and outbox key. */
export interface OutboxEntry {
  position: number;
  eventId: string;
  streamId: string;
  eventType: string;
}

/**
 * Turns committed events into BullMQ jobs: per handler, one job per batch of events it handles; per
 * projection, one job per batch of streams it should catch up. Then removes the outbox rows.
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


  /** Enqueues the jobs for these events. Throws if Redis does not take them (the outbox keeps the rows). */
  async enqueue(entries: readonly OutboxEntry[]): Promise<number> {
    const handlerJobs: { name: string; data: HandlerJobData; opts: ReturnType<typeof jobOptions> }[] = [];
    const projectionJobs: { name: string; data: ProjectionJobData; opts: ReturnType<typeof jobOptions> }[] = [];
    for (const route of this.routes) {
      const mine = entries.filter((e) => route.handles(e.eventType));
      if (mine.length === 0) continue;
      const opts = jobOptions(policyOf(route, this.defaults));
      if (route.kind === 'handler') {
        for (const part of chunk(mine, this.batchSize)) {
          const eventIds = part.map((e) => e.eventId);
          handlerJobs.push({ name: route.name, data: { consumer: route.name, eventIds }, opts: { ...opts, jobId: batchJobId(route.name, eventIds) } });
        }
      } else {
        const streams = [...new Set(mine.map((e) => e.streamId))].sort();
        for (const part of chunk(streams, this.batchSize)) {
          // Keyed by the events, not the streams: later events of the same streams need a new job.
          const inPart = new Set(part);
          const ids = mine.filter((e) => inPart.has(e.streamId)).map((e) => e.eventId);
          projectionJobs.push({ name: route.name, data: { consumer: route.name, streams: part }, opts: { ...opts, jobId: batchJobId(route.name, ids) } });
        }
      }
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
