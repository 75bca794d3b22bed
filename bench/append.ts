import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { createDbPool } from '../src/db/pool.js';
import { PostgresEventStore } from '../src/eventStore/PostgresEventStore.js';
import { freshDatabase, median, printTable, type Row } from './support.js';

/**
 * Append throughput of the event store against a raw baseline measured in the same run on the same
 * database: a multi-row INSERT … SELECT FROM unnest(...) (plus its outbox rows, in one statement) into a
 * table of the same shape and indexes, sent over plain `pg` with no concurrency control at all.
 */
const TOTAL = Number(process.env.BENCH_APPEND_EVENTS ?? 20_000);
const SINGLE_TOTAL = Number(process.env.BENCH_APPEND_SINGLE_EVENTS ?? 3_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

const payload = (i: number) => ({
  ticketId: `tm-${i}`,
  platform: 'ticketmaster',
  eventName: 'Arsenal vs Chelsea',
  venue: 'Emirates Stadium, London',
  eventDate: '2027-03-14T15:00:00Z',
  section: 'Block 12',
  row: 'F',
  quantity: 4,
  price: { amountMinor: 8950, currency: 'GBP' },
  url: `https://www.ticketmaster.co.uk/event/${i}`,
});

export async function runAppendBench(): Promise<Row[]> {
  const db = await freshDatabase('append');
  const raw = new pg.Client({ connectionString: db.url });
  await raw.connect();
  await raw.query(`CREATE TABLE bench_raw (LIKE event_store INCLUDING ALL); CREATE TABLE bench_raw_outbox (LIKE event_outbox INCLUDING ALL)`);
  const pool = await createDbPool(db.url, { maximumPoolSize: 2 });
  const appendPool = new pg.Pool({ connectionString: db.url, max: 2 });
  appendPool.on('error', () => {});
  const store = new PostgresEventStore(pool, { appendPool });
  let streamSeq = 0;

  const rawInsert = async (n: number) => {
    const stream = `raw-${streamSeq++}`;
    const ids = Array.from({ length: n }, () => randomUUID());
    await raw.query(
      `WITH ins AS (
         INSERT INTO bench_raw (id, stream_id, stream_type, version, event_type, schema_version, payload, metadata, occurred_at)
         SELECT t.id, $2, 'ticket', t.ord::int, t.typ, 1, t.pl, t.md, now()
         FROM unnest($1::uuid[], $3::text[], $4::jsonb[], $5::jsonb[]) WITH ORDINALITY AS t(id, typ, pl, md, ord)
         RETURNING global_position, id, stream_id, event_type)
       INSERT INTO bench_raw_outbox (global_position, event_id, stream_id, event_type) SELECT global_position, id, stream_id, event_type FROM ins`,
      [ids, stream, ids.map(() => 'TicketDiscovered'), ids.map((_, i) => JSON.stringify(payload(i))), ids.map(() => JSON.stringify({ source: 'bench' }))],
    );
  };
  const storeAppend = async (n: number) => {
    const stream = `ticket-${streamSeq++}`;
    await store.append(
      stream,
      Array.from({ length: n }, (_, i) => ({ type: 'TicketDiscovered', payload: payload(i), metadata: { source: 'bench' } })),
      { expectedVersion: 'any' },
    );
  };

  const measure = async (fn: (n: number) => Promise<void>, perCall: number, total: number) => {
    const calls = Math.max(1, Math.floor(total / perCall));
    const t0 = performance.now();
    for (let c = 0; c < calls; c++) await fn(perCall);
    return (calls * perCall) / ((performance.now() - t0) / 1000);
  };

  // Warm up both paths (plans, caches), then alternate rounds so drift hits both sides equally.
  await measure(rawInsert, 100, 2000);
  await measure(storeAppend, 100, 2000);
  const rows: Row[] = [];
  for (const [perCall, total] of [
    [1, SINGLE_TOTAL],
    [100, TOTAL],
    [1000, TOTAL],
  ] as const) {
    const base: number[] = [];
    const ours: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      base.push(await measure(rawInsert, perCall, total));
      ours.push(await measure(storeAppend, perCall, total));
    }
    rows.push({
      benchmark: perCall === 1 ? 'store.append, 1 event per call' : `store.append, ${perCall} events per call`,
      value: median(ours),
      unit: 'events/s',
      baseline: perCall === 1 ? 'raw INSERT+outbox, 1 row per statement' : `raw unnest INSERT+outbox ×${perCall}`,
      baselineValue: median(base),
    });
  }
  await raw.end();
  await pool.end();
  await appendPool.end();
  await db.drop();
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await runAppendBench();
  printTable('Append throughput (1 client, sequential calls)', rows);
}
