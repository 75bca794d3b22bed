import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleEvent } from '../../src/domain/index.js';
import { ConcurrencyError, IdempotencyConflictError } from '../../src/eventStore/errors.js';
import { PostgresEventStore } from '../../src/eventStore/PostgresEventStore.js';
import { startHarness, type Harness } from '../http/support.js';
import { createTestDb, type TestDb } from '../support/db.js';

let db: TestDb;
let appendPool: pg.Pool;
let stores: [string, PostgresEventStore][];
const ev = (n: number, id = randomUUID()) => ({ id, type: 'TestEvent', payload: { n } });
const streamCount = (streamId: string) => db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM event_store WHERE stream_id = ${streamId}`);

beforeAll(async () => {
  db = await createTestDb('partial_overlap');
  appendPool = new pg.Pool({ connectionString: db.url, max: 4 });
  // Both wirings: the pg fast path (production) and slonik.
  stores = [
    ['fast path', new PostgresEventStore(db.pool, { appendPool })],
    ['slonik', new PostgresEventStore(db.pool)],
  ];
});
afterAll(async () => {
  await appendPool?.end();
  await db?.drop();
});

describe('partial-overlap-batch-retry (store)', () => {
  it('a batch of one already stored stream plus a new stream stores the new one and answers the stored positions for the old', async () => {
    for (const [label, store] of stores) {
      const a = [ev(1), ev(2)];
      const first = await store.append(`a-${label}`, a);
      const b = [ev(3), ev(4), ev(5)];
      const c = [ev(6)];
      const r = await store.appendMany([
        { streamId: `a-${label}`, events: a },
        { streamId: `b-${label}`, events: b },
        { streamId: `c-${label}`, events: c, expectedVersion: 'no_stream' },
      ]);
      expect(r[0]!.alreadyStored, label).toBe(true);
      expect(r[0]!.events.map((e) => [e.id, e.version, e.position])).toEqual(first.events.map((e) => [e.id, e.version, e.position]));
      expect(r[1]!.alreadyStored).toBe(false);
      expect(r[1]!.events.map((e) => e.id)).toEqual(b.map((e) => e.id));
      expect(r[1]!.events.map((e) => e.version)).toEqual([1, 2, 3]);
      expect(r[2]!.events.map((e) => e.id)).toEqual(c.map((e) => e.id));
      expect(await streamCount(`a-${label}`)).toBe(2);
      // The whole batch again: every stream is an exact retry now.
      const again = await store.appendMany([
        { streamId: `a-${label}`, events: a },
        { streamId: `b-${label}`, events: b },
        { streamId: `c-${label}`, events: c, expectedVersion: 'no_stream' },
      ]);
      expect(again.every((x) => x.alreadyStored)).toBe(true);
      expect(again.map((x) => x.events.map((e) => e.position))).toEqual(r.map((x) => x.events.map((e) => e.position)));
      expect(await streamCount(`b-${label}`)).toBe(3);
    }
  });

  it('a stored stream partially resent inside a batch is still a 409 naming that stream, and nothing is stored', async () => {
    const store = stores[0]![1];
    const a = [ev(1), ev(2)];
    await store.append('pa', a);
    const err = await store.appendMany([{ streamId: 'pb', events: [ev(3)] }, { streamId: 'pa', events: [a[0]!, ev(9)] }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IdempotencyConflictError);
    expect((err as IdempotencyConflictError).streamId).toBe('pa');
    expect(await streamCount('pb')).toBe(0);
    expect(await streamCount('pa')).toBe(2);
  });

  it('a new stream with a wrong expected version next to a stored stream is a 409 naming the new stream', async () => {
    const store = stores[0]![1];
    const a = [ev(1)];
    await store.append('va', a);
    await store.append('vb', [ev(2)]);
    const err = await store.appendMany([{ streamId: 'va', events: a }, { streamId: 'vb', events: [ev(3)], expectedVersion: 'no_stream' }]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConcurrencyError);
    expect((err as ConcurrencyError).streamId).toBe('vb');
    expect(await streamCount('vb')).toBe(1);
  });
});

describe('partial-overlap-batch-retry (HTTP)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness('http_partial_overlap');
  });
  afterAll(async () => {
    await h?.close();
  });

  it('POST /api/events with stream A already stored and stream B new: 201, old positions for A, new for B; the repeat is an idempotent replay', async () => {
    const a = [
      { id: randomUUID(), type: 'TicketDiscovered', payload: sampleEvent('TicketDiscovered', { ticketId: 'po-a' }).payload },
      { id: randomUUID(), type: 'TicketSoldOut', payload: sampleEvent('TicketSoldOut', { ticketId: 'po-a' }).payload },
    ];
    const b = [{ id: randomUUID(), type: 'TicketDiscovered', payload: sampleEvent('TicketDiscovered', { ticketId: 'po-b' }).payload }];
    const first = await h.api('POST', '/api/events', { body: { events: a } });
    expect(first.status, first.text).toBe(201);
    const mixed = await h.api('POST', '/api/events', { body: { events: [...a, ...b] } });
    expect(mixed.status, mixed.text).not.toBe(500);
    expect(mixed.status, mixed.text).toBe(201);
    expect(mixed.headers.get('idempotent-replay')).toBeNull();
    const events = mixed.body.data.events as { id: string; streamId: string; position: number; version: number }[];
    expect(events.slice(0, 2)).toEqual(first.body.data.events);
    expect(events[2]).toMatchObject({ id: b[0]!.id, streamId: 'ticket-po-b', version: 1 });
    expect(events[2]!.position).toBeGreaterThan(events[1]!.position);
    const repeat = await h.api('POST', '/api/events', { body: { events: [...a, ...b] } });
    expect(repeat.status, repeat.text).toBe(201);
    expect(repeat.headers.get('idempotent-replay')).toBe('true');
    expect(repeat.body.data.events).toEqual(events);
    const n = await h.db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM event_store`);
    expect(n).toBe(3);
  });
});
