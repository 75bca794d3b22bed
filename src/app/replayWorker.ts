import type { Worker } from 'bullmq';
import { newWorker } from './newWorker.js';
import type { Container } from './container.js';
import { delayOnInfrastructureFault, isDelayed, pauseWhileDown, reportWorkerErrors } from './faultTolerance.js';
import { QUEUE_NAMES } from '../eventBus/queues.js';
import { replayEvents, replayRuns } from '../metrics/metrics.js';
import { ReplayEngine } from '../replay/ReplayEngine.js';
import type { ReplayJobData } from '../replay/ReplayService.js';

interface ReplayJobState extends ReplayJobData {
  completed?: string[];
}

/**
 * The replay process: one replay at a time per process. A killed process leaves its job to BullMQ's
 * stalled check; the next attempt resumes every projection from its last committed chunk.
 */
export function startReplayWorker(c: Container): { worker: Worker; close(graceMs?: number): Promise<void> } {
  const engine = new ReplayEngine(c.pool, c.upcast, c.logger);
  const byName = new Map(c.projections.map((p) => [p.name, p]));
  const worker = newWorker<ReplayJobState>(
    c.queueStore,
    QUEUE_NAMES.replay,
    // An outage delays the replay (it resumes from its last committed chunk); it does not use attempts.
    delayOnInfrastructureFault<ReplayJobState, unknown>(c.faults, async (job) => {
      const results = [];
      const completed = new Set(job.data.completed ?? []);
      const todo = job.data.projections.filter((name) => !completed.has(name)).map((name) => {
        const projection = byName.get(name);
        if (!projection) throw new Error(`unknown projection ${name}`);
        return projection;
      });
      // A full rebuild reads the store once for all its projections; `--from` runs them one by one.
      const runs = await engine.runMany(todo, {
        jobId: job.id!,
        from: job.data.from,
        chunk: job.data.chunk,
        onProgress: (p) => job.updateProgress({ ...p, index: completed.size, of: job.data.projections.length }),
        onSwitched: async (r) => {
          replayRuns.inc({ projection: r.projection, outcome: 'completed' });
          replayEvents.inc({ projection: r.projection }, Math.max(0, r.events - r.resumedFrom));
          completed.add(r.projection);
          await job.updateData({ ...job.data, completed: [...completed] });
        },
      });
      results.push(...runs);
      return { projections: results };
    }),
    {
      connection: c.queueStore.workerConnection(1),
      prefix: c.queueStore.queuePrefix(QUEUE_NAMES.replay),
      concurrency: 1,
      lockDuration: c.config.JOB_LOCK_MS,
      stalledInterval: Math.max(1000, Math.floor(c.config.JOB_LOCK_MS / 2)),
      // A replay is long and resumable: survive a few crashed workers before giving up.
      maxStalledCount: 3,
    },
  );
  reportWorkerErrors(c.faults, worker, QUEUE_NAMES.replay);
  let closing = false;
  pauseWhileDown(c.faults, () => [worker], () => closing);
  worker.on('failed', (job, err) => {
    if (!job || isDelayed(err) || (job.finishedOn == null && job.attemptsMade < (job.opts.attempts ?? 1))) return;
    c.logger.error({ jobId: job.id, err: err.message }, 'replay failed for good; the live read models keep serving');
    const done = new Set(job.data.completed ?? []);
    for (const n of job.data.projections) if (!done.has(n)) replayRuns.inc({ projection: n, outcome: 'failed' });
    void Promise.all(job.data.projections.map((n) => (byName.get(n) ? engine.abandon(byName.get(n)!, job.id!) : null))).catch(() => {});
  });
  return {
    worker,
    async close(graceMs = c.config.SHUTDOWN_GRACE_MS) {
      closing = true;
      const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
      if ((await Promise.race([worker.close(), timer])) === 'timeout') await worker.close(true);
    },
  };
}
