// The README's "write a new event / handler / projection" examples, compiled (tsc covers test/) and run
// against real Postgres and Redis. Code between `#region readme:NAME` and `#endregion` must appear
// verbatim in README.md; the last test checks that, so the README cannot drift from working code.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Container } from '../../src/app/container.js';
import { startWorkerHost, type WorkerHost } from '../../src/app/workerHost.js';
import { defineEvent, PlatformSourceSchema, TicketIdSchema } from '../../src/domain/index.js';
import type { EventHandler } from '../../src/handlers/index.js';
import { defineProjection } from '../../src/projections/index.js';
import { idle, queueCounts, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';
import { ROOT } from '../support/processes.js';

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const SELF = readFileSync(new URL(import.meta.url), 'utf8');

// #region readme:event
export const TicketDelistedPayloadSchema = z
  .object({
    ticketId: TicketIdSchema,
    platform: PlatformSourceSchema,
    reason: z.enum(['seller_removed', 'event_cancelled', 'suspected_fraud']),
  })
  .strict();

export const TicketDelisted = defineEvent({
  type: 'TicketDelisted',
  schemaVersion: 1,
  streamType: 'ticket',
  streamId: (p) => `ticket-${p.ticketId}`,
  payload: TicketDelistedPayloadSchema,
});
// #endregion

// #region readme:handler
/** Tells operators when a listing sells out. */
export const SoldOutNotificationHandler: EventHandler = {
  name: 'SoldOutNotificationHandler',
  handledTypes: ['TicketSoldOut'],
  attempts: 3,
  async handle(e, ctx) {
    if (e.type !== 'TicketSoldOut') return;
    // ctx.tx also records (handler, event) as done: this row is written exactly once, even on retries.
    await ctx.tx.query(sql.unsafe`
      INSERT INTO user_notifications (user_id, kind, event_id, title, body)
      VALUES ('ops', 'ticket_sold_out', ${e.id}, ${`Sold out: ${e.payload.ticketId}`}, ${sql.jsonb({ platform: e.payload.platform })})
      ON CONFLICT (kind, event_id) DO NOTHING`);
  },
};
// #endregion

// #region readme:projection
interface PlatformListingsDoc {
  platform: string;
  discovered: number;
  soldOut: number;
}

/** Listings found and sold out per platform. Fed by many ticket streams, so it only counts (order-independent). */
export const PlatformListingsProjection = defineProjection<PlatformListingsDoc>({
  name: 'PlatformListingsProjection',
  version: 1,
  table: 'platform_listing_read_models',
  handledTypes: ['TicketDiscovered', 'TicketSoldOut'],
  keysOf: (e) => [(e.payload as { platform: string }).platform],
  apply(e, docs) {
    const { platform } = e.payload as { platform: string };
    const doc = docs.get(platform) ?? { platform, discovered: 0, soldOut: 0 };
    if (e.type === 'TicketDiscovered') doc.discovered += 1;
    if (e.type === 'TicketSoldOut') doc.soldOut += 1;
    docs.set(platform, doc);
  },
});
// #endregion

/** The fenced block of README.md that follows the given heading text. */
function readmeBlock(lang: string, after: string): string {
  const at = README.indexOf(after);
  expect(at, `README section "${after}"`).toBeGreaterThanOrEqual(0);
  const m = new RegExp('```' + lang + '\\n([\\s\\S]*?)```').exec(README.slice(at));
  expect(m, `a ${lang} block after "${after}"`).not.toBeNull();
  return m![1]!;
}

function region(name: string): string {
  const m = new RegExp(`// #region readme:${name}\\n([\\s\\S]*?)// #endregion`).exec(SELF);
  return m![1]!;
}

let db: TestDb;
let c: Container;
let host: WorkerHost | null = null;

beforeAll(async () => {
  db = await createTestDb('examples');
  // The migration from the README, run as written.
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  await admin.query(readmeBlock('sql', 'platform_listing_read_models').split('-- Down Migration')[0]!);
  await admin.end();
  c = await testContainer(
    { DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix('examples'), JOB_BACKOFF_MS: '50' },
    { handlers: [SoldOutNotificationHandler], projections: [PlatformListingsProjection] },
  );
  host = await startWorkerHost(c, ['handlers', 'projections', 'relay']);
});
afterAll(async () => {
  await host?.close(5000);
  await c?.close();
  await db?.drop();
});

const discovered = (ticketId: string, platform: string) => ({
  type: 'TicketDiscovered',
  payload: { ticketId, platform, eventName: 'FA Cup Final', venue: 'Wembley Stadium, London', eventDate: '2027-05-15T15:00:00Z', quantity: 2, price: { amountMinor: 9500, currency: 'GBP' } },
});
const soldOut = (ticketId: string, platform: string) => ({ type: 'TicketSoldOut', payload: { ticketId, platform, soldOutAt: '2027-05-01T10:00:00Z' } });

describe('README examples', () => {
  it('event: the schema validates, names its stream, and the store keeps it', async () => {
    const payload = TicketDelisted.schema.parse({ ticketId: 'tm-1', platform: 'ticketmaster', reason: 'event_cancelled' });
    expect(TicketDelisted.streamIdOf(payload)).toBe('ticket-tm-1');
    expect(TicketDelisted.schema.safeParse({ ticketId: 'tm-1', platform: 'ticketmaster', reason: 'bored' }).success).toBe(false);
    // Until it is added to the registry the bus rejects it; the store itself takes any validated event.
    await c.store.append('ticket-tm-1', [{ type: TicketDelisted.type, payload }], { streamType: TicketDelisted.streamType });
    const [stored] = await c.store.readStream('ticket-tm-1');
    expect(stored).toMatchObject({ type: 'TicketDelisted', version: 1, payload });
  });

  it('handler and projection: run by the workers, once each', async () => {
    await c.bus.dispatchMany([discovered('ex-1', 'stubhub'), discovered('ex-2', 'stubhub'), discovered('ex-3', 'axs'), soldOut('ex-1', 'stubhub'), soldOut('ex-3', 'axs')]);
    const docs = await waitFor(
      async () => {
        const rows = await db.pool.any(sql.type(z.object({ id: z.string(), doc: z.unknown() }))`SELECT id, doc FROM platform_listing_read_models WHERE doc <> 'null' ORDER BY id`);
        return rows.length === 2 && idle(await queueCounts(c)) ? rows : null;
      },
      { what: 'the projection to fill', intervalMs: 100 },
    );
    expect(docs).toEqual([
      { id: 'axs', doc: { platform: 'axs', discovered: 1, soldOut: 1 } },
      { id: 'stubhub', doc: { platform: 'stubhub', discovered: 2, soldOut: 1 } },
    ]);
    const notes = await waitFor(async () => {
      const n = await db.pool.any(sql.type(z.object({ title: z.string() }))`SELECT title FROM user_notifications WHERE kind = 'ticket_sold_out' ORDER BY title`);
      return n.length === 2 ? n : null;
    }, { what: 'the notifications' });
    expect(notes!.map((n) => n.title)).toEqual(['Sold out: ex-1', 'Sold out: ex-3']);
  });

  it('the README shows exactly this code', () => {
    expect(readmeBlock('ts', '### A new event')).toContain(region('event'));
    expect(readmeBlock('ts', '### A new handler')).toContain(region('handler'));
    expect(readmeBlock('ts', '### A new projection')).toContain(region('projection'));
  });
});
