import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runMigrations } from '../../src/db/migrate.js';
import { createTestDb, type TestDb } from '../support/db.js';

let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('migrations', { migrate: false });
});
afterAll(async () => db?.drop());

describe('migrations', () => {
  it('two processes migrating at once both succeed and apply each migration once; a second run is a no-op', async () => {
    const [a, b] = await Promise.all([runMigrations(db.url), runMigrations(db.url)]);
    // One of them applied everything, the other found nothing left (it waited on the advisory lock).
    expect([a.length, b.length].sort()).toEqual([0, a.length + b.length]);
    const applied = await db.pool.anyFirst(sql.type(z.object({ name: z.string() }))`SELECT name FROM pgmigrations ORDER BY run_on, id`);
    expect(new Set(applied).size).toBe(applied.length);
    expect(applied.length).toBeGreaterThanOrEqual(4);
    expect(await runMigrations(db.url)).toEqual([]);
    const tables = await db.pool.anyFirst(sql.type(z.object({ t: z.string() }))`
      SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`);
    for (const t of ['event_store', 'event_streams', 'event_snapshots', 'event_projections', 'event_subscriptions', 'event_processing_failures', 'event_outbox', 'ticket_read_models', 'purchase_read_models', 'monitoring_read_models']) {
      expect(tables).toContain(t);
    }
  });
});
