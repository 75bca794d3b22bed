import pg from 'pg';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createDbPool } from '../src/db/pool.js';
import { createEventGenerator } from '../src/demo/eventGenerator.js';
import { eventRegistry } from '../src/domain/index.js';
import { PostgresEventStore } from '../src/eventStore/PostgresEventStore.js';
import { defaultProjections } from '../src/projections/index.js';
import { freshDatabase, horizonWatch, printTable, resultLine, waitForHorizon, type Row } from './support.js';

/**
 * Full rebuild of every projection from a generated store, against same-run ceilings: the fold+unnest
 * ceiling (bench/replayChild.ts: chunks of 1,000 in the gap-free order, folded in JS with the
 * projections' own `apply`, one unnest upsert per projection per chunk + cursor, one transaction per
 * chunk) and a bare keyset read of the whole store. Also the naive rebuild (one transaction per event),
 * and the peak RSS of the rebuild with and without one extra very long stream. Each rebuild and the
 * fold+unnest ceiling run in a child process of their own, so their RSS is theirs alone.
 */
const N = Number(process.env.BENCH_REPLAY_EVENTS ?? 100_000);
/** Events of the one extra stream for the memory check (0 = skip it). */
const LONG = Number(process.env.BENCH_LONG_STREAM ?? 300_000);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface ChildResult {
  events: number;
  seconds: number;
  maxRssKb: number;
}

