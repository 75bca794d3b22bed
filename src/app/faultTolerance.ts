import { DelayedError, type Job, type Worker } from 'bullmq';
import type { FaultMonitor } from '../faultMonitor.js';

/**
 * Wraps a BullMQ processor: an infrastructure fault (Postgres or Redis unavailable, a lost
 * connection, a failover, a deadlock) is not the job's fault. The job goes back to the delayed set
 * with capped exponential backoff and without using an attempt (BullMQ's skipAttempt), so it records
 * no failure and parks nothing; any other error is thrown on to BullMQ's retries.
 */
export function delayOnInfrastructureFault<D, R>(faults: FaultMonitor, run: (job: Job<D>) => Promise<R>): (job: Job<D>, token?: string) => Promise<R> {
  return async (job, token) => {
    try {
      const result = await run(job);
      faults.ok();
      return result;
    } catch (error) {
      if (!token || !faults.report(error, 'job')) throw error;
      try {
        await job.moveToDelayed(Date.now() + faults.nextDelayMs(), token);
      } catch {
        // Redis is gone too: the job's lock lapses and the stalled check gives it back later.
        throw error;
      }
      throw new DelayedError();
    }
  };
}

export function isDelayed(error: unknown): boolean {
  return error instanceof DelayedError || (error as Error | undefined)?.name === 'DelayedError';
}

/**
 * While Postgres or Redis is down, the workers take no new jobs (a local pause: other processes are
 * not affected); the ones in hand are delayed as they meet the fault. Intake resumes when the
 * monitor's probe finds the service back.
 */
export function pauseWhileDown(faults: FaultMonitor, workers: () => readonly Worker[], closing: () => boolean): void {
  faults.subscribe(() => {
    if (closing()) return;
    if (faults.isDown()) for (const w of workers()) void w.pause(true).catch(() => {});
    else for (const w of workers()) if (w.isPaused()) void Promise.resolve(w.resume()).catch(() => {});
  });
}

/** Worker 'error' events (lost Redis connections, mostly): one warning per kind per interval. */
export function reportWorkerErrors(faults: FaultMonitor, worker: Worker, label: string): void {
  worker.on('error', (err) => {
    if (!faults.report(err, 'worker')) faults.warn(`worker:${label}`, { err: err.message, queue: label }, 'worker error');
  });
}
