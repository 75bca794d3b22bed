import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { owedSummary } from '../../src/consumers/owedWork.js';
import { sampleEvent } from '../../src/domain/index.js';
import { startLagHistory } from '../../src/http/lagHistory.js';
import { eventsPerMinute } from '../../src/http/queries/timeseries.js';
import { OpenApiChecker } from '../http/support.js';
import { waitFor } from '../support/db.js';
import { startDashboardHarness, TOKEN, type DashboardHarness } from './support.js';

let h: DashboardHarness;
let checker: OpenApiChecker;

beforeAll(async () => {
  h = await startDashboardHarness('dash_timeseries');
  checker = new OpenApiChecker((await (await fetch(`${h.url}/api/docs`)).json()) as never);
});
afterAll(async () => {
  await h?.close();
});

const get = async (path: string) => {
  const res = await fetch(h.url + path, { headers: { authorization: `Bearer ${TOKEN}` } });
  return { status: res.status, body: (await res.json()) as any };
};

describe('GET /api/events/timeseries', () => {
  it('timeseries-window-bounds: every minute of the window once, counts per type in the minute they were recorded, events older than the window left out', async () => {
    const ids = (await h.c.bus.dispatchMany([
      ...Array.from({ length: 5 }, (_, i) => sampleEvent('TicketDiscovered', { ticketId: `ts-${i}` })),
      ...Array.from({ length: 3 }, () => sampleEvent('PlatformStatusChanged')),
      sampleEvent('TicketSoldOut'),
      sampleEvent('TicketSoldOut'),
    ])).map((e) => e.id);
    // Two events recorded 10 minutes ago, one two hours ago (outside any window the endpoint allows).
    await h.db.pool.query(sql.unsafe`UPDATE event_store SET recorded_at = date_trunc('minute', now()) - interval '10 minutes' + interval '5 seconds' WHERE id = ANY(${sql.array(ids.slice(8, 10), 'uuid')})`);
    await h.db.pool.query(sql.unsafe`UPDATE event_store SET recorded_at = now() - interval '2 hours' WHERE id = ${ids[7]!}`);

    const { status, body } = await get('/api/events/timeseries?minutes=60');
    expect(status).toBe(200);
    checker.check('GET', '/api/events/timeseries', 200, body);
    const { minutes, eventsPerMinute } = body.data as { minutes: number; eventsPerMinute: { minute: string; byType: Record<string, number> }[] };
    expect(minutes).toBe(60);
    expect(eventsPerMinute).toHaveLength(60);
    const starts = eventsPerMinute.map((m) => Date.parse(m.minute));
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBe(60_000);
    expect(starts.every((s) => s % 60_000 === 0)).toBe(true);
    // Buckets found by the minute the database recorded (the test may straddle a minute boundary).
    const minuteOf = async (id: string) =>
      new Date(await h.db.pool.oneFirst(sql.type(z.object({ ms: z.number() }))`SELECT (extract(epoch FROM date_trunc('minute', recorded_at)) * 1000)::float8 AS ms FROM event_store WHERE id = ${id}`)).toISOString();
    const byMinute = new Map(eventsPerMinute.map((m) => [m.minute, m.byType]));
    expect(byMinute.get(await minuteOf(ids[8]!))).toEqual({ TicketSoldOut: 2 });
    const totals: Record<string, number> = {};
    for (const m of eventsPerMinute) for (const [t, c] of Object.entries(m.byType)) totals[t] = (totals[t] ?? 0) + c;
    expect(totals).toEqual({ TicketDiscovered: 5, PlatformStatusChanged: 2, TicketSoldOut: 2 });
    expect(byMinute.get(await minuteOf(ids[0]!))).toMatchObject({ TicketDiscovered: expect.any(Number) });
    const sum = eventsPerMinute.reduce((n, m) => n + Object.values(m.byType).reduce((a, b) => a + b, 0), 0);
    expect(sum).toBe(9);

    // A shorter window: the 10-minute-old events fall out of a 5-minute one.
    const five = (await get('/api/events/timeseries?minutes=5')).body.data;
    expect(five.eventsPerMinute).toHaveLength(5);
    expect(five.eventsPerMinute.flatMap((m: { byType: object }) => Object.keys(m.byType)).sort()).toEqual(['PlatformStatusChanged', 'TicketDiscovered']);
  });

  it('rejects windows beyond an hour and unknown parameters (the cost stays bounded by the last hour)', async () => {
    for (const q of ['minutes=61', 'minutes=0', 'minutes=abc', 'since=7d']) {
      const { status, body } = await get(`/api/events/timeseries?${q}`);
      expect(status, q).toBe(400);
      expect(body.success).toBe(false);
    }
    expect((await fetch(`${h.url}/api/events/timeseries`)).status).toBe(401);
  });

  it('lag-history: the web process samples owed work per consumer; the series carries every registered consumer with what it owes', async () => {
    const owed = Object.fromEntries((await owedSummary(h.db.pool)).map((o) => [o.consumer, o.events]));
    expect(Object.values(owed).some((n) => n > 0)).toBe(true);
    // No worker runs in this file: what is owed holds still, so a fresh sample must show exactly it.
    const sampled = await waitFor(
      async () => {
        const lag = (await get('/api/events/timeseries')).body.data.lag as { at: string; consumers: Record<string, number> }[];
        const newest = lag[lag.length - 1];
        return newest && JSON.stringify(newest.consumers) === JSON.stringify(owed) ? lag : null;
      },
      { timeoutMs: 10_000, what: 'a lag sample equal to the owed summary' },
    );
    const at = sampled!.map((s) => Date.parse(s.at));
    expect(at).toEqual([...at].sort((a, b) => a - b));
  });
});

