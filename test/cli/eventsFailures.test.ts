import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import pg from 'pg';
import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { sampleEvent } from '../../src/domain/index.js';
import { disposeTestContainer, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';
import { spawnTs, stopAll, type Spawned } from '../support/processes.js';

let db: TestDb;
let c: Container;
let env: Record<string, string>;
const spawned: Spawned[] = [];

beforeAll(async () => {
  db = await createTestDb('cli_failures');
  env = { DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix('cli_failures') };
  c = await testContainer(env);
  const a = await c.bus.dispatchMany(Array.from({ length: 6 }, (_, i) => sampleEvent('TicketDiscovered', { ticketId: `cf-${i}` })));
  const b = await c.bus.dispatchMany(Array.from({ length: 4 }, (_, i) => sampleEvent('TicketPriceChanged', { ticketId: `cf-${i}` })));
  await c.failures.record('TicketDiscoveredHandler', 'handler', a.map((e) => ({ eventId: e.id, message: 'Redis timeout while caching' })), 5, 'job-1');
  await c.failures.record('PriceChangeHandler', 'handler', b.map((e) => ({ eventId: e.id, message: 'alert rule invalid' })), 5, 'job-2');
  await db.pool.query(sql.unsafe`UPDATE event_processing_failures SET last_failed_at = now() - interval '3 days' WHERE consumer = 'PriceChangeHandler'`);
});
afterAll(async () => {
  await stopAll(spawned);
  await disposeTestContainer(c);
  await db?.drop();
});

async function cli(script: string, args: string[]) {
  const p = spawnTs(script, env, args);
  spawned.push(p);
  const { code } = await p.exited;
  return { code, out: p.output() };
}
const failures = (args: string[]) => cli('scripts/events-failures.ts', args);
const json = (out: string) => JSON.parse(out.trim().split('\n').filter((l) => l.startsWith('{')).pop()!);
const snapshot = () => db.pool.any(sql.type(z.object({ id: z.number(), status: z.string(), retry_count: z.number() }))`SELECT id, status, retry_count FROM event_processing_failures ORDER BY id`);

describe('npm run events:failures', () => {
  it('cli-failures-filters: list narrows by consumer, event type, error text and time, like the API', async () => {
    expect(json((await failures(['list', '--json'])).out).total).toBe(10);
    expect(json((await failures(['list', '--consumer', 'PriceChangeHandler', '--json'])).out).total).toBe(4);
    expect(json((await failures(['list', '--event-type', 'TicketDiscovered', '--grep', 'REDIS', '--json'])).out).total).toBe(6);
    const recent = json((await failures(['list', '--since', '1d', '--json'])).out);
    expect(recent.total).toBe(6);
    expect(recent.failures.every((f: any) => f.consumer === 'TicketDiscoveredHandler')).toBe(true);
    expect(json((await failures(['list', '--until', '2d', '--json'])).out).total).toBe(4);
    const table = await failures(['list', '--consumer', 'PriceChangeHandler']);
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/alert rule invalid/);
    expect(table.out).toMatch(/4 of 4 shown/);
  });

  it('cli-bad-input-exits-2: bad times, unknown actions, resolve without a note; nothing changes', async () => {
    const before = await snapshot();
    for (const [args, message] of [
      [['retry', '--since', 'yesterday'], /--since/],
      [['list', '--until', '2026-02-30T99:00:00Z'], /--until/],
      [['retry', '--since', '1h', '--until', '2d'], /--until: must be later than since/],
      [['purge'], /unknown action "purge"/],
      [['resolve', '--consumer', 'PriceChangeHandler'], /--note/],
      [['list', '--limit', '0'], /--limit/],
    ] as const) {
      const r = await failures([...args]);
      expect.soft({ args, code: r.code }).toEqual({ args, code: 2 });
      expect.soft(r.out, args.join(' ')).toMatch(message);
    }
    expect(await snapshot()).toEqual(before);
  });

  it('cli-dry-run-changes-nothing, then retry and resolve act on the filtered set and are audited as cli:<user>', async () => {
    const before = await snapshot();
    const dry = await failures(['retry', '--consumer', 'TicketDiscoveredHandler', '--dry-run', '--json']);
    expect(dry.code).toBe(0);
    expect(json(dry.out)).toMatchObject({ dryRun: true, matched: 6, byConsumer: { TicketDiscoveredHandler: 6 } });
    expect(await snapshot()).toEqual(before);

    const retried = json((await failures(['retry', '--consumer', 'TicketDiscoveredHandler', '--grep', 'timeout', '--json'])).out);
    expect(retried).toMatchObject({ dryRun: false, matched: 6, retried: 6, jobs: 1 });
    const resolved = await failures(['resolve', '--since', '7d', '--until', '1d', '--note', 'rules fixed by hand']);
    expect(resolved.code).toBe(0);
    expect(resolved.out).toMatch(/4 failure\(s\) resolved/);
    const rows = await snapshot();
    expect(rows.filter((r) => r.status === 'retrying')).toHaveLength(6);
    expect(rows.filter((r) => r.status === 'resolved')).toHaveLength(4);
    const audit = await db.pool.any(sql.type(z.object({ actor: z.string(), action: z.string() }))`SELECT actor, action FROM operator_audit ORDER BY id`);
    expect(audit).toEqual([
      { actor: `cli:${userInfo().username}`, action: 'bulk-retry' },
      { actor: `cli:${userInfo().username}`, action: 'bulk-resolve' },
    ]);
  });
});