/** Runs bench/replayChild.ts in its own Node process with the flags `npm run replay` uses. */
async function child(mode: 'rebuild' | 'ceiling', url: string): Promise<ChildResult & { eps: number; rssMb: number }> {
  const p = spawn(process.execPath, ['--max-semi-space-size=64', ...(process.env.BENCH_REPLAY_NODE_FLAGS?.split(' ').filter(Boolean) ?? []), '--import', 'tsx', 'bench/replayChild.ts', mode], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: url, LOG_LEVEL: 'error' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let last = '';
  createInterface({ input: p.stdout! }).on('line', (l) => void (l.trim() && (last = l)));
  const code = await new Promise<number | null>((r) => p.on('exit', r));
  if (code !== 0) throw new Error(`replay child (${mode}) exited with code ${code}`);
  const r = JSON.parse(last) as ChildResult;
  return { ...r, eps: r.events / r.seconds, rssMb: r.maxRssKb / 1024 };
}

type Append = { streamId: string; streamType: string; events: { type: string; payload: unknown; schemaVersion: number }[] };

function toAppends(inputs: { type: string; payload: unknown }[]): Append[] {
  const byStream = new Map<string, Append>();
  for (const e of inputs) {
    const v = eventRegistry.validate(e.type, e.payload);
    const { streamId, streamType } = eventRegistry.streamOf(v);
    const s = byStream.get(streamId) ?? { streamId, streamType, events: [] };
    s.events.push({ type: v.type, payload: v.payload, schemaVersion: eventRegistry.currentVersion(v.type) });
    byStream.set(streamId, s);
  }
  return [...byStream.values()];
}

export async function runReplayBenchWithResult(): Promise<{ rows: Row[]; result: Record<string, number> }> {
  const watch = horizonWatch();
  const db = await freshDatabase('replay');
  const pool = await createDbPool(db.url, { maximumPoolSize: 4 });
  const appendPool = new pg.Pool({ connectionString: db.url, max: 2 });
  appendPool.on('error', () => {});
  const store = new PostgresEventStore(pool, { appendPool });
  const gen = createEventGenerator({ seed: 3, streams: N / 10, runId: 'rb' });
  for (let i = 0; i < N; i += 1000) await store.appendMany(toAppends(gen.batch(Math.min(1000, N - i))));
  await appendPool.query('TRUNCATE event_outbox');
  await appendPool.query('VACUUM ANALYZE');
  await waitForHorizon(appendPool);

  // Keyset read of everything once in the gap-free order, no writes.
  let t0 = performance.now();
  let read = 0;
  let cursor = { tx: '0', pos: 0 };
  for (;;) {
    const { rows } = await appendPool.query(
      `SELECT id, stream_id, version, event_type, payload, transaction_id::text AS tx, global_position AS pos FROM event_store
       WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint) AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
       ORDER BY transaction_id, global_position LIMIT 1000`,
      [cursor.tx, cursor.pos],
    );
    if (!rows.length) break;
    read += rows.length;
    cursor = { tx: rows[rows.length - 1].tx, pos: Number(rows[rows.length - 1].pos) };
  }
  const keysetRead = read / ((performance.now() - t0) / 1000);

  // Fold+unnest ceiling, into scratch copies of the read-model tables.
  for (const p of defaultProjections) await appendPool.query(`CREATE TABLE ceiling_${p.table} (LIKE ${p.table} INCLUDING ALL)`);
  await appendPool.query(`CREATE TABLE ceiling_cursor (name text PRIMARY KEY, tx xid8 NOT NULL DEFAULT '0', pos bigint NOT NULL DEFAULT 0, events bigint NOT NULL DEFAULT 0, updated_at timestamptz NOT NULL DEFAULT now());
                          INSERT INTO ceiling_cursor (name) VALUES ('ceiling')`);
  const ceiling = await child('ceiling', db.url);

  // Our rebuild of all 3 projections (ReplayEngine, chunk 1,000), in its own process.
  const ours = await child('rebuild', db.url);

  // A transaction elsewhere that holds the horizon mid-run ends a gap-free read early.
  for (const [what, r] of [['fold+unnest ceiling', ceiling], ['rebuild', ours]] as const) {
    if (r.events !== N) console.warn(`warning: the ${what} applied ${r.events} events of ${N} (the xmin horizon was held during it?)`);
  }
  // Sanity: the ceiling did the same fold (its documents equal the rebuilt read models).
  let mismatches = 0;
  for (const p of defaultProjections) {
    const { rows } = await appendPool.query(
      `SELECT count(*)::int AS n FROM ceiling_${p.table} c FULL JOIN (SELECT * FROM ${p.table} WHERE doc <> 'null'::jsonb) t USING (id)
       WHERE c.doc IS DISTINCT FROM t.doc`,
    );
    mismatches += rows[0].n;
    if (rows[0].n > 0) {
      const { rows: ex } = await appendPool.query(
        `SELECT id, c.doc AS ceiling, t.doc AS rebuilt FROM ceiling_${p.table} c FULL JOIN (SELECT * FROM ${p.table} WHERE doc <> 'null'::jsonb) t USING (id)
         WHERE c.doc IS DISTINCT FROM t.doc ORDER BY id LIMIT 2`,
      );
      for (const e of ex) console.warn(`${p.table} ${e.id}:\n  ceiling ${JSON.stringify(e.ceiling)}\n  rebuilt ${JSON.stringify(e.rebuilt)}`);
    }
  }
  if (mismatches > 0) console.warn(`warning: ${mismatches} documents of the fold+unnest ceiling differ from the rebuilt read models`);
  for (const p of defaultProjections) await appendPool.query(`DROP TABLE ceiling_${p.table}`);
  await appendPool.query('DROP TABLE ceiling_cursor');

  // Naive: one transaction per event, read-modify-write of its document, for 5,000 events.
  await appendPool.query('CREATE TABLE naive_rm (id text PRIMARY KEY, doc jsonb)');
  const sample = Math.min(5000, N);
  t0 = performance.now();
  const { rows: events } = await appendPool.query('SELECT stream_id, payload FROM event_store ORDER BY global_position LIMIT $1', [sample]);
  for (const e of events) {
    const c = await appendPool.connect();
    try {
      await c.query('BEGIN');
      const cur = await c.query('SELECT doc FROM naive_rm WHERE id = $1 FOR UPDATE', [e.stream_id]);
      const doc = { ...(cur.rows[0]?.doc ?? {}), ...e.payload };
      await c.query('INSERT INTO naive_rm VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc', [e.stream_id, doc]);
      await c.query('COMMIT');
    } finally {
      c.release();
    }
  }
  const naive = sample / ((performance.now() - t0) / 1000);

  // The same store plus one ticket stream of LONG events (discovered, then repriced), rebuilt again.
  let long: Awaited<ReturnType<typeof child>> | undefined;
  if (LONG > 0) {
    const ticketId = 'long-stream-1';
    let price = 10_000;
    const next = (k: number) => {
      if (k === 0) return { type: 'TicketDiscovered', payload: { ticketId, platform: 'stubhub', eventName: 'Arsenal vs Chelsea', venue: 'Emirates Stadium', eventDate: '2027-03-14T15:00:00Z', quantity: 4, price: { amountMinor: price, currency: 'GBP' } } };
      const old = price;
      price = 5_000 + ((price * 7 + k) % 20_000);
      return { type: 'TicketPriceChanged', payload: { ticketId, platform: 'stubhub', oldPrice: { amountMinor: old, currency: 'GBP' }, newPrice: { amountMinor: price, currency: 'GBP' } } };
    };
    for (let i = 0; i < LONG; i += 1000) await store.appendMany(toAppends(Array.from({ length: Math.min(1000, LONG - i) }, (_, j) => next(i + j))));
    await appendPool.query('TRUNCATE event_outbox');
    await appendPool.query('VACUUM ANALYZE');
    await waitForHorizon(appendPool);
    long = await child('rebuild', db.url);
    if (long.events !== N + LONG) console.warn(`warning: the rebuild with the long stream applied ${long.events} events of ${N + LONG}`);
  }

  await pool.end();
  await appendPool.end();
  await db.drop();
  const held = await watch.stop();
  const n = (x: number) => x.toLocaleString('en-US');
  const rows: Row[] = [
    { benchmark: `rebuild of all 3 projections (${n(ours.events)} events applied, chunk 1,000)`, value: ours.eps, unit: 'events/s', baseline: `fold+unnest ceiling (${n(ceiling.events)} events, chunk 1,000)`, baselineValue: ceiling.eps },
    { benchmark: 'same rebuild', value: ours.eps, unit: 'events/s', baseline: 'keyset read of the whole store, no writes', baselineValue: keysetRead },
    { benchmark: 'same rebuild', value: ours.eps, unit: 'events/s', baseline: 'naive replay: one transaction per event', baselineValue: naive },
    { benchmark: 'documents where the fold+unnest ceiling differs from the rebuilt read models (expect 0)', value: mismatches, unit: '' },
    { benchmark: 'peak RSS of the rebuild process', value: ours.rssMb, unit: 'MB', baseline: 'peak RSS of the fold+unnest ceiling process', baselineValue: ceiling.rssMb },
  ];
  if (long) {
    rows.push(
      { benchmark: `peak RSS of the rebuild with one extra ${n(LONG)}-event stream`, value: long.rssMb, unit: 'MB', baseline: 'same rebuild without it', baselineValue: ours.rssMb },
      { benchmark: `rebuild with the extra stream (${n(long.events)} events applied)`, value: long.eps, unit: 'events/s', baseline: 'same rebuild without it', baselineValue: ours.eps },
    );
  }
  rows.push({ benchmark: 'longest xmin-horizon hold by another session during the run (0 = none over 1 s; else the figures are unreliable)', value: held, unit: 's' });
  const result = {
    rebuild_eps: ours.eps,
    ceiling_eps: ceiling.eps,
    ratio_to_ceiling: ours.eps / ceiling.eps,
    peak_rss_mb: ours.rssMb,
    peak_rss_mb_long_stream: long?.rssMb ?? NaN,
  };
  return { rows, result };
}

export async function runReplayBench(): Promise<Row[]> {
  return (await runReplayBenchWithResult()).rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { rows, result } = await runReplayBenchWithResult();
  printTable(`Replay (${N.toLocaleString('en-US')} events in the store${LONG > 0 ? `; memory check with one extra ${LONG.toLocaleString('en-US')}-event stream` : ''})`, rows);
  console.log(resultLine(result));
  process.exit(0);
}
