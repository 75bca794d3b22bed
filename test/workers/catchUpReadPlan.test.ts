import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventsAfterCheckpoints } from '../../src/projections/ProjectionRunner.js';
import { createTestDb, type TestDb } from '../support/db.js';

/**
 * The traps: the live catch-up read joined the job's (stream, checkpoint) pairs to event_store, and
 * the planner, guessing a third of each stream after its checkpoint, hashed a sequential scan of the
 * whole store: 48 ms per job at 200,000 events, and more the bigger the store. Its first fix, a
 * lateral probe per stream with the type filter inside, was as bad before the store had statistics:
 * the planner ANDed in a bitmap of every event of those types, once per stream (a 200,000-event
 * backlog drained 5× slower). A job's cost must follow its own events, with or without statistics.
 */
let db: TestDb;

beforeAll(async () => {
  db = await createTestDb('catchup_plan');
  // 100,000 events over 1,000 streams, written directly (the plan depends on the sizes, not on how they came).
  await db.pool.query(sql.unsafe`
    INSERT INTO event_store (id, stream_id, stream_type, version, event_type, payload)
    SELECT gen_random_uuid(), 'ticket-t' || (i % 1000), 'ticket', i / 1000 + 1, 'TicketPriceChanged', '{}'::jsonb
    FROM generate_series(0, 99999) AS i`);
});
afterAll(async () => {
  await db?.drop();
});

async function eventStoreScans(query: ReturnType<typeof eventsAfterCheckpoints>): Promise<string[]> {
  const [row] = await db.pool.any(sql.unsafe`EXPLAIN (FORMAT JSON) ${query}`);
  const scans: string[] = [];
  const walk = (node: Record<string, unknown>) => {
    if (node['Relation Name'] === 'event_store' || String(node['Index Name'] ?? '').startsWith('event_store')) scans.push(`${String(node['Node Type'])} ${String(node['Index Name'] ?? '')}`.trim());
    for (const child of (node.Plans as Record<string, unknown>[] | undefined) ?? []) walk(child);
  };
  walk(((row as Record<string, unknown>)['QUERY PLAN'] as { Plan: Record<string, unknown> }[])[0]!.Plan);
  return scans;
}

describe('live catch-up read', () => {
  it('catch-up-read-never-scans-the-store: 400 streams one event behind are read by probes of the (stream, version) index only, before and after the store has statistics', async () => {
    const from = Array.from({ length: 400 }, (_, i) => [`ticket-t${i * 2}`, 99] as const);
    const query = eventsAfterCheckpoints(from, ['TicketDiscovered', 'TicketPriceChanged']);
    for (const when of ['no statistics', 'analyzed']) {
      if (when === 'analyzed') await db.pool.query(sql.unsafe`ANALYZE event_store`);
      const scans = await eventStoreScans(query);
      expect(scans.length, when).toBeGreaterThan(0);
      // Heap scans of event_store come from the index probe; no other access path is used.
      expect(scans.filter((s) => s === 'Seq Scan' || (s.includes('Index Scan') && !s.endsWith('event_store_stream_version_unique'))), when).toEqual([]);
    }
    // And it reads what it should: the 100th event of each of the 400 streams.
    const rows = await db.pool.any(query);
    expect(rows).toHaveLength(400);
  });
});
