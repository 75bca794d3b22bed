import type { Job } from 'bullmq';
import type { Logger } from 'pino';
import type { DatabasePool } from 'slonik';
import type { OutboxEntry, Publisher } from '../eventBus/publisher.js';
import type { EventHandler } from '../handlers/Handler.js';
import type { HandlerBatchResult, HandlerRunner } from '../handlers/HandlerRunner.js';
import type { SettleSql } from '../db/statements.js';
import { unprocessedEvents } from '../handlers/ledger.js';
import { countConsumerRun, countDeferred } from '../metrics/metrics.js';
import { SpanKind, withSpan } from '../tracing.js';
import { parkUnapplied } from '../projections/checkpoints.js';
import type { Projection } from '../projections/Projection.js';
import type { CatchUpResult, ProjectionRunner } from '../projections/ProjectionRunner.js';
import { resolveFailuresOfJobSql, resolveRetriedRest, resolveRetriedSql, reviveFailuresOfJob, type FailureStore } from './failures.js';
import { JobFailure, poisonFailure } from './JobFailure.js';
import {
  derivedJobId,
  handOverJobOptions,
  isHandlerJob,
  jobOptions,
  ownQueueName,
  SHARED_QUEUE,
  type ConsumerJobData,
  type ConsumerKind,
  type HandlerJobData,
  type ProjectionJobData,
  type RetryPolicy,
} from './jobs.js';
import { completeOwed, completeOwedSql, repointOwed } from './owedWork.js';
import type { ConsumerQueues } from './queues.js';

/** Levels of emitted-by-emitted events a job follows itself before publishing the rest. */
const MAX_INLINE_DEPTH = 3;

export interface ProcessorDeps {
  pool: DatabasePool;
  logger: Logger;
  handlers: readonly EventHandler[];
  projections: readonly Projection<any>[];
  handlerRunner: HandlerRunner;
  projectionRunner: ProjectionRunner;
  queues: ConsumerQueues;
  failures: FailureStore;
  publisher: Publisher;
  policyOf(consumer: string): RetryPolicy;
  /** This process runs handlers and projections: events emitted by handlers are processed in the same job. */
  inline: boolean;
}

/**
 * Runs every job of the pipeline. A job names consumers; each one this process runs takes effect in
 * its own (or a shared) transaction that also settles its owed row, so effect and bookkeeping commit
 * together. A consumer this process does not run is left for one that does: its work moves to that
 * consumer's own queue, and nothing is recorded as done or failed. On a shared queue a failing
 * consumer is handed over to a job of its own (remaining attempts of its retry policy); on its own
 * queue the job itself fails and BullMQ retries it.
 */
export class ConsumerJobProcessor {
  private readonly handlers: Map<string, EventHandler>;
  private readonly projections: Map<string, Projection<any>>;

  constructor(private readonly d: ProcessorDeps) {
    this.handlers = new Map(d.handlers.map((h) => [h.name, h]));
    this.projections = new Map(d.projections.map((p) => [p.name, p]));
  }

  runs(consumer: string): boolean {
    return this.handlers.has(consumer) || this.projections.has(consumer);
  }

  /** A job covers events of many traces: its span is a root LINKED to them; each consumer's run is a span in each trace (README, Tracing). */
  async handlerJob(job: Job<HandlerJobData>): Promise<{ consumers: number; handedOver: number; forwarded: number }> {
    return withSpan(`job ${job.queueName}`, jobSpanOptions(job), () => this.runHandlerJob(job));
  }

  async projectionJob(job: Job<ProjectionJobData>): Promise<{ consumers: number; handedOver: number; forwarded: number }> {
    return withSpan(`job ${job.queueName}`, jobSpanOptions(job), () => this.runProjectionJob(job));
  }

