import { Worker, type Job } from 'bullmq';
import { OutboxRelay } from '../eventBus/OutboxRelay.js';
import { isBatchJob, QUEUE_NAMES, type HandlerBatchJobData, type HandlerJobData, type ProjectionBatchJobData, type ProjectionJobData } from '../eventBus/queues.js';
import { HandlerRunner } from '../handlers/HandlerRunner.js';
import { ProjectionRunner } from '../projections/ProjectionRunner.js';
import { BatchJobRunner } from './batchJobs.js';
import { JobFailure, poisonFailure } from './JobFailure.js';
import type { Container } from './container.js';
import { instrumentJob } from './metrics.js';
import { workerConnectionOptions } from './redis.js';

export type WorkerRole = 'handlers' | 'projections' | 'relay';

export interface WorkerHost {
  handlerRunner: HandlerRunner;
  projectionRunner: ProjectionRunner;
  relay: OutboxRelay | null;
  workers: Worker[];
  /** Stops taking jobs, lets in-flight ones finish within the grace period, then closes. */
  close(graceMs?: number): Promise<{ timedOut: boolean }>;
}

export { JobFailure } from './JobFailure.js';

/** Starts the BullMQ workers (and the relay) for the requested roles in this process. */
export async function startWorkerHost(c: Container, roles: readonly WorkerRole[]): Promise<WorkerHost> {
  const { config, logger } = c;
  const handlerRunner = new HandlerRunner({
    pool: c.pool,
    store: c.store,
    publisher: c.publisher,
    redis: c.cacheRedis(),
    logger,
    upcast: c.upcast,
    settings: {
      webhookUrl: config.ALERT_WEBHOOK_URL,
      webhookSecret: config.ALERT_WEBHOOK_SECRET,
      webhookTimeoutMs: config.ALERT_WEBHOOK_TIMEOUT_MS,
      cachePrefix: `${config.QUEUE_PREFIX}:cache:`,
      cacheTtlSeconds: config.CACHE_TTL_SECONDS,
    },
  });
  const projectionRunner = new ProjectionRunner(c.pool, c.upcast);
  await projectionRunner.register(c.projections);
  const workers: Worker[] = [];
  const common = {
    connection: workerConnectionOptions(config.REDIS_URL),
    prefix: config.QUEUE_PREFIX,
    concurrency: config.WORKER_CONCURRENCY,
    lockDuration: config.JOB_LOCK_MS,
    stalledInterval: Math.max(1000, Math.floor(config.JOB_LOCK_MS / 2)),
    maxStalledCount: 1,
  };

  const isFinal = (job: Job) => job.finishedOn != null || job.attemptsMade >= (job.opts.attempts ?? 1);

  const batches = new BatchJobRunner(c, handlerRunner, projectionRunner, roles.includes('handlers') && roles.includes('projections'));
  // A consumer's own job may continue from attempts spent in the batch job it was handed over from.
  const attemptsOf = (job: Job<{ attemptOffset?: number }>) => job.attemptsMade + (isBatchJob(job.data) ? 0 : job.data.attemptOffset ?? 0);
  const recordFailure = (job: Job, err: Error, kind: 'handler' | 'projection', parts: { consumer: string; keys: string[] }[]) => {
    // Also reached for stalled-limit failures, which never pass through the processor.
    void (async () => {
      for (const p of parts) await batches.recordFinal(kind, p.consumer, p.keys, err, attemptsOf(job), job.id);
    })().catch((e: Error) => logger.error({ err: e.message, jobId: job.id }, 'could not record a processing failure'));
  };

  if (roles.includes('handlers')) {
    const byName = new Map(c.handlers.map((h) => [h.name, h]));
    const worker = new Worker<HandlerJobData | HandlerBatchJobData>(
      QUEUE_NAMES.handlers,
      async (job) => {
        const data = job.data;
        if (isBatchJob(data)) return batches.runHandlers(job as Job<HandlerBatchJobData>);
        return instrumentJob(data.consumer, 'handler', async () => {
          const handler = byName.get(data.consumer);
          if (!handler) throw new Error(`unknown handler ${data.consumer}`);
          const result = await handlerRunner.run(handler, data.eventIds, { retryOf: data.retryOf });
          if (result.failed.length) {
            // Later attempts only retry what failed: the rest already took effect.
            await job.updateData({ ...data, eventIds: result.failed.map((f) => f.eventId) });
            const first = result.failed[0]!;
            throw new JobFailure(`${result.failed.length} of ${data.eventIds.length} events failed in ${handler.name}: ${first.error.message}`, first.error.stack);
          }
          return { processed: result.processed, skipped: result.skipped };
        });
      },
      common,
    );
    worker.on('failed', (job, err) => {
      if (!job || !isFinal(job)) return;
      const d = job.data;
      recordFailure(job, err, 'handler', isBatchJob(d) ? d.consumers.map((consumer) => ({ consumer, keys: d.eventIds })) : [{ consumer: d.consumer, keys: d.eventIds }]);
    });
    workers.push(worker);
  }

  if (roles.includes('projections')) {
    const byName = new Map(c.projections.map((p) => [p.name, p]));
    const worker = new Worker<ProjectionJobData | ProjectionBatchJobData>(
      QUEUE_NAMES.projections,
      async (job) => {
        const data = job.data;
        if (isBatchJob(data)) return batches.runProjections(job as Job<ProjectionBatchJobData>);
        return instrumentJob(data.consumer, 'projection', async () => {
          const projection = byName.get(data.consumer);
          if (!projection) throw new Error(`unknown projection ${data.consumer}`);
          const result = await projectionRunner.catchUp(projection, data.streams, { retryOf: data.retryOf });
          if (result.poisoned.length) {
            await job.updateData({ ...data, streams: result.poisoned.map((p) => p.streamId) });
            throw poisonFailure(projection.name, result.poisoned[0]!);
          }
          return { applied: result.applied, streams: result.streams, parkedSkipped: result.parkedSkipped.length };
        });
      },
      common,
    );
    worker.on('failed', (job, err) => {
      if (!job || !isFinal(job)) return;
      const d = job.data;
      recordFailure(job, err, 'projection', isBatchJob(d) ? Object.entries(d.streams).map(([consumer, keys]) => ({ consumer, keys })) : [{ consumer: d.consumer, keys: d.streams }]);
    });
    workers.push(worker);
  }

  for (const w of workers) w.on('error', (err) => logger.warn({ err: err.message, queue: w.name }, 'worker connection error'));

  let relay: OutboxRelay | null = null;
  if (roles.includes('relay')) {
    relay = new OutboxRelay(config.DATABASE_URL, c.appendPool, c.publisher, logger, { batchSize: config.RELAY_BATCH_SIZE, pollMs: config.RELAY_POLL_MS });
    relay.start();
  }

  return {
    handlerRunner,
    projectionRunner,
    relay,
    workers,
    async close(graceMs = config.SHUTDOWN_GRACE_MS) {
      await relay?.stop();
      let timedOut = false;
      const graceful = Promise.all(workers.map((w) => w.close()));
      const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
      if ((await Promise.race([graceful, timer])) === 'timeout') {
        timedOut = true;
        logger.warn({ graceMs }, 'in-flight jobs did not finish within the grace period; they will be retried by another worker');
        await Promise.all(workers.map((w) => w.close(true)));
      }
      return { timedOut };
    },
  };
}
