import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createContainer } from '../src/app/container.js';
import { loadConfig } from '../src/config.js';
import { createEventGenerator } from '../src/demo/eventGenerator.js';
import { seedEvents } from '../src/demo/seed.js';
import { readDemoStatus } from '../src/demo/status.js';
import { FOLD_INTERVAL_MS, foldCounters } from '../src/eventStore/counters.js';
import { startWebServer } from '../src/http/server.js';
import { createLogger } from '../src/logger.js';
import { freshDatabase, machine, median } from './support.js';

/**
 * Monitoring cost against store size (ARCHITECTURE §7: a monitoring call, a scrape or a status line
 * costs the same at 10 million events as at 10 thousand). Seeds through the events:seed path (the
 * event bus, batches of 500), times each monitoring surface at SMALL events (median of CALLS calls),
 * seeds on to LARGE events, times them again, then rebuilds every projection at LARGE in a child
 * process and reads that process's peak RSS. Ends with one RESULT line.
 *
 * No consumer is registered (register: false), so the bus owes the events to nobody and the outbox
 * and owed-work backlogs stay empty: what is measured is the store's size, not a backlog (a backlog
 * is work owed, and is allowed to cost what it is). The counters are folded every 5 s during the
 * run, as a deployment's worker does.
 */
const SMALL = Number(process.env.BENCH_SCALE_SMALL ?? 10_000);
const LARGE = Number(process.env.BENCH_SCALE_EVENTS ?? 1_000_000);
const CALLS = Number(process.env.BENCH_SCALE_CALLS ?? 20);
const BATCH = 500;
const TOKEN = `bench-scale-${randomBytes(8).toString('hex')}`;

const SURFACES = [
  ['GET /api/events/overview', '/api/events/overview'],
  ['GET /api/events/statistics (24 h)', '/api/events/statistics?since=24h'],
  ['GET /api/events/statistics (31 d)', '/api/events/statistics?since=31d'],
  ['GET /api/events/projections', '/api/events/projections'],
  ['GET /api/events/failures', '/api/events/failures'],
  ['GET /metrics (scrape)', '/metrics'],
] as const;
const STATUS_LINE = 'npm start status line (readDemoStatus)';