describe('cost of the events-per-minute query', () => {
  // After the endpoint tests on purpose: it adds 300,000 old events to this file's store.
  it('timeseries-cost-follows-window: with 300,000 older events in the store, the hour’s query reads a small part of the table (BRIN), not all of it', async () => {
    await h.db.pool.query(sql.unsafe`
      INSERT INTO event_store (id, stream_id, stream_type, version, event_type, payload, recorded_at)
      SELECT gen_random_uuid(), 'old-' || g, 'bulk', 1, 'OldEvent' || (g % 5), '{}', now() - interval '10 days' + g * interval '9 days' / 300000
      FROM generate_series(1, 300000) g`);
    // As autovacuum would: summarise the new block ranges and refresh the statistics.
    await h.db.pool.query(sql.unsafe`VACUUM ANALYZE event_store`);
    const pages = await h.db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT relpages AS n FROM pg_class WHERE relname = 'event_store'`);
    expect(pages).toBeGreaterThan(2000);
    const { fetched, series } = await h.db.pool.transaction(async (tx) => {
      // Heap blocks fetched from event_store by this backend (counted since its last stats flush, so
      // read before and after): a sequential scan would fetch every page.
      const blocks = () => tx.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT pg_stat_get_xact_blocks_fetched('event_store'::regclass) AS n`);
      const before = await blocks();
      const series = await eventsPerMinute(tx, 60);
      return { fetched: (await blocks()) - before, series };
    });
    expect(series.flatMap((m) => Object.keys(m.byType)).some((t) => t.startsWith('OldEvent'))).toBe(false);
    expect(fetched).toBeGreaterThan(0);
    expect(fetched).toBeLessThan(pages / 4);
  });
});

describe('lag ring buffer', () => {
  it('lag-history-bounded: keeps at most its window of samples, oldest first, and skips a failed sample', async () => {
    let n = 0;
    const errors: unknown[] = [];
    const history = startLagHistory({
      sample: async () => {
        n++;
        if (n === 6) throw new Error('postgres away');
        return { c: n };
      },
      onError: (e) => errors.push(e),
      intervalMs: 3_600_000, // only the first and the explicit samples below
      keepMs: 3 * 3_600_000, // room for 4 samples
    });
    // The first call joins the sample taken at start (one at a time), so 9 calls take 9 samples.
    for (let i = 0; i < 9; i++) await history.sampleNow();
    history.stop();
    expect(n).toBe(9);
    expect(errors).toHaveLength(1);
    expect(history.since(Number.MAX_SAFE_INTEGER).map((s) => s.consumers.c)).toEqual([5, 7, 8, 9]);
  });
});
