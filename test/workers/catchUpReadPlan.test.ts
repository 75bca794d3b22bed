import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventsAfterCheckpoints } from '../../src/projections/ProjectionRunner.js';
import { createTestDb, type TestDb } from '../support/db.js';

/**
 * The trap: the live catch-up read joined the job's (stream, checkpoint) pairs to event_store, and
 * the planner, guessing a third of each stream after its checkpoint, hashed a sequential scan of the
 * whole store: 48 ms per job at 200,000 events, and more the bigger the store. A job's cost must
 * follow its own events, not the store's size.
 */
let db: TestDb;

beforeAll(async () => {
  db = await createTestDb('catchup_plan');
  // 100,000 events over 1,000 streams, written directly (the plan depends on the sizes, not on how they came).
  await db.pool.query(sql.unsafe`
    INSERT INTO event_store (id, stream_id, stream_type, version, event_type, payload)
    SELECT gen_random_uuid(), 'ticket-t' || (i % 1000), 'ticket', i / 1000 + 1, 'TicketPriceChanged', '{}'::jsonb
    FROM generate_series(0, 99999) AS i`);
  await db.pool.query(sql.unsafe`ANALYZE event_store`);
});
afterAll(async () => {
  await db?.drop();
});

describe('live catch-up read', () => {
  it('catch-up-read-never-scans-the-store: 400 streams one event behind are read by index probes, not a scan of event_store', async () => {
    const from = Array.from({ length: 400 }, (_, i) => [`ticket-t${i * 2}`, 99] as const);
    const query = eventsAfterCheckpoints(from, ['TicketDiscovered', 'TicketPriceChanged']);
    const [row] = await db.pool.any(sql.unsafe`EXPLAIN (FORMAT JSON) ${query}`);
    const scans: string[] = [];
    const walk = (node: Record<string, unknown>) => {
      if (node['Relation Name'] === 'event_store') scans.push(String(node['Node Type']));
      for (const child of (node.Plans as Record<string, unknown>[] | undefined) ?? []) walk(child);
    };
    walk(((row as Record<string, unknown>)['QUERY PLAN'] as { Plan: Record<string, unknown> }[])[0]!.Plan);
    expect(scans.length).toBeGreaterThan(0);
    expect(scans.filter((s) => s === 'Seq Scan')).toEqual([]);
    // And it reads what it should: the 100th event of each of the 400 streams.
    const rows = await db.pool.any(query);
    expect(rows).toHaveLength(400);
  });
});