  private async runHandlerJob(job: Job<HandlerJobData>): Promise<{ consumers: number; handedOver: number; forwarded: number }> {
    const t0 = performance.now();
    const data = job.data;
    const own = job.queueName !== SHARED_QUEUE.handler;
    const mine = data.consumers.flatMap((name) => this.handlers.get(name) ?? []);
    const notMine = data.consumers.filter((name) => !this.handlers.has(name));
    for (const name of notMine) await this.forward(job, 'handler', name, data.eventIds);
    if (mine.length === 0) return { consumers: data.consumers.length, handedOver: 0, forwarded: notMine.length };

    const revivedJob = await this.revived(job, own, mine.map((h) => h.name));
    const { events, unreadable } = await this.d.handlerRunner.load(data.eventIds);
    const emitted: OutboxEntry[] = [];
    // A row its upcaster rejects fails for the handlers of its type only, and only that event: the
    // others of the batch take effect (and settle nothing until the failed one is resolved).
    const blocked = (h: EventHandler) => unreadable.filter((u) => (h.handledTypes as readonly string[]).includes(u.eventType));
    const results = await this.d.handlerRunner.runMany(mine, events, {
      settle: this.settler(data, unreadable.length ? (name) => blocked(this.handlers.get(name)!).length === 0 : undefined, revivedJob),
      onEmitted: this.d.inline ? (e) => void emitted.push(...e) : undefined,
    });
    for (const h of mine) {
      const bad = blocked(h);
      if (!bad.length) continue;
      const r = results.get(h.name) ?? { processed: 0, skipped: 0, failed: [] };
      r.failed.push(...bad.map((u) => ({ eventId: u.eventId, error: new JobFailure(`event ${u.eventId} (${u.eventType}, stream ${u.streamId} v${u.version}) cannot be read: ${u.error.message}`, u.error.stack) })));
      results.set(h.name, r);
    }
    const seconds = (performance.now() - t0) / 1000;
    let handedOver = 0;
    const failed: { handler: EventHandler; result: HandlerBatchResult }[] = [];
    for (const h of mine) {
      const r = results.get(h.name);
      countConsumerRun(h.name, 'handler', !r?.failed.length, seconds);
      if (r?.failed.length) failed.push({ handler: h, result: r });
    }
    if (emitted.length) await this.followEmitted(emitted);
    if (own && failed.length) {
      // Later attempts only retry what failed: the rest already took effect.
      const { handler, result } = failed[0]!;
      await job.updateData({ ...data, eventIds: result.failed.map((f) => f.eventId) });
      const first = result.failed[0]!;
      throw new JobFailure(`${result.failed.length} of ${data.eventIds.length} events failed in ${handler.name}: ${first.error.message}`, first.error.stack);
    }
    for (const { handler, result } of failed) {
      await this.handOver(job, 'handler', handler.name, result.failed.map((f) => f.eventId), result.failed[0]!.error);
      handedOver++;
    }
    return { consumers: data.consumers.length, handedOver, forwarded: notMine.length };
  }

  private async runProjectionJob(job: Job<ProjectionJobData>): Promise<{ consumers: number; handedOver: number; forwarded: number }> {
    const t0 = performance.now();
    const data = job.data;
    const own = job.queueName !== SHARED_QUEUE.projection;
    const entries = Object.entries(data.streams);
    const notMine = entries.filter(([name]) => !this.projections.has(name));
    for (const [name, streams] of notMine) await this.forward(job, 'projection', name, streams);
    const work = entries.flatMap(([name, streams]) => {
      const projection = this.projections.get(name);
      return projection ? [{ projection, streams }] : [];
    });
    if (work.length === 0) return { consumers: entries.length, handedOver: 0, forwarded: notMine.length };

    const revivedJob = await this.revived(job, own, work.map((w) => w.projection.name));
    const results = await this.d.projectionRunner.catchUpMany(work, { settle: this.settler(data, undefined, revivedJob), skipLocked: true });
    const seconds = (performance.now() - t0) / 1000;
    await this.followUpDeferred(job, results);
    const leftovers: { consumer: string; keys: string[]; error: Error }[] = [];
    for (const { projection, streams } of work) {
      const r = results.get(projection.name)!;
      const leftover =
        r instanceof Error
          ? { consumer: projection.name, keys: [...streams], error: r }
          : r.poisoned.length
            ? { consumer: projection.name, keys: [...r.poisoned.map((p) => p.streamId), ...r.deferred], error: poisonFailure(projection.name, r.poisoned[0]!) }
            : null;
      countConsumerRun(projection.name, 'projection', leftover === null, seconds);
      if (leftover) leftovers.push(leftover);
    }
    if (own && leftovers.length) {
      const l = leftovers[0]!;
      await job.updateData({ ...data, streams: { [l.consumer]: l.keys } });
      throw l.error;
    }
    for (const l of leftovers) await this.handOver(job, 'projection', l.consumer, l.keys, l.error);
    return { consumers: entries.length, handedOver: leftovers.length, forwarded: notMine.length };
  }

