import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { startReplayWorker } from '../../src/app/replayWorker.js';
import { startWorkerHost, type WorkerHost } from '../../src/app/workerHost.js';
import { sampleEvent } from '../../src/domain/index.js';
import { StoredEventRow } from '../../src/eventStore/types.js';
import { defineProjection, type DocAccess } from '../../src/projections/Projection.js';
import { rowToEvent, toProjected } from '../../src/projections/ProjectionRunner.js';
import { createReplayService, type ReplayApi } from '../../src/replay/ReplayService.js';
import { disposeTestContainer, idle, owedEvents, queueCounts, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';
import { actualDocs, diffDocs } from '../support/readModels.js';

type Doc = { versions: number[] };
/** Throws on any ticket discovered with quantity 13, always: live, and in every rebuild. */
const Unlucky = defineProjection<Doc>({
  name: 'UnluckyProjection',
  version: 1,
  table: 'purchase_read_models',
  handledTypes: ['TicketDiscovered', 'TicketAvailabilityChanged'],
  keysOf: (e) => [e.streamId],
  apply(e, docs) {
    if (e.type === 'TicketDiscovered' && e.payload.quantity === 13) throw new Error('cannot handle unlucky tickets');
    const doc = docs.get(e.streamId) ?? { versions: [] };
    docs.set(e.streamId, { versions: [...doc.versions, e.version] });
  },
});

let db: TestDb;
let c: Container;
let host: WorkerHost;
let replay: ReturnType<typeof startReplayWorker> | undefined;
let service: ReplayApi;

beforeAll(async () => {
  db = await createTestDb('resolved_poison');
  c = await testContainer(
    { DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix('rpoison'), JOB_ATTEMPTS: '2', JOB_BACKOFF_MS: '50', RELAY_POLL_MS: '200' },
    { handlers: [], projections: [Unlucky] },
  );
  host = await startWorkerHost(c, ['handlers', 'projections', 'relay']);
  service = createReplayService({ pool: c.pool, queue: c.queues.replay, projections: c.projections, defaultChunk: 1000 });
});
afterAll(async () => {
  await replay?.close(5000);
  await host?.close(5000);
  await disposeTestContainer(c);
  await db?.drop();
});

/** The projection's fold of the store in stream order, passing over the skipped events: what a rebuild must produce. */
async function foldSkipping(skip: ReadonlySet<string>): Promise<Map<string, unknown>> {
  const rows = await db.pool.any(sql.type(StoredEventRow)`
    SELECT id, stream_id, stream_type, version, event_type, schema_version, payload, metadata,
           global_position, transaction_id::text AS transaction_id, occurred_at, recorded_at
    FROM event_store WHERE event_type = ANY(${sql.array([...Unlucky.handledTypes], 'text')})
    ORDER BY stream_id, version`);
  const docs = new Map<string, Doc>();
  const access: DocAccess<Doc> = { get: (id) => docs.get(id), set: (id, d) => void docs.set(id, d), delete: (id) => void docs.delete(id) };
  for (const row of rows) {
    if (skip.has(row.id)) continue;
    Unlucky.apply(toProjected(rowToEvent(row, (_t, schemaVersion, payload) => ({ schemaVersion, payload }))), access);
  }
  return docs;
}

const docOf = async (id: string) => (await actualDocs(db.pool, 'purchase_read_models')).get(id);
const settled = async () => idle(await queueCounts(c)) && (await owedEvents(c)) === 0;
const discovered = (ticketId: string, quantity: number) => ({ type: 'TicketDiscovered', payload: sampleEvent('TicketDiscovered', { ticketId, quantity }).payload });
const avail = (ticketId: string, oldQuantity: number, newQuantity: number) => ({ type: 'TicketAvailabilityChanged', payload: { ticketId, platform: 'ticketmaster', oldQuantity, newQuantity } });

describe('a resolved (skipped) poison event and a later rebuild', () => {
  it('rebuild-after-resolved-poison: a resolved (skipped) poison event stays skipped in a rebuild, which completes and equals the fold without it', { timeout: 120_000 }, async () => {
    // ticket-bad: v1 applies, v2 is the poison event; other streams around it.
    await c.bus.dispatchMany([avail('bad', 0, 2), discovered('ok-1', 2), discovered('ok-2', 3)]);
    const [poison] = await c.bus.dispatchMany([discovered('bad', 13), avail('ok-1', 2, 1)]);
    expect(poison!.streamId).toBe('ticket-bad');
    expect(poison!.version).toBe(2);

    const failure = (await waitFor(async () => (await c.failures.list({ consumer: Unlucky.name })).find((f) => f.event_id === poison!.id), { what: 'the failure row' }))!;
    expect(failure).toMatchObject({ consumer_kind: 'projection', stream_id: 'ticket-bad', status: 'open', attempts: 2, skipped: false });
    // A later event of the parked stream waits behind the poison event.
    await c.bus.dispatchMany([avail('bad', 13, 12), avail('ok-2', 3, 2)]);
    await waitFor(settled, { what: 'queues to drain with ticket-bad parked' });
    expect(await docOf('ticket-bad')).toEqual({ versions: [1] });

    const resolved = await c.failures.resolve(failure.id, 'skip it');
    expect(resolved).toMatchObject({ status: 'resolved', skipped: true, resolution_note: 'skip it' });
    // Events after the resolve, on the same stream and on others.
    await c.bus.dispatchMany([avail('bad', 12, 11), avail('ok-1', 1, 0), discovered('ok-3', 4)]);
    await c.bus.dispatch(avail('ok-3', 4, 3));
    await waitFor(async () => (await settled()) && JSON.stringify(await docOf('ticket-bad')) === JSON.stringify({ versions: [1, 3, 4] }), { what: 'the live model to continue after the skipped event' });

    // The live read model already skipped it, and equals the fold without it.
    const skip = new Set([poison!.id]);
    const expected = await foldSkipping(skip);
    expect(expected.get('ticket-bad')).toEqual({ versions: [1, 3, 4] });
    expect(diffDocs(expected, await actualDocs(db.pool, 'purchase_read_models'))).toEqual([]);
    expect((await c.failures.get(failure.id)).status).toBe('resolved');
    expect(await c.failures.list({ consumer: Unlucky.name, status: 'all' })).toHaveLength(1);

    // A full rebuild (small chunks, so the poison event falls inside a chunk, not at a boundary).
    replay = startReplayWorker(c);
    const { jobId } = await service.enqueue({ projection: Unlucky.name, chunk: 3 });
    const status = (await waitFor(async () => {
      const s = await service.status(jobId);
      return s && (s.state === 'completed' || s.state === 'failed') ? s : null;
    }, { timeoutMs: 60_000, intervalMs: 100, what: `replay ${jobId}` }))!;
    expect(status.failedReason).toBeNull();
    expect(status.state).toBe('completed');
    const generation = await db.pool.oneFirst(sql.type(z.object({ generation: z.number() }))`SELECT generation FROM event_projections WHERE name = ${Unlucky.name}`);
    expect(generation).toBe(2);

    const rebuilt = await actualDocs(db.pool, 'purchase_read_models');
    expect(diffDocs(expected, rebuilt)).toEqual([]);
    expect(rebuilt.get('ticket-bad')).toEqual({ versions: [1, 3, 4] });
    expect((rebuilt.get('ticket-bad') as Doc).versions).not.toContain(poison!.version);
    // The resolve was not undone by the rebuild, and no new failure was recorded.
    expect(await c.failures.list({ consumer: Unlucky.name, status: 'all' })).toMatchObject([{ id: failure.id, status: 'resolved', skipped: true }]);

    // Live processing goes on in the new generation, past the skipped event.
    await c.bus.dispatch(avail('bad', 11, 10));
    await waitFor(async () => (await settled()) && JSON.stringify(await docOf('ticket-bad')) === JSON.stringify({ versions: [1, 3, 4, 5] }), { what: 'live processing after the rebuild' });
    expect(diffDocs(await foldSkipping(skip), await actualDocs(db.pool, 'purchase_read_models'))).toEqual([]);
    expect(await c.failures.list({ consumer: Unlucky.name, status: 'all' })).toHaveLength(1);
  });
});
