import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { createEventGenerator } from '../../src/demo/eventGenerator.js';
import { defaultHandlers } from '../../src/handlers/index.js';
import { defaultProjections } from '../../src/projections/index.js';
import { idle, owedEvents, queueCounts, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';
import { spawnTs, stopAll, type Spawned } from '../support/processes.js';
import { PrivateRedis } from '../support/redisServer.js';
import { actualDocs, diffDocs, expectedDocs } from '../support/readModels.js';

let db: TestDb;
let redis: PrivateRedis;
let producer: Container;
const workers: Spawned[] = [];
const n = z.object({ n: z.number() });

beforeAll(async () => {
  redis = new PrivateRedis(6391 + Math.floor(Math.random() * 50));
  await redis.start();
  db = await createTestDb('redis_outage');
  const env = { DATABASE_URL: db.url, REDIS_URL: redis.url, QUEUE_PREFIX: testPrefix('outage'), RELAY_POLL_MS: '200', JOB_LOCK_MS: '3000' };
  producer = await testContainer(env);
  workers.push(spawnTs('workers/worker.ts', env));
});
afterAll(async () => {
  await stopAll(workers);
  await producer?.close();
  await redis?.destroy();
  await db?.drop();
});

describe('Redis down while producers dispatch', () => {
  it('every dispatch succeeds; once Redis is back all 1,000 events are processed, none lost or doubled', async () => {
    const gen = createEventGenerator({ seed: 7, streams: 200, runId: 'outage' });
    await producer.bus.dispatchMany(gen.batch(50)); // some traffic before the outage, processed by a running worker
    await waitFor(async () => idle(await queueCounts(producer)) && (await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_handler_ledger`)) > 0, { what: 'the worker to be up' });
    await redis.stop();

    const results = [];
    for (let i = 0; i < 1000; i += 10) {
      const t0 = Date.now();
      results.push(...(await producer.bus.dispatchMany(gen.batch(10))));
      expect(Date.now() - t0).toBeLessThan(10_000); // returns, does not hang on the dead Redis
    }
    expect(results).toHaveLength(1000);
    // Every one of them is owed in Postgres: still in the outbox, or an owed row of each consumer.
    const recorded = await db.pool.oneFirst(sql.type(n)`
      SELECT count(*) AS n FROM event_store e
      WHERE e.id = ANY(${sql.array(results.map((r) => r.id), 'uuid')})
        AND (EXISTS (SELECT 1 FROM event_outbox o WHERE o.event_id = e.id) OR EXISTS (SELECT 1 FROM owed_batches w JOIN consumer_owed c ON c.job_key = w.job_key WHERE w.positions @> e.global_position))`);
    expect(recorded).toBe(1000);

    await redis.start();
    await waitFor(
      async () => {
        const left = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_outbox`);
        if (left > 0 || !idle(await queueCounts(producer)) || (await owedEvents(producer)) > 0) return false;
        for (const p of defaultProjections) if (diffDocs(await expectedDocs(db.pool, p), await actualDocs(db.pool, p.table)).length) return false;
        return true;
      },
      { timeoutMs: 90_000, intervalMs: 300, what: 'delivery after Redis came back' },
    ).catch(async (e) => {
      console.error('outbox', await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_outbox`), 'queues', await queueCounts(producer));
      for (const p of defaultProjections) console.error(p.name, diffDocs(await expectedDocs(db.pool, p), await actualDocs(db.pool, p.table)));
      console.error(workers.map((w) => w.output().slice(-3000)).join('\n---\n'));
      throw e;
    });
    for (const h of defaultHandlers) {
      const handled = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_store WHERE event_type = ANY(${sql.array([...h.handledTypes], 'text')})`);
      const ledger = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_handler_ledger WHERE handler = ${h.name}`);
      expect({ h: h.name, ledger }).toEqual({ h: h.name, ledger: handled });
    }
    const stored = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_store WHERE metadata->>'source' IS DISTINCT FROM 'TicketDiscoveredHandler' AND metadata->>'source' IS DISTINCT FROM 'PriceChangeHandler'`);
    expect(stored).toBe(1050);
  });
});
