import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { createEventGenerator } from '../../src/demo/eventGenerator.js';
import { defaultProjections } from '../../src/projections/index.js';
import { idle, queueCounts, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';
import { spawnTs, stopAll, type Spawned } from '../support/processes.js';
import { actualDocs, diffDocs, expectedDocs } from '../support/readModels.js';

let db: TestDb;
let producer: Container;
let env: Record<string, string>;
const workers: Spawned[] = [];
const n = z.object({ n: z.number() });

beforeAll(async () => {
  db = await createTestDb('shutdown');
  env = { DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix('term'), SHUTDOWN_GRACE_MS: '10000', WORKER_CONCURRENCY: '4' };
  producer = await testContainer(env);
});
afterAll(async () => {
  await stopAll(workers);
  await producer?.close();
  await db?.drop();
});

describe('SIGTERM', () => {
  it('exits 0 within the grace period, leaves no job active and nothing half-applied', async () => {
    const gen = createEventGenerator({ seed: 3, streams: 300, runId: 'term' });
    for (let i = 0; i < 50; i++) await producer.bus.dispatchMany(gen.batch(100));
    const w = spawnTs('workers/worker.ts', env);
    workers.push(w);
    // Wait until it is busy, then ask it to stop.
    await waitFor(async () => ((await queueCounts(producer)).active ?? 0) > 0, { what: 'jobs in flight', intervalMs: 20 });
    const t0 = Date.now();
    w.child.kill('SIGTERM');
    const { code } = await w.exited;
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000 + 3000);
    expect((await queueCounts(producer)).active ?? 0).toBe(0);

    // Nothing half-applied: each handler's Postgres effect matches its ledger exactly.
    const ledger = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_handler_ledger WHERE handler = 'TicketDiscoveredHandler'`);
    const stats = await db.pool.oneFirst(sql.type(n)`SELECT coalesce(sum(tickets_discovered), 0)::int8 AS n FROM platform_stats_totals`);
    expect(stats).toBe(ledger);
    // And every ticket document is exactly at its checkpoint.
    const mismatched = await db.pool.oneFirst(sql.type(n)`
      SELECT count(*) AS n FROM ticket_read_models t
      JOIN projection_checkpoints c ON c.projection = 'TicketReadModelProjection' AND c.stream_id = 'ticket-' || t.id
      WHERE (t.doc->>'version')::int <> c.version`);
    expect(mismatched).toBe(0);

    // A new worker finishes the rest correctly.
    workers.push(spawnTs('workers/worker.ts', env));
    await waitFor(
      async () => {
        if (!idle(await queueCounts(producer))) return false;
        for (const p of defaultProjections) if (diffDocs(await expectedDocs(db.pool, p), await actualDocs(db.pool, p.table)).length) return false;
        return true;
      },
      { timeoutMs: 90_000, intervalMs: 300, what: 'the rest to be processed' },
    );
  });
});
