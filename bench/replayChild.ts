import pg from 'pg';
import { createDbPool, parseTimestamptz } from '../src/db/pool.js';
import { rowToEvent, type StoredEventRowType } from '../src/eventStore/types.js';
import { createLogger } from '../src/logger.js';
import { defaultProjections, type DocAccess, type ProjectedEvent } from '../src/projections/index.js';
import { ReplayEngine } from '../src/replay/ReplayEngine.js';

/**
 * One rebuild in its own process, spawned by bench/replay.ts so that its peak RSS
 * (process.resourceUsage().maxRSS) covers the rebuild alone, not the seeding of the store. Prints one
 * JSON line: { events, seconds, maxRssKb }.
 *
 *   rebuild  our rebuild of all 3 projections: ReplayEngine.runMany, chunk 1,000 (the path a replay job
 *            of all projections takes), into their shadow tables and swapped in.
 *   ceiling  fold+unnest: read 1,000 events per chunk in the gap-free global order (event_store_all,
 *            below the snapshot xmin, ordered by (transaction_id, global_position)), fold them per
 *            stream in JS with each projection's own `apply`, then in one transaction write one
 *            `unnest` multi-row upsert per projection (the documents the chunk changed) into scratch
 *            copies of the read-model tables, plus a cursor row. Documents stay in memory between
 *            chunks (it never reads one back): that is what makes it a ceiling, not a design.
 */
const mode = process.argv[2];
const url = process.env.DATABASE_URL;
if (!url || (mode !== 'rebuild' && mode !== 'ceiling')) throw new Error('usage: DATABASE_URL=… tsx bench/replayChild.ts rebuild|ceiling');
const CHUNK = Number(process.env.BENCH_REPLAY_CHUNK ?? 1000);
const identity = (_type: string, schemaVersion: number, payload: unknown) => ({ schemaVersion, payload });

async function rebuild(): Promise<number> {
  const pool = await createDbPool(url!, { maximumPoolSize: 4, statementTimeoutMs: 600_000 });
  const engine = new ReplayEngine(pool, identity, createLogger('silent'));
  let events = 0;
  // What a replay job of all projections does (the replay worker): one pass over the store for all three.
  for (const r of await engine.runMany(defaultProjections, { jobId: `bench-all-${Date.now()}`, from: null, chunk: CHUNK })) events += r.events;
  await pool.end();
  return events;
}

const scratch = (table: string) => `ceiling_${table}`;

async function ceiling(): Promise<number> {
  // Same text-to-value conversions as our pool (ISO timestamps, int8 as number).
  pg.types.setTypeParser(pg.types.builtins.TIMESTAMPTZ, parseTimestamptz);
  pg.types.setTypeParser(pg.types.builtins.INT8, (v: string) => Number.parseInt(v, 10));
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const types = [...new Set(defaultProjections.flatMap((p) => p.handledTypes))];
  const docs = defaultProjections.map(() => new Map<string, unknown>());
  let cursor = { tx: '0', pos: 0 };
  let events = 0;
  for (;;) {
    const { rows } = await client.query<StoredEventRowType>(
      `SELECT id, stream_id, stream_type, version, event_type, schema_version, payload, metadata,
              global_position, transaction_id::text AS transaction_id, occurred_at, recorded_at
       FROM event_store_all
       WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint) AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
         AND event_type = ANY($3::text[])
       ORDER BY transaction_id, global_position LIMIT ${CHUNK}`,
      [cursor.tx, cursor.pos, types],
    );
    if (rows.length === 0) break;
    // Per stream, in version order (the global order keeps each stream's order).
    const byStream = new Map<string, ProjectedEvent[]>();
    for (const r of rows) {
      const e = rowToEvent(r, identity) as unknown as ProjectedEvent;
      const list = byStream.get(e.streamId);
      if (list) list.push(e);
      else byStream.set(e.streamId, [e]);
    }
    const changed = defaultProjections.map(() => new Map<string, number>());
    defaultProjections.forEach((p, k) => {
      const store = docs[k]!;
      const touched = changed[k]!;
      for (const stream of byStream.values()) {
        for (const e of stream) {
          if (!p.handles(e.type)) continue;
          const access: DocAccess<unknown> = {
            get: (id) => store.get(id),
            set: (id, doc) => {
              store.set(id, doc);
              touched.set(id, e.globalPosition);
            },
            delete: (id) => {
              store.delete(id);
              touched.set(id, e.globalPosition);
            },
          };
          p.apply(e, access);
        }
      }
    });
    const last = rows[rows.length - 1]!;
    cursor = { tx: last.transaction_id, pos: last.global_position };
    await client.query('BEGIN');
    for (const [k, p] of defaultProjections.entries()) {
      const up = [...changed[k]!].filter(([id]) => docs[k]!.has(id));
      if (up.length === 0) continue;
      await client.query(
        `INSERT INTO ${scratch(p.table)} (id, doc, last_position, updated_at)
         SELECT u.id, u.doc, u.pos, now() FROM unnest($1::text[], $2::jsonb[], $3::int8[]) AS u(id, doc, pos)
         ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc, last_position = EXCLUDED.last_position, updated_at = now()`,
        [up.map(([id]) => id), up.map(([id]) => JSON.stringify(docs[k]!.get(id))), up.map(([, pos]) => pos)],
      );
    }
    await client.query(`UPDATE ceiling_cursor SET tx = $1::xid8, pos = $2, events = events + $3, updated_at = now() WHERE name = 'ceiling'`, [cursor.tx, cursor.pos, rows.length]);
    await client.query('COMMIT');
    events += rows.length;
  }
  await client.end();
  return events;
}

const t0 = performance.now();
const events = mode === 'rebuild' ? await rebuild() : await ceiling();
const seconds = (performance.now() - t0) / 1000;
process.stdout.write(`${JSON.stringify({ events, seconds, maxRssKb: process.resourceUsage().maxRSS })}\n`);
process.exit(0);
