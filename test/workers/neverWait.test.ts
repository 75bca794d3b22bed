import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { startWorkerHost, type WorkerHost } from '../../src/app/workerHost.js';
import { sampleEvent } from '../../src/domain/index.js';
import { TicketReadModelProjection } from '../../src/projections/ticketReadModel.js';
import { disposeTestContainer, owedEvents, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';
import { actualDocs } from '../support/readModels.js';

/**
 * Workers must not wait on each other (ARCHITECTURE §7): a live projection job that meets a
 * checkpoint or document another transaction holds leaves that stream to a follow-up job and applies
 * the rest of its batch now. Here an open transaction plays the other worker, holding the lock for as
 * long as the test likes.
 */
let db: TestDb;
let c: Container;
let host: WorkerHost;
let holder: pg.Client;

beforeAll(async () => {
  db = await createTestDb('never_wait');
  c = await testContainer(
    { DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix('neverwait'), RELAY_POLL_MS: '200' },
    { handlers: [], projections: [TicketReadModelProjection] },
  );
  host = await startWorkerHost(c, ['handlers', 'projections', 'relay']);
  holder = new pg.Client({ connectionString: db.url });
  await holder.connect();
});
afterAll(async () => {
  await holder?.query('ROLLBACK').catch(() => {});
  await holder?.end();
  await host?.close(5000);
  await disposeTestContainer(c);
  await db?.drop();
});

const discovered = (ticketId: string, quantity: number) => ({ type: 'TicketDiscovered', payload: sampleEvent('TicketDiscovered', { ticketId, quantity }).payload });
const avail = (ticketId: string, oldQuantity: number, newQuantity: number) => ({ type: 'TicketAvailabilityChanged', payload: { ticketId, platform: 'ticketmaster', oldQuantity, newQuantity } });
const quantityOf = async (ticketId: string) => ((await actualDocs(db.pool, TicketReadModelProjection.table)).get(ticketId) as { quantity?: number } | undefined)?.quantity;

describe('a live projection job never waits for a lock another transaction holds', () => {
  for (const what of ['checkpoint', 'document'] as const) {
    it(`held-${what}-defers-only-its-stream: the rest of the batch takes effect while the ${what} is held; the held stream catches up once it is released`, { timeout: 60_000 }, async () => {
      const held = `held-${what}`;
      const free = [`free-${what}-1`, `free-${what}-2`];
      await c.bus.dispatchMany([discovered(held, 5), ...free.map((t) => discovered(t, 5))]);
      await waitFor(async () => (await quantityOf(held)) === 5 && (await quantityOf(free[1]!)) === 5, { what: 'the first events applied' });

      await holder.query('BEGIN');
      const locked =
        what === 'checkpoint'
          ? await holder.query(`SELECT 1 FROM projection_checkpoints WHERE projection = $1 AND stream_id = $2 FOR UPDATE`, [TicketReadModelProjection.name, `ticket-${held}`])
          : await holder.query(`SELECT 1 FROM ${TicketReadModelProjection.table} WHERE id = $1 FOR UPDATE`, [held]);
      expect(locked.rowCount).toBe(1);

      // One batch: the held stream's event between two free ones.
      await c.bus.dispatchMany([avail(free[0]!, 5, 4), avail(held, 5, 3), avail(free[1]!, 5, 2)]);
      await waitFor(async () => (await quantityOf(free[0]!)) === 4 && (await quantityOf(free[1]!)) === 2, { what: 'the free streams of the batch to take effect while the lock is held' });
      expect(await quantityOf(held)).toBe(5);
      // Still owed in Postgres, not merely queued.
      expect(await owedEvents(c)).toBeGreaterThan(0);

      await holder.query('COMMIT');
      await waitFor(async () => (await quantityOf(held)) === 3 && (await owedEvents(c)) === 0, { what: 'the held stream to catch up after the release and the owed row to settle' });
    });
  }
});
