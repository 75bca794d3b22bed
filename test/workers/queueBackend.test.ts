import { Redis } from 'ioredis';
import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { disposeTestContainer, testContainer } from '../support/app.js';
import { TEST_QUEUE_BACKEND } from '../support/backend.js';
import { createTestDb, testPrefix, type TestDb } from '../support/db.js';

// The trap: a "second backend" pass that silently ran on Redis again (an env var not reaching the
// container) would prove nothing. This file runs in both vitest projects and checks where a job lands.
let db: TestDb;
let c: Container;
const prefix = testPrefix('backend');
const redis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: 1 });

beforeAll(async () => {
  db = await createTestDb('queue_backend');
  c = await testContainer({ DATABASE_URL: db.url, QUEUE_PREFIX: prefix });
});
afterAll(async () => {
  await disposeTestContainer(c);
  await redis.quit();
  await db?.drop();
});

describe(`queue backend (${TEST_QUEUE_BACKEND})`, () => {
  it('jobs-land-in-the-configured-store: a job added through the container is in the bullmq schema on postgres and in Redis on redis, never in the other', async () => {
    expect(c.queueStore.kind).toBe(TEST_QUEUE_BACKEND);
    await c.queues.handlers.add('probe', { consumers: [], eventIds: [] }, { jobId: 'probe.1' });
    expect(await c.queues.handlers.getJobState('probe.1')).toBe('waiting');
    const schema = await db.pool.oneFirst(sql.type(z.object({ t: z.boolean() }))`SELECT to_regclass('bullmq.job') IS NOT NULL AS t`);
    const inRedis = (await redis.keys(`${prefix}:handlers:probe.1`)).length;
    if (TEST_QUEUE_BACKEND === 'postgres') {
      expect(schema).toBe(true);
      expect(await db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM bullmq.job WHERE id = 'probe.1'`)).toBe(1);
      expect(inRedis).toBe(0);
    } else {
      expect(schema).toBe(false);
      expect(inRedis).toBe(1);
    }
  });
});
