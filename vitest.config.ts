import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Gives the run an id that every test prefix carries, and deletes the run's Redis keys at the end.
    globalSetup: ['test/support/globalSetup.ts'],
    // Each file gets its own database and BullMQ prefix, so files may run in parallel.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