  /**
   * Streams another job held (their checkpoint or a document) were not waited for: a follow-up job on
   * the same queue catches them up a moment later and settles the owed row. If this process dies first,
   * the owed row is still there and the reconciler redelivers it.
   */
  private async followUpDeferred(job: Job<ProjectionJobData>, results: ReadonlyMap<string, CatchUpResult | Error>): Promise<void> {
    const streams: Record<string, string[]> = {};
    // A projection that also has a poisoned stream hands its deferred streams over with it (one job, one owed row).
    for (const [name, r] of results) if (!(r instanceof Error) && r.deferred.length && r.poisoned.length === 0) streams[name] = r.deferred;
    const names = Object.keys(streams);
    if (names.length === 0) return;
    const deferrals = (job.data.deferrals ?? 0) + 1;
    countDeferred(names.reduce((n, k) => n + streams[k]!.length, 0));
    const base = Math.min(1000, 10 * 2 ** Math.min(deferrals, 7));
    const policy = this.d.policyOf(names[0]!);
    // A deferral is not an attempt: the follow-up keeps the attempts this job has left (a consumer's own
    // job may be a hand-over with fewer than its policy's), and counts the ones spent before it.
    const base0 = jobOptions(policy);
    const attempts = Math.max(1, (job.opts.attempts ?? base0.attempts ?? 1) - job.attemptsMade);
    const data: ProjectionJobData = { ...job.data, streams, deferrals, attemptOffset: (job.data.attemptOffset ?? 0) + job.attemptsMade };
    const jobId = derivedJobId('deferred', [job.queueName, job.id, job.attemptsMade, deferrals, ...names, ...names.flatMap((n) => streams[n]!)]);
    await this.d.queues.byName(job.queueName).add(job.name, data, { ...base0, backoff: job.opts.backoff ?? base0.backoff, attempts, jobId, delay: Math.round(base * (0.5 + Math.random())) });
  }

  /**
   * A job failed for good. On a consumer's own queue its events are recorded in
   * `event_processing_failures` (projections also park the streams), in the same transaction that
   * settles its owed row. A shared job records nothing: its consumers' owed rows stay, and the
   * reconciler redelivers them to each consumer's own queue.
   */
  async finalFailure(job: Job<ConsumerJobData>, error: Error): Promise<void> {
    const data = job.data;
    const shared = job.queueName === SHARED_QUEUE.handler || job.queueName === SHARED_QUEUE.projection;
    if (shared) {
      this.d.logger.warn({ jobId: job.id, err: error.message }, 'shared job failed for good; its owed work stays and the reconciler redelivers it consumer by consumer');
      return;
    }
    const attempts = job.attemptsMade + (data.attemptOffset ?? 0);
    if (isHandlerJob(data)) {
      for (const name of data.consumers) await this.recordFinal('handler', name, data.eventIds, error, attempts, job.id, data.owed, data.retryOf);
    } else {
      for (const [name, streams] of Object.entries(data.streams)) await this.recordFinal('projection', name, streams, error, attempts, job.id, data.owed, data.retryOf);
    }
  }

