import { createHash } from 'node:crypto';
import type { Job } from 'bullmq';
import {
  handOverJobOptions,
  policyOf,
  type HandlerBatchJobData,
  type HandlerJobData,
  type ProjectionBatchJobData,
  type ProjectionJobData,
} from '../eventBus/queues.js';
import type { EventHandler } from '../handlers/Handler.js';
import type { HandlerBatchResult, HandlerRunner } from '../handlers/HandlerRunner.js';
import type { Projection } from '../projections/Projection.js';
import type { CatchUpResult, ProjectionRunner } from '../projections/ProjectionRunner.js';
import type { OutboxEntry } from '../eventBus/JobPublisher.js';
import type { Container } from './container.js';
import { poisonFailure } from './JobFailure.js';
import { countConsumerRun } from './metrics.js';

/** Levels of emitted-by-emitted events a batch job follows itself before publishing the rest. */
const MAX_INLINE_DEPTH = 3;

/** What one consumer left undone in a batch job; it becomes that consumer's own job. */
interface Leftover {
  consumer: string;
  /** Event ids (handlers) or stream ids (projections). */
  keys: string[];
  error: Error;
}

/**
 * Runs batch jobs (see `HandlerBatchJobData`): every consumer of the batch, concurrently, each in its
 * own transaction and with its own exactly-once guard (ledger or checkpoints). A consumer whose first
 * attempt fails is handed over to a job of its own with the remaining attempts of its retry policy, so
 * one failing handler neither holds back nor re-runs the others.
 */
export class BatchJobRunner {
  private readonly handlers: Map<string, EventHandler>;
  private readonly projections: Map<string, Projection<any>>;

  constructor(
    private readonly c: Container,
    private readonly handlerRunner: HandlerRunner,
    private readonly projectionRunner: ProjectionRunner,
    /** This process runs projections too: events emitted by handlers are processed in the same job. */
    private readonly inline = false,
  ) {
    this.handlers = new Map(c.handlers.map((h) => [h.name, h]));
    this.projections = new Map(c.projections.map((p) => [p.name, p]));
  }

  async runHandlers(job: Job<HandlerBatchJobData>): Promise<{ consumers: number; handedOver: number }> {
    const t0 = performance.now();
    const events = await this.handlerRunner.loadEvents(job.data.eventIds);
    const known = job.data.consumers.flatMap((name) => this.handlers.get(name) ?? []);
    const leftovers: Leftover[] = job.data.consumers
      .filter((name) => !this.handlers.has(name))
      .map((name) => ({ consumer: name, keys: job.data.eventIds, error: new Error(`unknown handler ${name}`) }));
    let results: Map<string, HandlerBatchResult>;
    const emitted: OutboxEntry[] = [];
    try {
      results = await this.handlerRunner.runMany(known, events, this.inline ? { onEmitted: (e) => void emitted.push(...e) } : {});
    } catch (error) {
      // Not a per-event failure (runMany records those): e.g. the database went away. Every event is owed.
      results = new Map(known.map((h) => [h.name, { processed: 0, skipped: 0, failed: events.filter((e) => (h.handledTypes as readonly string[]).includes(e.type)).map((e) => ({ eventId: e.id, error: asError(error) })) }]));
    }
    const owed = leftovers.filter((l) => l.keys.length > 0);
    for (const l of owed) await this.handOver(job, 'handler', l);
    const handedOver = owed.length + (await this.settleHandlers(job, known, results, t0));
    if (emitted.length) await this.followEmitted(job, emitted);
    return { consumers: job.data.consumers.length, handedOver };
  }

  /**
   * Events the handlers emitted (alerts) are processed right here, by every handler and projection of
   * theirs, instead of becoming two more jobs: lower latency and less per-job work. Their outbox rows
   * go only once that is done; if this process dies first, the relay delivers them as usual. Events
   * emitted in turn are followed a few levels deep, then published.
   */
  private async followEmitted(job: Job, entries: OutboxEntry[], depth = 0): Promise<void> {
    if (depth >= MAX_INLINE_DEPTH) return this.publishEmitted(entries);
    try {
      const t0 = performance.now();
      const handlers = this.c.handlers.filter((h) => entries.some((e) => (h.handledTypes as readonly string[]).includes(e.eventType)));
      const work = this.c.projections
        .map((projection) => ({ projection, streams: [...new Set(entries.filter((e) => projection.handles(e.eventType)).map((e) => e.streamId))] }))
        .filter((w) => w.streams.length > 0);
      const more: OutboxEntry[] = [];
      const events = handlers.length ? await this.handlerRunner.loadEvents(entries.map((e) => e.eventId)) : [];
      const [handled, projected] = await Promise.all([
        handlers.length ? this.handlerRunner.runMany(handlers, events, { onEmitted: (e) => void more.push(...e) }) : new Map<string, HandlerBatchResult>(),
        work.length ? this.projectionRunner.catchUpMany(work) : new Map<string, CatchUpResult | Error>(),
      ]);
      await this.settleHandlers(job, handlers, handled, t0);
      await this.settleProjections(job, work, projected, t0);
      await this.c.publisher.forget(entries);
      if (more.length) await this.followEmitted(job, more, depth + 1);
    } catch (error) {
      this.c.logger.warn({ err: asError(error).message, jobId: job.id }, 'processing emitted events in the batch job failed; publishing them instead');
      await this.publishEmitted(entries);
    }
  }

