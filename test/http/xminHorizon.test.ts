import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/db.js';
import { startHarness, type Harness } from './support.js';

// The trap: one transaction left open anywhere on the server (a forgotten BEGIN in psql) silently
// holds back every gap-free reader (replay, catch-up, and alerting, which waits for the order before
// its events to settle). The stall must show, with who holds it.
let h: Harness;
let stuck: pg.Client;
beforeAll(async () => {
  h = await startHarness('xmin_horizon');
  stuck = new pg.Client({ connectionString: h.db.url, application_name: 'forgotten-psql-session' });
  await stuck.connect();
});
afterAll(async () => {
  await stuck?.query('ROLLBACK').catch(() => {});
  await stuck?.end();
  await h?.close();
});

describe('stall alarm', () => {
  it('open-transaction-holds-the-horizon: the overview names the session holding the xmin horizon back and /metrics shows its age', async () => {
    await stuck.query('BEGIN');
    // A transaction id: from now on it holds pg_snapshot_xmin back.
    const pid = Number((await stuck.query<{ pid: number }>('SELECT pg_backend_pid() AS pid, pg_current_xact_id()')).rows[0]!.pid);
    const seen = await waitFor(
      async () => {
        const r = await h.api('GET', '/api/events/overview');
        const mine = (r.body.data.xminHorizon.oldest as { pid: number; applicationName: string; ageSeconds: number }[]).find((o) => o.pid === pid);
        return mine && mine.ageSeconds >= 1.5 ? { mine, top: r.body.data.xminHorizon.ageSeconds as number } : null;
      },
      { timeoutMs: 20_000, intervalMs: 200, what: 'the open transaction to show in the overview' },
    );
    expect(seen!.mine.applicationName).toBe('forgotten-psql-session');
    expect(seen!.top).toBeGreaterThanOrEqual(seen!.mine.ageSeconds);
    const metrics = await h.api('GET', '/metrics');
    const age = Number(/^hdt_xmin_horizon_age_seconds (\S+)$/m.exec(metrics.text)?.[1]);
    expect(age).toBeGreaterThanOrEqual(1.5);
    await stuck.query('ROLLBACK');
    // Our own connections are named for their entry point, so the alarm can say which process it is.
    const names = await h.db.pool.anyFirst((await import('slonik')).sql.unsafe`SELECT DISTINCT application_name FROM pg_stat_activity WHERE datname = current_database()`);
    expect(names.some((n) => String(n).startsWith('hdt:'))).toBe(true);
  });
});
