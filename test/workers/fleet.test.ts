import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { createEventGenerator } from '../../src/demo/eventGenerator.js';
import { defaultHandlers } from '../../src/handlers/index.js';
import { defaultProjections } from '../../src/projections/index.js';
import { disposeTestContainer, idle, queueCounts, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';
import { spawnTs, stopAll, type Spawned } from '../support/processes.js';
import { actualDocs, diffDocs, expectedDocs } from '../support/readModels.js';
import { onPostgresQueues } from '../support/backend.js';

let db: TestDb;
let producer: Container;
let env: Record<string, string>;
const workers: Spawned[] = [];
const n = z.object({ n: z.number() });

beforeAll(async () => {
  db = await createTestDb('fleet', { poolSize: 8 });
  env = {
    DATABASE_URL: db.url,
    QUEUE_PREFIX: testPrefix('fleet'),
    // Short locks so the jobs of a SIGKILLed worker are taken over within seconds.
    JOB_LOCK_MS: '3000',
    WORKER_CONCURRENCY: '4',
    RELAY_POLL_MS: '200',
    DATABASE_POOL_SIZE: '6',
  };
  producer = await testContainer(env);
});

afterAll(async () => {
  await stopAll(workers);
  await disposeTestContainer(producer);
  await db?.drop();
});

describe('the worker fleet', () => {
  it('3 worker processes, 4 producers, 10,000 events over 500 streams, one worker SIGKILLed mid-run: read models equal the fold of the store, every handler effect exactly once', { timeout: onPostgresQueues ? 240_000 : 120_000 }, async () => {
    for (let i = 0; i < 3; i++) workers.push(spawnTs('workers/worker.ts', env));
    const TOTAL = 10_000;
    let dispatched = 0;
    let killed = false;
    const produce = async (p: number) => {
      const gen = createEventGenerator({ seed: 100 + p, streams: 125, runId: `p${p}` });
      for (let i = 0; i < TOTAL / 4; ) {
        const size = Math.min(1 + ((i * 7 + p) % 40), TOTAL / 4 - i);
        await producer.bus.dispatchMany(gen.batch(size));
        i += size;
        dispatched += size;
        if (!killed && dispatched >= TOTAL * 0.4) {
          killed = true;
          workers[0]!.child.kill('SIGKILL');
          workers.push(spawnTs('workers/worker.ts', env));
        }
      }
    };
    await Promise.all([0, 1, 2, 3].map(produce));
    expect(killed).toBe(true);
    expect((await workers[0]!.exited).signal).toBe('SIGKILL');

    const total = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_store`);
    expect(total).toBeGreaterThanOrEqual(TOTAL); // plus the AlertTriggered events the handlers emitted

    // Done when the queues are idle, the outbox is empty and every read model equals the fold.
    await waitFor(
      async () => {
        const counts = await queueCounts(producer);
        const outbox = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_outbox`);
        if (!idle(counts) || outbox > 0) return false;
        for (const p of defaultProjections) if (diffDocs(await expectedDocs(db.pool, p), await actualDocs(db.pool, p.table)).length) return false;
        return true;
      },
      { timeoutMs: 150_000, intervalMs: 500, what: 'the fleet to drain' },
    ).catch(async (e) => {
      for (const p of defaultProjections) console.error(p.name, diffDocs(await expectedDocs(db.pool, p), await actualDocs(db.pool, p.table)));
      console.error(workers.map((w) => w.output().slice(-2000)).join('\n---\n'));
      throw e;
    });

    for (const p of defaultProjections) {
      const expected = await expectedDocs(db.pool, p);
      expect(expected.size).toBeGreaterThan(0);
      expect(diffDocs(expected, await actualDocs(db.pool, p.table))).toEqual([]);
    }

    // Handler effects: one ledger row per (handler, handled event), no more, no fewer.
    for (const h of defaultHandlers) {
      const handled = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_store WHERE event_type = ANY(${sql.array([...h.handledTypes], 'text')})`);
      const ledger = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_handler_ledger WHERE handler = ${h.name}`);
      expect({ handler: h.name, ledger }).toEqual({ handler: h.name, ledger: handled });
    }
    const discovered = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_store WHERE event_type = 'TicketDiscovered'`);
    const statsTotal = await db.pool.oneFirst(sql.type(n)`SELECT coalesce(sum(tickets_discovered), 0)::int8 AS n FROM platform_stats_totals`);
    expect(statsTotal).toBe(discovered);
    const alerts = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_store WHERE event_type = 'AlertTriggered'`);
    const alertNotifications = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM user_notifications WHERE kind = 'alert'`);
    expect(alertNotifications).toBe(alerts);
    expect(await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_processing_failures`)).toBe(0);
  });
});
