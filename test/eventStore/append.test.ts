import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConcurrencyError, IdempotencyConflictError } from '../../src/eventStore/errors.js';
import { PostgresEventStore } from '../../src/eventStore/PostgresEventStore.js';
import { createTestDb, type TestDb } from '../support/db.js';

let db: TestDb;
let store: PostgresEventStore;
let appendPool: pg.Pool;
const ev = (n = 0, id?: string) => ({ id, type: 'TestEvent', payload: { n }, metadata: { source: 'test' } });
const count = (q: ReturnType<typeof sql.unsafe>) => db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`${q}`);

beforeAll(async () => {
  db = await createTestDb('append');
  // The production wiring: appends go through the plain pg fast path.
  appendPool = new pg.Pool({ connectionString: db.url, max: 8 });
  store = new PostgresEventStore(db.pool, { appendPool });
});
afterAll(async () => {
  await appendPool?.end();
  await db?.drop();
});

describe('append', () => {
  it('assigns 1-based versions and global positions, and writes one outbox row per event', async () => {
    const r = await store.append('s-basic', [ev(1), ev(2), ev(3)], { expectedVersion: 'no_stream' });
    expect(r.events.map((e) => e.version)).toEqual([1, 2, 3]);
    expect(r.nextExpectedVersion).toBe(3);
    expect(r.events[1]!.position).toBeGreaterThan(r.events[0]!.position);
    const events = await store.readStream('s-basic');
    expect(events.map((e) => e.payload)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    expect(events[0]!.metadata.source).toBe('test');
    const outbox = await count(sql.unsafe`SELECT count(*) AS n FROM event_outbox WHERE stream_id = 's-basic'`);
    expect(outbox).toBe(3);
  });

  it('checks every kind of expected version and writes nothing on a mismatch', async () => {
    await expect(store.append('s-ev', [ev()], { expectedVersion: 'stream_exists' })).rejects.toBeInstanceOf(ConcurrencyError);
    await expect(store.append('s-ev', [ev()], { expectedVersion: 2 })).rejects.toBeInstanceOf(ConcurrencyError);
    await store.append('s-ev', [ev()], { expectedVersion: 0 });
    await expect(store.append('s-ev', [ev()], { expectedVersion: 'no_stream' })).rejects.toBeInstanceOf(ConcurrencyError);
    await expect(store.append('s-ev', [ev()], { expectedVersion: 0 })).rejects.toThrow(/expected 0, actual 1/);
    await store.append('s-ev', [ev()], { expectedVersion: 1 });
    await store.append('s-ev', [ev()], { expectedVersion: 'stream_exists' });
    await store.append('s-ev', [ev()], { expectedVersion: 'any' });
    expect(await store.streamVersion('s-ev')).toBe(4);
    expect((await store.readStream('s-ev')).map((e) => e.version)).toEqual([1, 2, 3, 4]);
  });

  it('two concurrent appends with the same expected version: exactly one wins, no version gap or duplicate', async () => {
    await store.append('s-race', [ev()], { expectedVersion: 'no_stream' });
    for (let round = 0; round < 20; round++) {
      const current = (await store.streamVersion('s-race'))!;
      const results = await Promise.allSettled([
        store.append('s-race', [ev(round), ev(round)], { expectedVersion: current }),
        store.append('s-race', [ev(round)], { expectedVersion: current }),
      ]);
      const ok = results.filter((r) => r.status === 'fulfilled');
      const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
      expect(ok).toHaveLength(1);
      expect(failed).toHaveLength(1);
      expect(failed[0]!.reason).toBeInstanceOf(ConcurrencyError);
    }
    const versions = (await store.readStream('s-race')).map((e) => e.version);
    expect(versions).toEqual(versions.map((_, i) => i + 1));
    expect(await store.streamVersion('s-race')).toBe(versions.length);
  });

  it('re-appending the same event ids is a no-op returning the stored positions', async () => {
    const id1 = randomUUID();
    const id2 = randomUUID();
    const first = await store.append('s-idem', [ev(1, id1), ev(2, id2)]);
    const before = await count(sql.unsafe`SELECT count(*) AS n FROM event_store`);
    const again = await store.append('s-idem', [ev(1, id1), ev(2, id2)], { expectedVersion: 'no_stream' });
    expect(again.alreadyStored).toBe(true);
    expect(again.events).toEqual(first.events);
    expect(await count(sql.unsafe`SELECT count(*) AS n FROM event_store`)).toBe(before);
    expect(await store.streamVersion('s-idem')).toBe(2);
  });

  it('concurrent identical retries store the event once', async () => {
    const id = randomUUID();
    const results = await Promise.all(Array.from({ length: 6 }, () => store.append('s-idem-race', [ev(9, id)])));
    expect(new Set(results.map((r) => r.events[0]!.position)).size).toBe(1);
    expect((await store.readStream('s-idem-race')).length).toBe(1);
  });

  it('a batch of which only some ids are stored is refused and writes nothing', async () => {
    const id = randomUUID();
    await store.append('s-partial', [ev(1, id)]);
    await expect(store.append('s-partial', [ev(1, id), ev(2)])).rejects.toBeInstanceOf(IdempotencyConflictError);
    await expect(store.append('s-other', [ev(1, id)])).rejects.toThrow(/another stream/);
    expect((await store.readStream('s-partial')).length).toBe(1);
    expect(await store.streamVersion('s-other')).toBeNull();
  });

  it('appendMany is all or nothing across streams', async () => {
    await store.append('s-m2', [ev()]);
    await expect(
      store.appendMany([
        { streamId: 's-m1', events: [ev(1)], expectedVersion: 'no_stream' },
        { streamId: 's-m2', events: [ev(2)], expectedVersion: 'no_stream' },
      ]),
    ).rejects.toBeInstanceOf(ConcurrencyError);
    expect(await store.streamVersion('s-m1')).toBeNull();
    const ok = await store.appendMany([
      { streamId: 's-m1', events: [ev(1)], expectedVersion: 'no_stream' },
      { streamId: 's-m2', events: [ev(2)], expectedVersion: 1 },
    ]);
    expect(ok.map((r) => r.nextExpectedVersion)).toEqual([1, 2]);
  });

  it('appendMany checks every kind of expected version per stream, names the stream at fault, and numbers each stream from its own version', async () => {
    await store.append('s-mx-a', [ev(), ev()]);
    await store.append('s-mx-b', [ev()]);
    const refused: [string, Parameters<typeof store.append>[2], RegExp][] = [
      ['s-mx-a', { expectedVersion: 'no_stream' }, /s-mx-a: expected no_stream, actual 2/],
      ['s-mx-new', { expectedVersion: 'stream_exists' }, /s-mx-new: expected stream_exists, actual no_stream/],
      ['s-mx-a', { expectedVersion: 1 }, /s-mx-a: expected 1, actual 2/],
      ['s-mx-new', { expectedVersion: 3 }, /s-mx-new: expected 3, actual no_stream/],
      ['s-mx-b', { expectedVersion: 0 }, /s-mx-b: expected 0, actual 1/],
    ];
    for (const [streamId, options, message] of refused) {
      const batch = [
        { streamId: 's-mx-ok', events: [ev()], expectedVersion: 'any' as const },
        { streamId, events: [ev(), ev()], ...options },
      ];
      await expect(store.appendMany(batch)).rejects.toThrow(message);
    }
    expect(await store.streamVersion('s-mx-ok')).toBeNull();
    expect(await store.streamVersion('s-mx-new')).toBeNull();
    expect(await store.streamVersion('s-mx-a')).toBe(2);

    const ok = await store.appendMany([
      { streamId: 's-mx-b', events: [ev(1), ev(2), ev(3)], expectedVersion: 1 },
      { streamId: 's-mx-a', events: [ev(4)], expectedVersion: 'stream_exists' },
      { streamId: 's-mx-new', events: [ev(5), ev(6)], expectedVersion: 0 },
      { streamId: 's-mx-ok', events: [ev(7)], expectedVersion: 'no_stream' },
      { streamId: 's-mx-any', events: [ev(8)], expectedVersion: 'any' },
    ]);
    expect(ok.map((r) => [r.streamId, r.events.map((e) => e.version)])).toEqual([
      ['s-mx-b', [2, 3, 4]],
      ['s-mx-a', [3]],
      ['s-mx-new', [1, 2]],
      ['s-mx-ok', [1]],
      ['s-mx-any', [1]],
    ]);
    // Within a stream, positions follow versions; every event has its outbox row.
    for (const r of ok) expect(r.events.map((e) => e.position)).toEqual([...r.events.map((e) => e.position)].sort((a, b) => a - b));
    expect((await store.readStream('s-mx-b')).map((e) => e.payload)).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }, { n: 3 }]);
    const positions = ok.flatMap((r) => r.events.map((e) => e.position));
    expect(await count(sql.unsafe`SELECT count(*) AS n FROM event_outbox WHERE global_position = ANY(${sql.array(positions, 'int8')})`)).toBe(8);
  });

  it('appendOn joins a caller transaction: rolled back with it, and a conflict inside it is a ConcurrencyError', async () => {
    await expect(
      db.pool.transaction(async (tx) => {
        await store.appendOn(tx, { streamId: 's-tx', events: [ev(1)] });
        throw new Error('caller failed');
      }),
    ).rejects.toThrow('caller failed');
    expect(await store.streamVersion('s-tx')).toBeNull();
    await store.append('s-tx', [ev(1)]);
    await expect(
      db.pool.transaction((tx) => store.appendOn(tx, { streamId: 's-tx', events: [ev(2)], expectedVersion: 'no_stream' })),
    ).rejects.toBeInstanceOf(ConcurrencyError);
  });

  it('a retried appendMany whose events are all stored returns the stored results', async () => {
    const a = [ev(1, randomUUID())];
    const b = [ev(2, randomUUID()), ev(3, randomUUID())];
    const first = await store.appendMany([
      { streamId: 's-r1', events: a, expectedVersion: 'no_stream' },
      { streamId: 's-r2', events: b, expectedVersion: 'no_stream' },
    ]);
    const again = await store.appendMany([
      { streamId: 's-r1', events: a, expectedVersion: 'no_stream' },
      { streamId: 's-r2', events: b, expectedVersion: 'no_stream' },
    ]);
    expect(again.map((r) => r.alreadyStored)).toEqual([true, true]);
    expect(again.map((r) => r.events)).toEqual(first.map((r) => r.events));
  });

  it('rejects an empty append and duplicate ids within one append', async () => {
    await expect(store.append('s-empty', [])).rejects.toThrow(RangeError);
    const id = randomUUID();
    await expect(store.append('s-dup', [ev(1, id), ev(2, id)])).rejects.toBeInstanceOf(IdempotencyConflictError);
  });
});
