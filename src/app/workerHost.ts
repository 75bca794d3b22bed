import { Worker, type Job } from 'bullmq';
import { DeliveryRelay } from '../consumers/DeliveryRelay.js';
import { SHARED_QUEUE, ownQueueName, type ConsumerJobData, type HandlerJobData, type ProjectionJobData } from '../consumers/jobs.js';
import { ConsumerJobProcessor } from '../consumers/processor.js';
import { Reconciler } from '../consumers/reconciler.js';
import { heartbeat, HEARTBEAT_MS, registerConsumers } from '../consumers/registry.js';
import { FOLD_INTERVAL_MS, foldCounters, VACUUM_DELTAS_INTERVAL_MS, vacuumCounterDeltas } from '../eventStore/counters.js';
import { HandlerRunner } from '../handlers/HandlerRunner.js';
import { ProjectionRunner } from '../projections/ProjectionRunner.js';
import type { Container } from './container.js';
import { newWorker } from './newWorker.js';
import { delayOnInfrastructureFault, isDelayed, pauseWhileDown, reportWorkerErrors } from './faultTolerance.js';

export type WorkerRole = 'handlers' | 'projections' | 'relay';

export interface WorkerHost {
  handlerRunner: HandlerRunner;
  projectionRunner: ProjectionRunner;
  relay: DeliveryRelay | null;
  reconciler: Reconciler | null;
  workers: Worker[];
  /** Stops taking jobs, lets in-flight ones finish within the grace period, then closes. */
  close(graceMs?: number): Promise<{ timedOut: boolean }>;
}

export { JobFailure } from '../consumers/JobFailure.js';

/**
 * Starts the BullMQ workers (and the relay with its reconciler) for the requested roles: the shared
 * queues, plus each consumer's own queue for the consumers this process runs.
 */
export async function startWorkerHost(c: Container, roles: readonly WorkerRole[]): Promise<WorkerHost> {
  const { config, logger } = c;
  const handlerRunner = new HandlerRunner({
    pool: c.pool,
    store: c.store,
    publisher: c.publisher,
    cache: c.cache(),
    logger,
    upcast: c.upcast,
    settings: {
      webhookUrl: config.ALERT_WEBHOOK_URL,
      webhookSecret: config.ALERT_WEBHOOK_SECRET,
      webhookTimeoutMs: config.ALERT_WEBHOOK_TIMEOUT_MS,
      cachePrefix: c.redis.cachePrefix,
      cacheTtlSeconds: config.CACHE_TTL_SECONDS,
    },
  });
  const projectionRunner = new ProjectionRunner(c.pool, c.upcast);
  const handlers = roles.includes('handlers') ? c.handlers : [];
  const projections = roles.includes('projections') ? c.projections : [];
  await projectionRunner.register(projections);
  const running = [...handlers.map((h) => h.name), ...projections.map((p) => p.name)];
  await registerConsumers(c.pool, c.routes.filter((r) => running.includes(r.name)));
  await heartbeat(c.pool, running);
  const beat = setInterval(() => void heartbeat(c.pool, running).catch((e: Error) => logger.debug({ err: e.message }, 'consumer heartbeat failed')), HEARTBEAT_MS);
  beat.unref();
  // Keeps the append counters' delta table short (monitoring reads fold too; one folder at a time).
  const fold = setInterval(() => void foldCounters(c.pool).catch((e: Error) => logger.debug({ err: e.message }, 'counter fold failed')), FOLD_INTERVAL_MS);
  fold.unref();
  const vacuum = setInterval(() => void vacuumCounterDeltas(c.pool).catch((e: Error) => logger.debug({ err: e.message }, 'counter deltas vacuum failed')), VACUUM_DELTAS_INTERVAL_MS);
  vacuum.unref();

  const processor = new ConsumerJobProcessor({
    pool: c.pool,
    logger,
    handlers,
    projections,
    handlerRunner,
    projectionRunner,
    queues: c.consumerQueues,
    failures: c.failures,
    publisher: c.publisher,
    policyOf: c.policyOf,
    inline: handlers.length > 0 && projections.length > 0,
  });

  const workers: Worker[] = [];
  const common = {
    connection: c.queueStore.workerConnection(config.WORKER_CONCURRENCY),
    concurrency: config.WORKER_CONCURRENCY,
    lockDuration: config.JOB_LOCK_MS,
    stalledInterval: Math.max(1000, Math.floor(config.JOB_LOCK_MS / 2)),
    maxStalledCount: 1,
  };
  const isFinal = (job: Job) => job.finishedOn != null || job.attemptsMade >= (job.opts.attempts ?? 1);
  let closing = false;
  /** Failure bookkeeping is retried through an outage, never dropped (until this process stops). */
  const recordFinal = async (job: Job<ConsumerJobData>, err: Error) => {
    for (;;) {
      try {
        return await processor.finalFailure(job, err);
      } catch (error) {
        if (closing || !c.faults.report(error, 'bookkeeping')) throw error;
        await c.faults.whenUp();
        await new Promise((r) => setTimeout(r, c.faults.nextDelayMs()).unref());
      }
    }
  };
  const start = (queue: string, run: (job: Job<ConsumerJobData>) => Promise<unknown>) => {
    const worker = newWorker<ConsumerJobData>(c.queueStore, queue, delayOnInfrastructureFault(c.faults, run), { ...common, prefix: c.queueStore.queuePrefix(queue) });
    // Also reached for stalled-limit failures, which never pass through the processor.
    worker.on('failed', (job, err) => {
      if (!job || !isFinal(job) || isDelayed(err)) return;
      void recordFinal(job, err).catch((e: Error) => logger.error({ err: e.message, jobId: job.id }, 'could not record a processing failure; the owed row stays and the reconciler redelivers it'));
    });
    reportWorkerErrors(c.faults, worker, queue);
    workers.push(worker);
  };
  pauseWhileDown(c.faults, () => workers, () => closing);
  const runHandlers = (job: Job<ConsumerJobData>) => processor.handlerJob(job as Job<HandlerJobData>);
  const runProjections = (job: Job<ConsumerJobData>) => processor.projectionJob(job as Job<ProjectionJobData>);
  if (roles.includes('handlers')) start(SHARED_QUEUE.handler, runHandlers);
  if (roles.includes('projections')) start(SHARED_QUEUE.projection, runProjections);
  for (const h of handlers) start(ownQueueName(h.name), runHandlers);
  for (const p of projections) start(ownQueueName(p.name), runProjections);

  let relay: DeliveryRelay | null = null;
  let reconciler: Reconciler | null = null;
  if (roles.includes('relay')) {
    reconciler = new Reconciler(c.pool, c.consumerQueues, c.policyOf, logger, { horizonMs: config.OWED_REDELIVER_AFTER_MS });
    relay = new DeliveryRelay(config.DATABASE_URL, c.publisher, reconciler, logger, { batchSize: config.RELAY_BATCH_SIZE, pollMs: config.RELAY_POLL_MS });
    relay.start();
  }

  return {
    handlerRunner,
    projectionRunner,
    relay,
    reconciler,
    workers,
    async close(graceMs = config.SHUTDOWN_GRACE_MS) {
      closing = true;
      clearInterval(beat);
      clearInterval(fold);
      clearInterval(vacuum);
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
