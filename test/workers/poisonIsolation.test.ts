import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { startWorkerHost, type WorkerHost } from '../../src/app/workerHost.js';
import { createEventGenerator } from '../../src/demo/eventGenerator.js';
import { sampleEvent } from '../../src/domain/index.js';
import { defineProjection } from '../../src/projections/Projection.js';
import { disposeTestContainer, idle, owedEvents, queueCounts, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';

// The trap: an error outside `apply` (an upcaster rejecting an old row, loading the events, keysOf)
// failed the whole batch, so after retries one bad row parked every stream of a 500-event batch and
// recorded a failure for every event. Only the poison stream may stop, and only for its consumers.
let db: TestDb;
let c: Container;
let host: WorkerHost | undefined;
const n = z.object({ n: z.number() });

beforeAll(async () => {
  db = await createTestDb('poison_upcast');
  c = await testContainer({ DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix('poison-upcast'), JOB_ATTEMPTS: '2', JOB_BACKOFF_MS: '50', RELAY_POLL_MS: '200', JOB_BATCH_SIZE: '500' });
});
afterAll(async () => {
  await host?.close(5000);
  await disposeTestContainer(c);
  await db?.drop();
});

describe('poison found outside apply', () => {
  it('poison-in-upcast-parks-one-stream: one row its upcaster rejects inside a 500-event batch parks exactly that stream for the consumers of its type; the other 499 events take effect once', async () => {
    const gen = createEventGenerator({ seed: 77, streams: 80, runId: 'pu' });
    // Stored and published as one batch before any worker runs, so the poison row is corrupted in the
    // store before its job is taken.
    const stored = await c.bus.dispatchMany(gen.batch(500));
    const types = await db.pool.any(sql.type(z.object({ id: z.string(), event_type: z.string(), stream_id: z.string(), version: z.number() }))`
      SELECT id, event_type, stream_id, version FROM event_store WHERE id = ANY(${sql.array(stored.map((s) => s.id), 'uuid')})`);
    const priceChanges = types.filter((t) => t.event_type === 'TicketPriceChanged');
    // A price change with later events of its stream in the batch: they must wait behind it.
    const poison = priceChanges.find((p) => types.some((t) => t.stream_id === p.stream_id && t.version > p.version && t.event_type !== 'TicketPriceChanged')) ?? priceChanges[0]!;
    expect(poison).toBeDefined();
    // As if an old row (schema version 1) were malformed: the v1 upcaster rejects it.
    await db.pool.query(sql.unsafe`UPDATE event_store SET schema_version = 1, payload = '{"ticketId": 42}'::jsonb WHERE id = ${poison.id}`);

    host = await startWorkerHost(c, ['handlers', 'projections', 'relay']);
    await waitFor(async () => idle(await queueCounts(c)) && (await owedEvents(c)) === 0, { timeoutMs: 60_000, intervalMs: 200, what: 'the batch to settle' });

    // Failures: exactly the poison event, once for each consumer of its type.
    const failures = await db.pool.any(sql.type(z.object({ consumer: z.string(), event_id: z.string() }))`SELECT consumer, event_id FROM event_processing_failures ORDER BY consumer`);
    const ofType = [...c.handlers.filter((h) => (h.handledTypes as readonly string[]).includes('TicketPriceChanged')).map((h) => h.name), ...c.projections.filter((p) => p.handles('TicketPriceChanged')).map((p) => p.name)].sort();
    expect(ofType.length).toBeGreaterThan(1);
    expect(failures).toEqual(ofType.map((consumer) => ({ consumer, event_id: poison.id })));

    // Parked: only the poison stream, only for the projections of its type, right before the bad row.
    const parked = await db.pool.any(sql.type(z.object({ projection: z.string(), stream_id: z.string(), version: z.number() }))`
      SELECT projection, stream_id, version FROM projection_checkpoints WHERE parked ORDER BY projection`);
    const projectionsOfType = c.projections.filter((p) => p.handles('TicketPriceChanged')).map((p) => p.name).sort();
    expect(parked.map((p) => p.projection)).toEqual(projectionsOfType);
    for (const p of parked) {
      expect(p.stream_id).toBe(poison.stream_id);
      expect(p.version).toBeLessThan(poison.version);
    }

    // Every other stream is caught up to its last event of each projection's types.
    for (const p of c.projections) {
      const behind = await db.pool.oneFirst(sql.type(n)`
        SELECT count(*) AS n FROM (
          SELECT e.stream_id, max(e.version) AS v FROM event_store e
          WHERE e.event_type = ANY(${sql.array([...p.handledTypes], 'text')}) AND e.stream_id <> ${poison.stream_id}
          GROUP BY e.stream_id) s
        LEFT JOIN projection_checkpoints c ON c.projection = ${p.name} AND c.stream_id = s.stream_id AND c.generation = (SELECT generation FROM event_projections WHERE name = ${p.name})
        WHERE c.version IS DISTINCT FROM s.v`);
      expect({ projection: p.name, behind }).toEqual({ projection: p.name, behind: 0 });
    }
    // Every (handler, event) pair took effect exactly once but the poison one for its handlers.
    for (const h of c.handlers) {
      const types = sql.array([...h.handledTypes], 'text');
      const missing = await db.pool.any(sql.type(z.object({ id: z.string() }))`
        SELECT e.id FROM event_store e LEFT JOIN event_handler_ledger l ON l.handler = ${h.name} AND l.event_id = e.id
        WHERE e.event_type = ANY(${types}) AND l.event_id IS NULL`);
      const expected = (h.handledTypes as readonly string[]).includes('TicketPriceChanged') ? [poison.id] : [];
      expect({ handler: h.name, missing: missing.map((m) => m.id) }).toEqual({ handler: h.name, missing: expected });
    }
  });

  it('poison-in-write-bisected: a batch whose document write Postgres refuses for one stream is split until that stream is alone; only it is parked, the other streams take effect', async () => {
    // The document of a ticket with quantity 13 holds a lone surrogate: jsonb refuses the whole write
    // statement, so no event can be blamed until the batch is split.
    const Unwritable = defineProjection<{ note: string }>({
      name: 'UnwritableProjection',
      version: 1,
      table: 'purchase_read_models',
      handledTypes: ['TicketDiscovered'],
      keysOf: (e) => [e.streamId],
      apply(e, docs) {
        docs.set(e.streamId, { note: e.type === 'TicketDiscovered' && e.payload.quantity === 13 ? '\ud800' : 'ok' });
      },
    });
    const db2 = await createTestDb('poison_write');
    const c2 = await testContainer({ DATABASE_URL: db2.url, QUEUE_PREFIX: testPrefix('poison-write'), JOB_ATTEMPTS: '2', JOB_BACKOFF_MS: '50', RELAY_POLL_MS: '200' }, { handlers: [], projections: [Unwritable] });
    const host2 = await startWorkerHost(c2, ['handlers', 'projections', 'relay']);
    try {
      const quantities = Array.from({ length: 40 }, (_, i) => (i === 17 ? 13 : 2));
      await c2.bus.dispatchMany(quantities.map((quantity, i) => ({ type: 'TicketDiscovered', payload: sampleEvent('TicketDiscovered', { ticketId: `w-${i}`, quantity }).payload })));
      await waitFor(async () => idle(await queueCounts(c2)) && (await owedEvents(c2)) === 0, { timeoutMs: 60_000, intervalMs: 200, what: 'the batch to settle' });
      const parked = await db2.pool.anyFirst(sql.type(z.object({ stream_id: z.string() }))`SELECT stream_id FROM projection_checkpoints WHERE parked`);
      expect(parked).toEqual(['ticket-w-17']);
      expect(await db2.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_processing_failures`)).toBe(1);
      expect(await db2.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM purchase_read_models`)).toBe(39);
    } finally {
      await host2.close(5000);
      await disposeTestContainer(c2);
      await db2.drop();
    }
  });
});
