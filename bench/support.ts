import os from 'node:os';
import pg from 'pg';
import { randomBytes } from 'node:crypto';
import { runMigrations } from '../src/db/migrate.js';

export const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The databases this process created: the horizon watch leaves their transactions out. */
const ownDatabases = new Set<string>();

export async function freshDatabase(label: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `hdt_bench_${label}_${randomBytes(3).toString('hex')}`;
  ownDatabases.add(name);
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  await runMigrations(u.toString());
  return {
    url: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export function machine(): string {
  const cpus = os.cpus();
  return `${cpus.length}× ${cpus[0]?.model.trim() ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`;
}

export interface Row {
  benchmark: string;
  value: number;
  unit: string;
  baseline?: string;
  baselineValue?: number;
}

export function printTable(title: string, rows: Row[]): void {
  console.log(`\n## ${title}\nmachine: ${machine()}\ndate: ${new Date().toISOString()}\n`);
  const lines = rows.map((r) => [
    r.benchmark,
    `${Math.round(r.value).toLocaleString('en-US')} ${r.unit}`,
    r.baseline ?? '',
    r.baselineValue !== undefined ? `${Math.round(r.baselineValue).toLocaleString('en-US')} ${r.unit}` : '',
    r.baselineValue ? `${(r.value / r.baselineValue).toFixed(2)}×` : '',
  ]);
  const header = ['benchmark', 'result', 'baseline (same run)', 'baseline result', 'ratio'];
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  console.log(fmt(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const l of lines) console.log(fmt(l));
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  // Odd counts (BENCH_RUNS 3): the middle one; even counts: the mean of the two middle ones.
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/**
 * The one machine-readable line each bench ends with: `RESULT name=value name=value …`. Rates and
 * milliseconds of 100 or more are rounded to integers; ratios and shares keep three decimals.
 */
export function resultLine(fields: Record<string, number>): string {
  const fmt = (v: number) => (!Number.isFinite(v) ? String(v) : Math.abs(v) >= 100 ? String(Math.round(v)) : String(Number(v.toFixed(3))));
  return `RESULT ${Object.entries(fields).map(([k, v]) => `${k}=${fmt(v)}`).join(' ')}`;
}

const sleepMs = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Gap-free readers (rebuild, catch-up, the relay) see only events below the oldest transaction still
 * running anywhere on the server, so a long transaction of another client of the same PostgreSQL
 * (another bench, a forgotten psql) stalls them and the figures measured meanwhile mean nothing.
 * This samples the oldest transaction holding the horizon every 250 ms, leaving out this process's
 * own databases, warns on stderr when one is older than `thresholdSeconds`, and keeps the longest hold.
 */
export function horizonWatch(thresholdSeconds = 1) {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  client.on('error', () => {});
  let stopped = false;
  let longest = 0;
  const warned = new Set<number>();
  const loop = (async () => {
    await client.connect();
    while (!stopped) {
      const { rows } = await client.query(
        `SELECT pid, application_name, datname, state, extract(epoch FROM now() - coalesce(xact_start, now()))::float8 AS age
         FROM pg_stat_activity
         WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() AND NOT (datname = ANY($1::text[]))
         ORDER BY age(backend_xid) DESC LIMIT 1`,
        [[...ownDatabases]],
      );
      const r = rows[0] as { pid: number; application_name: string; datname: string | null; state: string | null; age: number } | undefined;
      if (r && r.age > thresholdSeconds) {
        longest = Math.max(longest, r.age);
        if (!warned.has(r.pid)) {
          warned.add(r.pid);
          console.error(`warning: another session (pid ${r.pid}, database ${r.datname}, ${r.application_name || 'no application_name'}, ${r.state}) holds the xmin horizon (transaction open ${r.age.toFixed(1)} s): gap-free readers wait for it, figures measured meanwhile are unreliable`);
        }
      }
      await sleepMs(250);
    }
    await client.end();
  })().catch(() => {});
  return {
    /** Longest hold seen (seconds), 0 if none passed the threshold. */
    async stop(): Promise<number> {
      stopped = true;
      await loop;
      return longest;
    },
  };
}

/**
 * Waits until every event of `event_store` is below the server's xmin horizon (visible to gap-free
 * readers), so a rebuild or drain measured next does not wait for someone else's transaction.
 */
export async function waitForHorizon(db: pg.Pool | pg.Client, timeoutMs = Number(process.env.BENCH_HORIZON_WAIT_MS ?? 600_000)): Promise<void> {
  const started = Date.now();
  let warned = false;
  for (;;) {
    const { rows } = await db.query(`SELECT coalesce((SELECT max(transaction_id) FROM event_store), '0'::xid8) < pg_snapshot_xmin(pg_current_snapshot()) AS visible`);
    if (rows[0].visible) return;
    if (Date.now() - started > timeoutMs) throw new Error(`the xmin horizon did not pass the stored events within ${timeoutMs} ms (a long transaction elsewhere on this PostgreSQL)`);
    if (!warned && Date.now() - started > 2000) {
      warned = true;
      console.error('waiting for a transaction elsewhere on this PostgreSQL to end (it holds the xmin horizon below the stored events)…');
    }
    await sleepMs(200);
  }
}