  /** Settles, in the effect's transaction, the owed row of the job (and the failure it retries). */
  private settler(data: ConsumerJobData, settles?: (consumer: string) => boolean, revivedJob?: string): SettleSql | undefined {
    const { owed, retryOf } = data;
    if (owed === undefined && retryOf === undefined && revivedJob === undefined) return undefined;
    return (all) => {
      const consumers = settles ? all.filter(settles) : all;
      if (settles && consumers.length === 0) return [];
      return [
        ...(owed !== undefined && consumers.length ? [completeOwedSql(owed, consumers)] : []),
        ...(retryOf !== undefined ? [resolveRetriedSql(retryOf)] : []),
        ...(revivedJob !== undefined ? [resolveFailuresOfJobSql(revivedJob)] : []),
      ];
    };
  }

  /** An own-queue job run again after it failed for good (bull-board's retry): its failure rows are revived, then resolved with its effect. */
  private async revived(job: Job<ConsumerJobData>, own: boolean, consumers: readonly string[]): Promise<string | undefined> {
    if (!own || !job.id || consumers.length === 0) return undefined;
    return (await reviveFailuresOfJob(this.d.pool, job.id, consumers)) > 0 ? job.id : undefined;
  }

  /** Work for a consumer this process does not run: onto that consumer's own queue, for a worker that does. */
  private async forward(job: Job<ConsumerJobData>, kind: ConsumerKind, consumer: string, keys: readonly string[]): Promise<void> {
    const jobId = derivedJobId(`${consumer}.f`, [job.queueName, job.id]);
    await this.addOwn(job.data, kind, consumer, keys, { ...jobOptions(this.d.policyOf(consumer)), jobId }, 0);
    this.d.logger.debug({ consumer, jobId: job.id, to: jobId }, 'work for a consumer this process does not run was left on its own queue');
  }

  /**
   * A consumer failed inside a shared job: its own job takes over with the remaining attempts; with
   * none left (attempts = 1) the failure is recorded now. The id is derived from the job and the keys,
   * so a shared job that is itself retried after handing over does not hand over twice.
   */
  private async handOver(job: Job<ConsumerJobData>, kind: ConsumerKind, consumer: string, keys: string[], error: Error): Promise<void> {
    const policy = this.d.policyOf(consumer);
    this.d.logger.warn({ consumer, jobId: job.id, keys: keys.length, err: error.message }, `${kind} failed in a shared job; handed over to a retry job of its own`);
    if (policy.attempts <= 1) return this.recordFinal(kind, consumer, keys, error, 1, job.id, job.data.owed);
    const jobId = derivedJobId(`${consumer}.h`, [job.id, ...keys]);
    await this.addOwn(job.data, kind, consumer, keys, { ...handOverJobOptions(policy), jobId }, 1);
  }

  private async addOwn(from: ConsumerJobData, kind: ConsumerKind, consumer: string, keys: readonly string[], opts: { jobId: string } & Record<string, unknown>, attemptOffset: number): Promise<void> {
    const base = { owed: from.owed, retryOf: from.retryOf, attemptOffset };
    const data: ConsumerJobData = kind === 'handler' ? { consumers: [consumer], eventIds: [...keys], ...base } : { streams: { [consumer]: [...keys] }, ...base };
    await this.d.queues.own(consumer).add(consumer, data, opts);
    if (from.owed !== undefined) await repointOwed(this.d.pool, consumer, from.owed, ownQueueName(consumer), opts.jobId);
  }

