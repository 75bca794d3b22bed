import pg from 'pg';
import { createDbPool } from '../src/db/pool.js';
import { createEventGenerator } from '../src/demo/eventGenerator.js';
import { eventRegistry } from '../src/domain/index.js';
import { PostgresEventStore } from '../src/eventStore/PostgresEventStore.js';
import { createLogger } from '../src/logger.js';
import { defaultProjections } from '../src/projections/index.js';
import { ReplayEngine } from '../src/replay/ReplayEngine.js';
import { freshDatabase, printTable, type Row } from './support.js';

/**
 * Full rebuild of every projection from a generated store, against the same-run ceiling of any
 * replay: reading the whole store once in the gap-free keyset order (pages of 1,000) and doing nothing
 * with it. Also the naive rebuild: one transaction per event (read-modify-write of its document).
 */
const N = Number(process.env.BENCH_REPLAY_EVENTS ?? 100_000);

export async function runReplayBench(): Promise<Row[]> {
  const db = await freshDatabase('replay');
  const pool = await createDbPool(db.url, { maximumPoolSize: 4 });
  const appendPool = new pg.Pool({ connectionString: db.url, max: 2 });
  appendPool.on('error', () => {});
  const store = new PostgresEventStore(pool, { appendPool });
  const gen = createEventGenerator({ seed: 3, streams: N / 10, runId: 'rb' });
  for (let i = 0; i < N; i += 1000) {
    const batch = gen.batch(1000).map((e) => {
      const v = eventRegistry.validate(e.type, e.payload);
      return { ...eventRegistry.streamOf(v), event: { type: v.type, payload: v.payload, schemaVersion: eventRegistry.currentVersion(v.type) } };
    });
    const byStream = new Map<string, { streamType: string; events: { type: string; payload: unknown; schemaVersion: number }[] }>();
    for (const b of batch) {
      const s = byStream.get(b.streamId) ?? { streamType: b.streamType, events: [] };
      s.events.push(b.event);
      byStream.set(b.streamId, s);
    }
    await store.appendMany([...byStream].map(([streamId, s]) => ({ streamId, streamType: s.streamType, events: s.events })));
  }
  await appendPool.query('TRUNCATE event_outbox');
  await appendPool.query('VACUUM ANALYZE');

  // Ceiling: read everything once in the gap-free order.
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
  const ceiling = read / ((performance.now() - t0) / 1000);

  const engine = new ReplayEngine(pool, (_t, schemaVersion, payload) => ({ schemaVersion, payload }), createLogger('silent'));
  t0 = performance.now();
  let replayed = 0;
  for (const p of defaultProjections) replayed += (await engine.run(p, { jobId: `bench-${p.name}`, from: null, chunk: 1000 })).events;
  const ours = replayed / ((performance.now() - t0) / 1000);

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

  await pool.end();
  await appendPool.end();
  await db.drop();
  return [
    { benchmark: `rebuild of all 3 projections (${replayed.toLocaleString('en-US')} events applied, chunk 1,000)`, value: ours, unit: 'events/s', baseline: 'keyset read of the whole store, no writes', baselineValue: ceiling },
    { benchmark: 'same rebuild', value: ours, unit: 'events/s', baseline: 'naive replay: one transaction per event', baselineValue: naive },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printTable(`Replay (${N.toLocaleString('en-US')} events in the store)`, await runReplayBench());
  process.exit(0);
}
