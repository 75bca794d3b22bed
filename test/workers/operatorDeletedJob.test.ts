import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { startWorkerHost, type WorkerHost } from '../../src/app/workerHost.js';
import { createEventGenerator } from '../../src/demo/eventGenerator.js';
import { defaultHandlers } from '../../src/handlers/index.js';
import { defaultProjections } from '../../src/projections/index.js';
import { disposeTestContainer, idle, owedEvents, queueCounts, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';
import { actualDocs, diffDocs, expectedDocs } from '../support/readModels.js';

const REDELIVER_AFTER_MS = 1500;
let db: TestDb;
let c: Container;
const hosts: WorkerHost[] = [];
const n = z.object({ n: z.number() });
const OwedRow = z.object({ consumer: z.string(), job_key: z.string(), kind: z.string(), job_queue: z.string(), job_id: z.string(), deliveries: z.number(), events: z.number() });
type OwedRow = z.infer<typeof OwedRow>;

beforeAll(async () => {
  db = await createTestDb('operator_deleted_job');
  c = await testContainer({
    DATABASE_URL: db.url,
    QUEUE_PREFIX: testPrefix('opdel'),
    OWED_REDELIVER_AFTER_MS: String(REDELIVER_AFTER_MS),
    RELAY_POLL_MS: '200',
    WORKER_CONCURRENCY: '4',
  });
});
afterAll(async () => {
  for (const h of hosts.reverse()) await h.close(5000).catch(() => {});
  await disposeTestContainer(c);
  await db?.drop();
});

const owedRows = async (): Promise<OwedRow[]> => [
  ...(await db.pool.any(sql.type(OwedRow)`
    SELECT consumer, job_key, kind, job_queue, job_id, deliveries, events FROM consumer_owed ORDER BY job_key, consumer`)),
];

describe('operator-deleted job', () => {
  it('operator-deleted-job: a job removed from Redis (as bull-board\'s delete does) is redelivered by the reconciler and takes effect once', { timeout: 120_000 }, async () => {
    // Three published batches, with no worker taking jobs yet: their shared jobs wait in Redis.
    const gen = createEventGenerator({ seed: 7, streams: 120, runId: 'opdel' });
    const batches = [];
    for (let i = 0; i < 3; i++) batches.push(await c.bus.dispatchMany(gen.batch(150)));
    const keys = batches.map((b) => `p${Math.min(...b.map((r) => r.position))}`);
    const before = await owedRows();
    expect([...new Set(before.map((r) => r.job_key))].sort()).toEqual([...keys].sort());
    const owedBefore = await owedEvents(c);
    expect(owedBefore).toBeGreaterThan(0);

    // An operator deletes, as bull-board's delete button does (Job#remove): both shared jobs of
    // batch A, and only the projections job of batch B. Batch C is left alone.
    const [keyA, keyB, keyC] = keys as [string, string, string];
    const deleted = [`handlers.${keyA}`, `projections.${keyA}`, `projections.${keyB}`];
    for (const id of deleted) {
      const queue = id.startsWith('handlers.') ? c.queues.handlers : c.queues.projections;
      const job = await queue.getJob(id);
      expect(job, `shared job ${id} should be waiting in Redis`).toBeTruthy();
      expect(await job!.getState()).toBe('waiting');
      await job!.remove();
      expect(await queue.getJobState(id)).toBe('unknown');
    }
    expect(await c.queues.handlers.getJobState(`handlers.${keyB}`)).toBe('waiting');
    expect(await c.queues.handlers.getJobState(`handlers.${keyC}`)).toBe('waiting');
    expect(await c.queues.projections.getJobState(`projections.${keyC}`)).toBe('waiting');

    // The trap: Redis no longer holds any job for this work, but Postgres still says it is owed.
    const orphaned = (await owedRows()).filter((r) => deleted.includes(r.job_id));
    expect(orphaned.length).toBeGreaterThan(0);
    expect(new Set(orphaned.map((r) => r.job_id))).toEqual(new Set(deleted));
    // deliveries counts the first delivery (the shared job) as 1.
    expect(orphaned.every((r) => r.deliveries === 1)).toBe(true);
    expect(await owedEvents(c)).toBe(owedBefore);

    // Consumers running but no reconciler: the surviving jobs are processed, the deleted ones never,
    // even after their redelivery horizon has passed.
    hosts.push(await startWorkerHost(c, ['handlers', 'projections']));
    await waitFor(
      async () => {
        const rows = await owedRows();
        const overdue = await db.pool.oneFirst(sql.type(z.object({ ok: z.boolean() }))`
          SELECT coalesce(bool_and(due_at < now() - interval '200 milliseconds'), false) AS ok FROM consumer_owed`);
        return idle(await queueCounts(c)) && overdue && rows.every((r) => deleted.includes(r.job_id)) ? rows : null;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: 'the surviving jobs to settle and the orphaned rows to become overdue' },
    );
    const stillOwed = await owedRows();
    expect(stillOwed.map((r) => `${r.consumer}@${r.job_id}#${r.deliveries}`)).toEqual(orphaned.map((r) => `${r.consumer}@${r.job_id}#1`));

    // Now a relay (with its reconciler) runs somewhere: it finds the jobs gone and redelivers.
    const relayHost = await startWorkerHost(c, ['relay']);
    hosts.push(relayHost);
    await waitFor(async () => (await owedEvents(c)) === 0 && idle(await queueCounts(c)), { timeoutMs: 60_000, intervalMs: 100, what: 'every owed event to be settled' });

    // Each orphaned row was redelivered exactly once, as a job on its consumer's own queue that completed.
    expect(relayHost.reconciler?.redelivered).toBe(orphaned.length);
    for (const r of orphaned) {
      const id = `${r.consumer}.${r.job_key}.r1`;
      expect(`${id}: ${await c.consumerQueues.own(r.consumer).getJobState(id)}`).toBe(`${id}: completed`);
    }

    // Every read model equals the fold of the store.
    for (const p of defaultProjections) expect(diffDocs(await expectedDocs(db.pool, p), await actualDocs(db.pool, p.table)), p.name).toEqual([]);
    // Every handler took effect exactly once per stored event of its types (the ledger's primary key
    // rules out duplicates; equal counts rule out gaps), and nothing was recorded as failed.
    for (const h of defaultHandlers) {
      const types = sql.array([...h.handledTypes], 'text');
      const stored = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_store WHERE event_type = ANY(${types})`);
      const ledger = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_handler_ledger WHERE handler = ${h.name}`);
      const matched = await db.pool.oneFirst(sql.type(n)`
        SELECT count(*) AS n FROM event_handler_ledger l JOIN event_store e ON e.id = l.event_id
        WHERE l.handler = ${h.name} AND e.event_type = ANY(${types})`);
      expect({ handler: h.name, ledger, matched }).toEqual({ handler: h.name, ledger: stored, matched: stored });
    }
    // The deleted batch A had handler work: those handlers' effects came only from the redelivery.
    expect(orphaned.some((r) => r.kind === 'handler' && r.job_key === keyA)).toBe(true);
    expect(await c.failures.list({ status: 'all' })).toEqual([]);
  });
});
