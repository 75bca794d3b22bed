import { defineConfig } from 'vitest/config';

/**
 * The queue-level files that run a second time on BullMQ's PostgreSQL backend (QUEUE_BACKEND=postgres,
 * read by test/support/backend.ts and inherited by the processes the tests spawn): where a job lands,
 * delivery, retries and failures, owed work and the reconciler, a worker SIGKILLed mid-run, the queue
 * store losing its jobs, shutdown, replay, bull-board. About two minutes more on two cores.
 */
export const BOTH_BACKENDS = [
  'test/workers/queueBackend.test.ts',
  'test/workers/batchJobs.test.ts',
  'test/workers/poisonIsolation.test.ts',
  'test/workers/operatorDeletedJob.test.ts',
  'test/workers/webhook.test.ts',
  'test/workers/redisRestartedEmpty.test.ts',
  'test/workers/fleet.test.ts',
  'test/workers/shutdown.test.ts',
  'test/replay/concurrentRebuild.test.ts',
  'test/http/bullBoard.test.ts',
];

export default defineConfig({
  test: {
    // Gives the run an id that every test prefix carries, and deletes the run's Redis keys at the end.
    globalSetup: ['test/support/globalSetup.ts'],
    // Each file gets its own database and BullMQ prefix, so files may run in parallel.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: 'redis', include: ['test/**/*.test.ts'] } },
      { extends: true, test: { name: 'postgres', include: BOTH_BACKENDS, env: { QUEUE_BACKEND: 'postgres' } } },
    ],
  },
});