  private async publishEmitted(entries: OutboxEntry[]): Promise<void> {
    await this.c.publisher.publish(entries).catch((err: Error) => this.c.logger.warn({ err: err.message }, 'enqueue of emitted events failed; the relay will deliver them'));
  }

  /** Counts each handler's run and hands over what it failed; returns how many were handed over. */
  private async settleHandlers(job: Job, handlers: readonly EventHandler[], results: Map<string, HandlerBatchResult>, t0: number): Promise<number> {
    const seconds = (performance.now() - t0) / 1000;
    let handedOver = 0;
    for (const h of handlers) {
      const r = results.get(h.name);
      countConsumerRun(h.name, 'handler', !r?.failed.length, seconds);
      if (r?.failed.length) {
        await this.handOver(job, 'handler', { consumer: h.name, keys: r.failed.map((f) => f.eventId), error: r.failed[0]!.error });
        handedOver++;
      }
    }
    return handedOver;
  }

  /** Counts each projection's run and hands over its poisoned streams (or all of them, if it threw). */
  private async settleProjections(job: Job, work: readonly { projection: Projection<any>; streams: readonly string[] }[], results: Map<string, CatchUpResult | Error>, t0: number): Promise<number> {
    const seconds = (performance.now() - t0) / 1000;
    let handedOver = 0;
    for (const { projection, streams } of work) {
      const r = results.get(projection.name)!;
      const leftover: Leftover | null =
        r instanceof Error
          ? { consumer: projection.name, keys: [...streams], error: r }
          : r.poisoned.length
            ? { consumer: projection.name, keys: r.poisoned.map((p) => p.streamId), error: poisonFailure(projection.name, r.poisoned[0]!) }
            : null;
      countConsumerRun(projection.name, 'projection', leftover === null, seconds);
      if (leftover) {
        await this.handOver(job, 'projection', leftover);
        handedOver++;
      }
    }
    return handedOver;
  }

  async runProjections(job: Job<ProjectionBatchJobData>): Promise<{ consumers: number; handedOver: number }> {
    const t0 = performance.now();
    const entries = Object.entries(job.data.streams);
    const leftovers: Leftover[] = entries.filter(([name]) => !this.projections.has(name)).map(([name, keys]) => ({ consumer: name, keys, error: new Error(`unknown projection ${name}`) }));
    const work = entries.flatMap(([name, streams]) => {
      const projection = this.projections.get(name);
      return projection ? [{ projection, streams }] : [];
    });
    const results = await this.projectionRunner.catchUpMany(work);
    const owed = leftovers.filter((l) => l.keys.length > 0);
    for (const l of owed) await this.handOver(job, 'projection', l);
    const handedOver = owed.length + (await this.settleProjections(job, work, results, t0));
    return { consumers: entries.length, handedOver };
  }

  /**
   * The consumer's own job takes over with its remaining attempts; with none left (attempts = 1) the
   * failure is recorded now. The job id is derived from the batch job and the keys, so a batch job
   * that is itself retried after handing over does not hand over twice.
   */
  private async handOver(job: Job, kind: 'handler' | 'projection', l: Leftover): Promise<void> {
    const route = this.c.routes.find((r) => r.name === l.consumer);
    const policy = policyOf(route, { attempts: this.c.config.JOB_ATTEMPTS, backoffMs: this.c.config.JOB_BACKOFF_MS });
    this.c.logger.warn({ consumer: l.consumer, jobId: job.id, keys: l.keys.length, err: l.error.message }, `${kind} failed in a batch job; handed over to a retry job of its own`);
    if (policy.attempts <= 1 || !route) {
      await this.recordFinal(kind, l.consumer, l.keys, l.error, 1, job.id);
      return;
    }
    const h = createHash('sha1').update(job.id ?? '').update('\n');
    for (const k of l.keys) h.update(k).update('\n');
    const jobId = `${l.consumer}.h-${h.digest('hex').slice(0, 24)}`;
    const opts = { ...handOverJobOptions(policy), jobId };
    if (kind === 'handler') {
      const data: HandlerJobData = { consumer: l.consumer, eventIds: l.keys, attemptOffset: 1 };
      await this.c.queues.handlers.add(l.consumer, data, opts);
    } else {
      const data: ProjectionJobData = { consumer: l.consumer, streams: l.keys, attemptOffset: 1 };
      await this.c.queues.projections.add(l.consumer, data, opts);
    }
  }

  /**
   * A consumer's events are owed for good: record them in `event_processing_failures` (projections
   * also park the streams, so later events wait behind the failed one).
   */
  async recordFinal(kind: 'handler' | 'projection', consumer: string, keys: readonly string[], error: Error, attempts: number, jobId: string | undefined): Promise<void> {
    const item = (eventId: string) => ({ eventId, message: error.message, stack: error.stack });
    if (kind === 'handler') {
      const handler = this.handlers.get(consumer);
      const owed = handler ? await this.handlerRunner.unprocessed(handler, keys) : [];
      await this.c.failures.record(consumer, 'handler', owed.map(item), attempts, jobId);
      this.c.logger.error({ consumer, jobId, events: owed.length, err: error.message }, 'handler job failed for good; recorded in event_processing_failures');
    } else {
      const projection = this.projections.get(consumer);
      const parked = projection ? await this.projectionRunner.parkUnapplied(projection, keys) : [];
      await this.c.failures.record(consumer, 'projection', parked.map((p) => item(p.eventId)), attempts, jobId);
      this.c.logger.error({ consumer, jobId, parked: parked.map((p) => p.streamId), err: error.message }, 'projection job failed for good; streams parked and recorded');
    }
  }
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