describe('npm run events:monitor', () => {
  it('monitor --failures takes the same filters; a filter without --failures exits 2', async () => {
    const r = await cli('scripts/events-monitor.ts', ['--failures', '--consumer', 'TicketDiscoveredHandler', '--json']);
    expect(r.code).toBe(0);
    const listed = r.out.split('\n').filter((l) => l.startsWith('{"failures"')).map((l) => JSON.parse(l).failures)[0];
    expect(listed.length).toBe(6);
    expect(listed.every((f: any) => f.consumer === 'TicketDiscoveredHandler')).toBe(true);
    const bad = await cli('scripts/events-monitor.ts', ['--grep', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.out).toMatch(/--failures/);
  });

  it('watch-sees-late-commits: an event whose transaction commits after a later position is still printed, once, in the gap-free order', async () => {
    const watch = spawnTs('scripts/events-monitor.ts', env, ['--watch', '--json']);
    spawned.push(watch);
    await waitFor(() => watch.output().includes('"status"'), { what: 'the watch loop to start' });
    // An append left open: its event has the lower position but commits last.
    const late = new pg.Client({ connectionString: db.url });
    await late.connect();
    const lateId = randomUUID();
    try {
      await late.query('BEGIN');
      const e = sampleEvent('TicketDiscovered', { ticketId: 'cf-late' });
      await late.query(
        `SELECT * FROM hdt_append_batch($1::text[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::int2[], $7::jsonb[], $8::jsonb[], $9::timestamptz[])`,
        [['ticket-cf-late'], ['ticket'], ['any'], [lateId], [e.type], [1], [JSON.stringify(e.payload)], ['{}'], [null]],
      );
      const early = await c.bus.dispatch(sampleEvent('TicketDiscovered', { ticketId: 'cf-early' }));
      // Hold the late one open until the watch has read the store at least once after the early one
      // committed: a status line counting `early` came from one round, a line counting `marker` (stored
      // after that line was seen) from a later one, whose read a position-only tail would have
      // answered with `early`, skipping past `late` for good.
      const statusWith = (n: number) => watch.output().split('\n').some((l) => l.includes('"status"') && l.includes(`events ${n} `));
      const total = () => db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*) AS n FROM event_store`);
      await waitFor(async () => statusWith(await total()), { what: 'a status line counting the early event' });
      await c.bus.dispatch(sampleEvent('TicketDiscovered', { ticketId: 'cf-marker' }));
      await waitFor(async () => statusWith(await total()), { what: 'a status line counting the marker event' });
      await late.query('COMMIT');
      const lines = () => watch.output().split('\n').filter((l) => l.startsWith('{"global_position"')).map((l) => JSON.parse(l).stream_id as string);
      await waitFor(() => lines().includes('ticket-cf-late') && lines().includes('ticket-cf-early'), { what: 'both events on the watch' });
      await waitFor(() => lines().includes('ticket-cf-marker'), { what: 'the marker on the watch' });
      expect(lines().filter((s) => s.startsWith('ticket-cf-'))).toEqual(['ticket-cf-late', 'ticket-cf-early', 'ticket-cf-marker']);
      expect(early.id).not.toBe(lateId);
    } finally {
      await late.end();
      watch.child.kill('SIGINT');
      expect((await watch.exited).code).toBe(0);
    }
  });
});