const t0 = Date.now();
const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(0)} s`;
const db = await freshDatabase('scale');
const config = loadConfig({ NODE_ENV: 'production', LOG_LEVEL: 'warn', DATABASE_URL: db.url, API_TOKEN: TOKEN, QUEUE_PREFIX: `{hdt-bench-scale-${randomBytes(3).toString('hex')}}` });
const c = await createContainer(config, createLogger('warn'), { register: false });
const server = await startWebServer(c, { port: 0, host: '127.0.0.1' });
const gen = createEventGenerator({ seed: 42, streams: LARGE / 10, runId: 'scale' });
const admin = new pg.Client({ connectionString: db.url });
await admin.connect();
// What a deployment's worker does every 5 s (workerHost): fold the append counters' deltas, so they
// never pile up between two monitoring calls. This bench runs no worker, so it folds itself.
const folder = setInterval(() => void foldCounters(c.pool).catch(() => {}), FOLD_INTERVAL_MS);

async function timeCall(fn: () => Promise<void>): Promise<number> {
  const s = performance.now();
  await fn();
  return performance.now() - s;
}

async function get(path: string): Promise<void> {
  const res = await fetch(server.url + path, { headers: { authorization: `Bearer ${TOKEN}` } });
  if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
  await res.arrayBuffer();
}

/** Median milliseconds of CALLS calls per surface, after one warm-up call each. */
async function measure(): Promise<Map<string, number>> {
  // What autovacuum would have done by now (it is off on the test server here): the tables that churn
  // (rows inserted and deleted again: outbox, owed work, counter deltas; stream versions updated) are
  // vacuumed, and the planner's statistics refreshed. Without it a count of an empty outbox read 1M
  // dead rows (106 MB) at the second measurement.
  await admin.query('VACUUM event_outbox, consumer_owed, owed_batches, event_counter_deltas, projection_counter_deltas, event_streams');
  await admin.query('ANALYZE');
  const out = new Map<string, number>();
  const surfaces: [string, () => Promise<void>][] = [
    ...SURFACES.map(([name, path]) => [name, () => get(path)] as [string, () => Promise<void>]),
    [STATUS_LINE, async () => void (await readDemoStatus(c.pool, c.projections))],
  ];
  for (const [name, fn] of surfaces) {
    await fn();
    const times: number[] = [];
    for (let i = 0; i < CALLS; i++) times.push(await timeCall(fn));
    out.set(name, median(times));
  }
  return out;
}

async function storeCount(): Promise<number> {
  return Number((await admin.query('SELECT count(*) AS n FROM event_store')).rows[0].n);
}

const progress = (target: number) => (done: number) => {
  if (done % 50_000 === 0 || done === target) process.stdout.write(`\rseeded ${done.toLocaleString('en-US')} / ${target.toLocaleString('en-US')}  (${elapsed()})`);
};

await seedEvents(c.bus, gen, { events: SMALL, batch: BATCH, onProgress: progress(SMALL) });
console.log('');
const small = await measure();
const smallCount = await storeCount();
console.log(`measured at ${smallCount.toLocaleString('en-US')} events (${elapsed()})`);
const seedStart = Date.now();
await seedEvents(c.bus, gen, { events: LARGE - SMALL, batch: BATCH, onProgress: (d) => progress(LARGE)(d + SMALL) });
const seedSeconds = (Date.now() - seedStart) / 1000;
console.log(`\nseeded ${(LARGE - SMALL).toLocaleString('en-US')} events in ${seedSeconds.toFixed(0)} s (${Math.round((LARGE - SMALL) / seedSeconds)} events/s)`);
const large = await measure();
const largeCount = await storeCount();
console.log(`measured at ${largeCount.toLocaleString('en-US')} events (${elapsed()})`);
clearInterval(folder);
await server.close();
// Queues exist in Redis as meta keys even with nothing enqueued: remove this run's (its own prefix only).
for (const q of [...Object.values(c.queues), ...c.routes.map((r) => c.consumerQueues.own(r.name))]) await q.obliterate({ force: true }).catch(() => {});
await c.close();

// The monitoring table first: it stands on its own whatever happens to the rebuild.
const rows = [...small.keys()].map((name) => ({ name, small: small.get(name)!, large: large.get(name)!, ratio: large.get(name)! / small.get(name)! }));
const header = ['surface', `median ms at ${smallCount.toLocaleString('en-US')}`, `median ms at ${largeCount.toLocaleString('en-US')}`, 'ratio'];
const lines = rows.map((r) => [r.name, r.small.toFixed(2), r.large.toFixed(2), `${r.ratio.toFixed(2)}×`]);
const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
const fmt = (cells: string[]) => `| ${cells.map((x, i) => x.padEnd(widths[i]!)).join(' | ')} |`;
console.log(`\n## Monitoring cost against store size (median of ${CALLS} calls)\nmachine: ${machine()}\ndate: ${new Date().toISOString()}\n`);
console.log(fmt(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const l of lines) console.log(fmt(l));
const maxRatio = Math.max(...rows.map((r) => r.ratio));

// The rebuild, in a process of its own (its peak RSS is the rebuild's alone: VmHWM of that process,
// polled, and its own maxRSS when it finishes). Within the bench's time budget (10 minutes in all by
// default); past it the child is stopped and the rate is the one of the events it applied so far.
const budgetS = Math.max(30, Number(process.env.BENCH_SCALE_BUDGET_S ?? 570) - (Date.now() - t0) / 1000);
const rebuildStart = performance.now();
const rebuild = await new Promise<{ events: number; seconds: number; peakRssMb: number; complete: boolean }>((resolve, reject) => {
  const child = spawn(process.execPath, ['--max-semi-space-size=64', '--import', 'tsx', fileURLToPath(new URL('./scaleRebuild.ts', import.meta.url))], {
    env: { ...process.env, BENCH_DB_URL: db.url },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  let hwmKb = 0;
  let stopped = false;
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const poll = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) hwmKb = Math.max(hwmKb, Number(m[1]));
    } catch {
      /* exited */
    }
  }, 500);
  const timer = setTimeout(async () => {
    stopped = true;
    // Events applied so far: finished projections' rebuilds plus the running one's replay cursor.
    const r = await admin.query(`
      SELECT (SELECT coalesce(sum(events_processed), 0) FROM event_subscriptions WHERE name LIKE 'replay:%')
           + (SELECT coalesce(sum(last_rebuild_events), 0) FROM event_projections WHERE last_rebuild_finished_at IS NOT NULL) AS n`);
    const seconds = (performance.now() - rebuildStart) / 1000;
    child.kill('SIGKILL');
    resolve({ events: Number(r.rows[0].n), seconds, peakRssMb: Math.round(hwmKb / 1024), complete: false });
  }, budgetS * 1000);
  child.on('error', reject);
  child.on('exit', (code) => {
    clearInterval(poll);
    if (stopped) return;
    clearTimeout(timer);
    if (code !== 0) return reject(new Error(`rebuild child exited with ${code}: ${out}`));
    const r = JSON.parse(out.trim().split('\n').pop()!) as { events: number; seconds: number; peakRssMb: number };
    resolve({ ...r, peakRssMb: Math.max(r.peakRssMb, Math.round(hwmKb / 1024)), complete: true });
  });
});
await admin.end();
await db.drop();

const applied = Math.round(rebuild.events / rebuild.seconds);
console.log(
  `\nrebuild of all projections at ${largeCount.toLocaleString('en-US')} events: ${rebuild.events.toLocaleString('en-US')} events applied in ${rebuild.seconds.toFixed(1)} s ` +
    `(${applied.toLocaleString('en-US')} events applied/s), peak RSS ${rebuild.peakRssMb} MB` +
    (rebuild.complete ? '' : ` — STOPPED at the time budget (${budgetS.toFixed(0)} s), not finished: rate and RSS are those of the part it ran`),
);
console.log(`total ${elapsed()}`);
console.log(`RESULT monitor_cost_ratio_1m_over_10k=${maxRatio.toFixed(2)} rebuild_1m_eps=${applied} rebuild_1m_peak_rss_mb=${rebuild.peakRssMb}${rebuild.complete ? '' : ' rebuild_complete=false'}`);
process.exit(0);
