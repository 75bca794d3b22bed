import { Logger, run } from 'graphile-worker';
import pg from 'pg';
import type { DocAccess, ProjectedEvent } from '../src/projections/Projection.js';
import { TicketReadModelProjection, type TicketDoc } from '../src/projections/ticketReadModel.js';

/**
 * The graphile-worker baseline's worker process (bench/e2e.ts spawns it). One task: a job names up to
 * 100 events of `gw_events` (enqueued in their append transaction); the task reads them, folds them per
 * ticket with the ticket projection's own `apply`, and writes one multi-row upsert into
 * `gw_ticket_read_models` (same shape as `ticket_read_models`), all in one transaction.
 *
 * The upsert merges commutatively (latest position wins the current price; lowest/highest by amount;
 * price changes add up), so concurrent jobs may run in any order without reading the row first. Rows
 * are written in id order so that two jobs never deadlock.
 */
const url = process.env.DATABASE_URL;
if (!url) throw new Error('DATABASE_URL is required');
const concurrency = Number(process.env.GRAPHILE_CONCURRENCY ?? 2);

const UPSERT = `
  INSERT INTO gw_ticket_read_models AS t (id, doc, last_position, updated_at)
  SELECT u.id, u.doc, u.pos, now() FROM unnest($1::text[], $2::jsonb[], $3::int8[]) AS u(id, doc, pos) ORDER BY u.id
  ON CONFLICT (id) DO UPDATE SET
    doc = (CASE WHEN EXCLUDED.last_position > t.last_position THEN EXCLUDED.doc ELSE t.doc END) || jsonb_build_object(
      'priceChanges', coalesce((t.doc->>'priceChanges')::int, 0) + coalesce((EXCLUDED.doc->>'priceChanges')::int, 0),
      'lowestPrice', CASE WHEN jsonb_typeof(t.doc->'lowestPrice') IS DISTINCT FROM 'object'
                            OR (EXCLUDED.doc->'lowestPrice'->>'amountMinor')::int8 < (t.doc->'lowestPrice'->>'amountMinor')::int8
                          THEN EXCLUDED.doc->'lowestPrice' ELSE t.doc->'lowestPrice' END,
      'highestPrice', CASE WHEN jsonb_typeof(t.doc->'highestPrice') IS DISTINCT FROM 'object'
                             OR (EXCLUDED.doc->'highestPrice'->>'amountMinor')::int8 > (t.doc->'highestPrice'->>'amountMinor')::int8
                           THEN EXCLUDED.doc->'highestPrice' ELSE t.doc->'highestPrice' END),
    last_position = GREATEST(t.last_position, EXCLUDED.last_position),
    updated_at = now()`;

interface EventRow {
  position: string;
  id: string;
  stream_id: string;
  type: string;
  payload: unknown;
  occurred_at: Date;
}

const pool = new pg.Pool({ connectionString: url, max: concurrency + 2 });
pool.on('error', () => {});
// graphile-worker wants an error listener on every client too (else it warns).
pool.on('connect', (client) => void client.on('error', () => {}));

const runner = await run({
  pgPool: pool,
  concurrency,
  noHandleSignals: true,
  pollInterval: 1000,
  logger: new Logger(() => () => {}),
  taskList: {
    apply_ticket_prices: async (payload, helpers) => {
      const { ids } = payload as { ids: number[] };
      await helpers.withPgClient(async (client) => {
        await client.query('BEGIN');
        try {
          const { rows } = await client.query<EventRow>('SELECT position, id, stream_id, type, payload, occurred_at FROM gw_events WHERE position = ANY($1::int8[]) ORDER BY position', [ids]);
          const docs = new Map<string, { doc: TicketDoc; pos: number }>();
          for (const r of rows) {
            const pos = Number(r.position);
            const event = { id: r.id, streamId: r.stream_id, version: pos, globalPosition: pos, type: r.type, payload: r.payload, occurredAt: r.occurred_at.toISOString() } as unknown as ProjectedEvent;
            const access: DocAccess<TicketDoc> = {
              get: (k) => docs.get(k)?.doc,
              set: (k, doc) => void docs.set(k, { doc, pos }),
              delete: (k) => void docs.delete(k),
            };
            TicketReadModelProjection.apply(event, access);
          }
          const sorted = [...docs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
          await client.query(UPSERT, [sorted.map(([k]) => k), sorted.map(([, v]) => JSON.stringify(v.doc)), sorted.map(([, v]) => v.pos)]);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {});
          throw error;
        }
      });
    },
  },
});

process.stdout.write('ready\n');
const stop = async () => {
  await runner.stop().catch(() => {});
  await pool.end().catch(() => {});
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