  /**
   * A consumer's events are owed for good: record them (projections also park the streams, so later
   * events wait behind the failed one) and settle the owed row, in one transaction.
   */
  private async recordFinal(kind: ConsumerKind, consumer: string, keys: readonly string[], error: Error, attempts: number, jobId: string | undefined, owed: string | undefined, retryOf?: number | number[]): Promise<void> {
    const item = (eventId: string) => ({ eventId, message: error.message, stack: error.stack });
    if (kind === 'handler') {
      const handler = this.handlers.get(consumer);
      if (!handler) return; // not ours to record: the owed row stays for a worker that runs it
      const events = await this.d.pool.transaction(async (tx) => {
        const ids = await unprocessedEvents(tx, handler, keys);
        await this.d.failures.record(consumer, 'handler', ids.map(item), attempts, jobId, tx);
        await resolveRetriedRest(tx, retryOf);
        if (owed !== undefined) await completeOwed(tx, owed, [consumer]);
        return ids.length;
      });
      this.d.logger.error({ consumer, jobId, events, err: error.message }, 'handler failed for good; recorded in event_processing_failures');
    } else {
      const projection = this.projections.get(consumer);
      if (!projection) return;
      const parked = await this.d.pool.transaction(async (tx) => {
        const rows = await parkUnapplied(tx, projection, keys);
        await this.d.failures.record(consumer, 'projection', rows.map((p) => item(p.eventId)), attempts, jobId, tx);
        await resolveRetriedRest(tx, retryOf);
        if (owed !== undefined) await completeOwed(tx, owed, [consumer]);
        return rows;
      });
      this.d.logger.error({ consumer, jobId, parked: parked.map((p) => p.streamId), err: error.message }, 'projection failed for good; streams parked and recorded');
    }
  }

  /**
   * Events the handlers emitted (alerts) are processed right here by the handlers and projections of
   * this process, instead of becoming more jobs first. Then they are published with those consumers
   * marked done: owed rows and jobs are made only for the registered consumers that did not take
   * effect here (another worker's, or one that failed). If this process dies first, their outbox rows
   * are still there and the relay publishes them to everyone.
   */
  private async followEmitted(entries: OutboxEntry[], depth = 0): Promise<void> {
    if (depth >= MAX_INLINE_DEPTH) return this.publishEmitted(entries);
    try {
      const t0 = performance.now();
      const handlers = this.d.handlers.filter((h) => entries.some((e) => (h.handledTypes as readonly string[]).includes(e.eventType)));
      const work = this.d.projections
        .map((projection) => ({ projection, streams: [...new Set(entries.filter((e) => projection.handles(e.eventType)).map((e) => e.streamId))] }))
        .filter((w) => w.streams.length > 0);
      const more: OutboxEntry[] = [];
      const events = handlers.length ? await this.d.handlerRunner.loadEvents(entries.map((e) => e.eventId)) : [];
      const [handled, projected] = await Promise.all([
        handlers.length ? this.d.handlerRunner.runMany(handlers, events, { onEmitted: (e) => void more.push(...e) }) : new Map<string, HandlerBatchResult>(),
        work.length ? this.d.projectionRunner.catchUpMany(work, { skipLocked: true }) : new Map<string, CatchUpResult | Error>(),
      ]);
      const seconds = (performance.now() - t0) / 1000;
      const done: string[] = [];
      for (const h of handlers) {
        const ok = !handled.get(h.name)?.failed.length;
        countConsumerRun(h.name, 'handler', ok, seconds);
        if (ok) done.push(h.name);
      }
      for (const { projection } of work) {
        const r = projected.get(projection.name);
        const ok = !!r && !(r instanceof Error) && r.poisoned.length === 0 && r.deferred.length === 0;
        countConsumerRun(projection.name, 'projection', ok, seconds);
        if (ok) done.push(projection.name);
      }
      await this.d.publisher.publish(entries, { done });
      if (more.length) await this.followEmitted(more, depth + 1);
    } catch (error) {
      this.d.logger.warn({ err: (error as Error).message }, 'processing emitted events in the job failed; publishing them instead');
      await this.publishEmitted(entries);
    }
  }

  private async publishEmitted(entries: OutboxEntry[]): Promise<void> {
    await this.d.publisher.publish(entries).catch((err: Error) => this.d.logger.warn({ err: err.message }, 'enqueue of emitted events failed; the relay will deliver them'));
  }
}

function jobSpanOptions(job: Job<ConsumerJobData>) {
  return {
    kind: SpanKind.CONSUMER,
    root: true,
    attributes: { 'messaging.system': 'bullmq', 'messaging.destination.name': job.queueName, 'messaging.message.id': job.id ?? '', 'hdt.attempt': job.attemptsMade + 1 },
  };
}
