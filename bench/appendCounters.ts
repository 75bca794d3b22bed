import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createDbPool } from '../src/db/pool.js';
import { PostgresEventStore } from '../src/eventStore/PostgresEventStore.js';
import { freshDatabase, median, printTable, type Row } from './support.js';

/**
 * What the append counters cost an append: the same appends on the same database with the append
 * functions of migration 1700000000013 (their INSERT also writes counter deltas) and with those of
 * 1700000000010 (no counting), swapped round by round so that a busy machine's drift hits both sides alike. Also with 4 concurrent producers, where a single
 * hot counter row would have queued every append behind the others.
 */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

const payload = (i: number) => ({ ticketId: `tm-${i}`, platform: ['ticketmaster', 'seatgeek', 'stubhub'][i % 3], eventName: 'Arsenal vs Chelsea', section: 'Block 12', quantity: 4, price: { amountMinor: 8950, currency: 'GBP' } });

export async function runAppendCountersBench(): Promise<Row[]> {
  const db = await freshDatabase('append_counters');
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  const pool = await createDbPool(db.url, { maximumPoolSize: 6 });
  const appendPool = new pg.Pool({ connectionString: db.url, max: 6 });
  appendPool.on('error', () => {});
  const store = new PostgresEventStore(pool, { appendPool });
  let seq = 0;
  const append = async (n: number) => {
    await store.append(`ticket-${seq++}`, Array.from({ length: n }, (_, i) => ({ type: 'TicketDiscovered', payload: payload(i) })), { expectedVersion: 'any' });
  };
  const eps = async (perCall: number, total: number, producers: number) => {
    const calls = Math.max(1, Math.floor(total / perCall / producers));
    const t0 = performance.now();
    await Promise.all(Array.from({ length: producers }, async () => {
      for (let c = 0; c < calls; c++) await append(perCall);
    }));
    return (calls * perCall * producers) / ((performance.now() - t0) / 1000);
  };
  const migration = readFileSync(fileURLToPath(new URL('../migrations/1700000000013_event-counters.sql', import.meta.url)), 'utf8');
  const [up, down] = migration.split('-- Down Migration');
  const fns = (text: string, end: string) => text.slice(text.indexOf('CREATE OR REPLACE FUNCTION hdt_append_events('), text.indexOf(end));
  const counting = fns(up!, '-- Per (projection, generation)');
  const plain = fns(down!, 'DROP TRIGGER');
  const trigger = (on: boolean) => admin.query(on ? counting : plain);

  await eps(100, 5000, 1);
  const rows: Row[] = [];
  for (const [perCall, total, producers] of [
    [1, 2000, 1],
    [100, 20_000, 1],
    [1000, 20_000, 1],
    [100, 20_000, 4],
  ] as const) {
    const on: number[] = [];
    const off: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      for (const side of r % 2 ? [true, false] : [false, true]) {
        await trigger(side);
        (side ? on : off).push(await eps(perCall, total, producers));
      }
    }
    await trigger(true);
    rows.push({
      benchmark: `store.append, ${perCall} event${perCall > 1 ? 's' : ''} per call, ${producers} producer${producers > 1 ? 's' : ''}, counters on`,
      value: median(on),
      unit: 'events/s',
      baseline: 'same appends, append functions without counting',
      baselineValue: median(off),
    });
  }
  await pool.end();
  await appendPool.end();
  await admin.end();
  await db.drop();
  return rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printTable(`Append counters' cost (median of ${ROUNDS} alternated rounds)`, await runAppendCountersBench());
  process.exit(0);
}
