import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { createEventGenerator } from '../../src/demo/eventGenerator.js';
import { disposeTestContainer, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, type TestDb } from '../support/db.js';

/**
 * A producer appends its next batch while the previous one is still being published (outbox rows →
 * owed rows → jobs), but never has more than two publishes running: one that outruns Redis must not
 * pile them up. Closing the container waits for the publishes still running.
 */
let db: TestDb;
let c: Container;
const n = z.object({ n: z.number() });

beforeAll(async () => {
  db = await createTestDb('publish_pipeline');
  c = await testContainer({ DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix('pubpipe') });
});
afterAll(async () => {
  await disposeTestContainer(c);
  await db?.drop();
});

describe('publishing after append', () => {
  it('publish-overlaps-the-next-append-but-at-most-two: slow publishes run two at a time while the producer goes on, and all are done once awaited', async () => {
    const publish = c.publisher.publish.bind(c.publisher);
    let running = 0;
    let most = 0;
    let done = 0;
    c.publisher.publish = async (entries, options) => {
      running++;
      most = Math.max(most, running);
      try {
        await new Promise((r) => setTimeout(r, 150));
        return await publish(entries, options);
      } finally {
        running--;
        done++;
      }
    };
    try {
      const gen = createEventGenerator({ seed: 11, streams: 50, runId: 'pubpipe' });
      for (let i = 0; i < 6; i++) await c.bus.dispatchMany(gen.batch(20));
      // The producer went on while publishes ran (not all were done when it finished), two at most at once.
      expect(most).toBe(2);
      expect(done).toBeLessThan(6);
      await c.bus.published();
      expect(done).toBe(6);
      expect(await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_outbox`)).toBe(0);
    } finally {
      c.publisher.publish = publish;
    }
  });
});
