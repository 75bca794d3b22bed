import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PostgresEventStore } from '../../src/eventStore/PostgresEventStore.js';
import { createLogger } from '../../src/logger.js';
import { defineProjection } from '../../src/projections/Projection.js';
import { ReplayEngine } from '../../src/replay/ReplayEngine.js';
import { actualDocs } from '../support/readModels.js';
import { createTestDb, waitFor, type TestDb } from '../support/db.js';

type Doc = { versions: number[] };
/** Records the versions it applied per stream: any reordering or double application shows. */
const Versions = defineProjection<Doc>({
  name: 'VersionsProjection',
  version: 1,
  table: 'purchase_read_models',
  handledTypes: ['TicketAvailabilityChanged'],
  keysOf: (e) => [e.streamId],
  apply(e, docs) {
    const doc = docs.get(e.streamId) ?? { versions: [] };
    docs.set(e.streamId, { versions: [...doc.versions, e.version] });
  },
});
/** A second projection in the same pass, over another table and a type that occurs once per stream. */
const Rare = defineProjection<{ n: number }>({
  name: 'RareProjection',
  version: 1,
  table: 'monitoring_read_models',
  handledTypes: ['TicketDiscovered'],
  keysOf: (e) => [e.streamId],
  apply(e, docs) {
    docs.set(e.streamId, { n: (docs.get(e.streamId)?.n ?? 0) + 1 });
  },
});

const identity = (_t: string, schemaVersion: number, payload: unknown) => ({ schemaVersion, payload });
const avail = (n: number) => ({ type: 'TicketAvailabilityChanged', payload: { ticketId: 't', platform: 'ticketmaster', oldQuantity: n + 1, newQuantity: n } });
const discovered = { type: 'TicketDiscovered', payload: { ticketId: 't', platform: 'ticketmaster', matchId: 'm-1', section: 'A', row: '1', quantity: 2, price: 10, currency: 'EUR', url: 'https://example.com/t' } };

let db: TestDb;
let store: PostgresEventStore;
let engine: ReplayEngine;

beforeAll(async () => {
  db = await createTestDb('rebuild_pass');
  store = new PostgresEventStore(db.pool);
  engine = new ReplayEngine(db.pool, identity, createLogger('silent'));
});
afterAll(async () => {
  await db?.drop();
});

/** The gap-free order shows events only below the cluster-wide xmin horizon (any open transaction, in any database, holds it back). */
const belowHorizon = () =>
  waitFor(async () => db.pool.oneFirst(sql.type(z.object({ ok: z.boolean() }))`SELECT coalesce(max(transaction_id) < pg_snapshot_xmin(pg_current_snapshot()), true) AS ok FROM event_store`), { what: 'the appended events to pass the xmin horizon' });

const checkpoint = async (projection: string, generation: number, stream: string) =>
  db.pool.maybeOneFirst(sql.type(z.object({ version: z.number() }))`
    SELECT version FROM projection_checkpoints WHERE projection = ${projection} AND generation = ${generation} AND stream_id = ${stream}`);

describe('a full rebuild reads each chunk once for every projection', () => {
  it('later-version-with-smaller-transaction-id: a stream whose later event sorts first in the gap-free order is still folded in version order, each event once', async () => {
    for (let i = 0; i < 3; i++) await store.append('ticket-swapped', [avail(i)]);
    await store.append('ticket-plain', [avail(1), avail(2)]);
    // Two transactions appending to one stream can commit in one order while the later one holds the
    // smaller transaction id (it wrote to another stream first). Give v3 the smallest id of all.
    await db.pool.query(sql.unsafe`
      UPDATE event_store SET transaction_id = (SELECT min(transaction_id::text::int8) - 1 FROM event_store)::text::xid8
      WHERE stream_id = 'ticket-swapped' AND version = 3`);
    await belowHorizon();
    const [r] = await engine.runMany([Versions], { jobId: 'swapped', from: null, chunk: 1 });
    expect(r!.events).toBe(5);
    const docs = await actualDocs(db.pool, 'purchase_read_models');
    expect(docs.get('ticket-swapped')).toEqual({ versions: [1, 2, 3] });
    expect(docs.get('ticket-plain')).toEqual({ versions: [1, 2] });
    expect(await checkpoint(Versions.name, r!.generation, 'ticket-swapped')).toBe(3);
  });

  it('long-stream-folded-a-chunk-at-a-time: a 3,000-event stream is read a chunk at a time, never whole, and two projections share the pass', { timeout: 60_000 }, async () => {
    await store.append('ticket-long', [discovered]);
    for (let b = 0; b < 3; b++) await store.append('ticket-long', Array.from({ length: 1000 }, (_, i) => avail(b * 1000 + i)));
    await belowHorizon();
    const seen: number[] = [];
    const [versions, rare] = await engine.runMany([Versions, Rare], {
      jobId: 'long',
      from: null,
      chunk: 250,
      onProgress: async (p) => {
        if (p.phase !== 'replaying' || p.done === 0) return;
        // Mid-rebuild, the new generation's checkpoint on the long stream is where the chunks got to,
        // not at the stream's head (which a whole-stream read would put it at after the first chunk).
        const generation = await db.pool.oneFirst(sql.type(z.object({ g: z.number() }))`SELECT generation + 1 AS g FROM event_projections WHERE name = ${Versions.name}`);
        seen.push((await checkpoint(Versions.name, generation, 'ticket-long')) ?? 0);
      },
    });
    expect(seen.length).toBeGreaterThan(10);
    expect(Math.max(...seen.slice(0, -1))).toBeLessThan(3001);
    expect(seen[0]).toBeLessThanOrEqual(250 + 5);
    const docs = await actualDocs(db.pool, 'purchase_read_models');
    expect((docs.get('ticket-long') as Doc).versions).toEqual(Array.from({ length: 3000 }, (_, i) => i + 2));
    expect((await actualDocs(db.pool, 'monitoring_read_models')).get('ticket-long')).toEqual({ n: 1 });
    // The projection that saw one event on the stream follows it to its head too, so a later chunk
    // never re-reads the stream from that one event.
    expect(await checkpoint(Rare.name, rare!.generation, 'ticket-long')).toBe(3001);
    expect(versions!.events).toBe(3000 + 5);
  });
});
