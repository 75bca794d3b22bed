import { Queue, Worker } from 'bullmq';
import pg from 'pg';
import { randomBytes, randomUUID } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { runMigrations as graphileMigrations } from 'graphile-worker';
import { createContainer, type Container } from '../src/app/container.js';
import { loadConfig } from '../src/config.js';
import { createEventGenerator } from '../src/demo/eventGenerator.js';
import { rng } from '../src/demo/random.js';
import { PLATFORMS } from '../src/domain/valueObjects/PlatformSource.js';
import type { DispatchInput } from '../src/eventBus/EventBus.js';
import { createLogger } from '../src/logger.js';
import { freshDatabase, horizonWatch, median, printTable, resultLine, waitForHorizon, type Row } from './support.js';

/**
 * End-to-end throughput: from dispatch (batches of 500) until every projection and handler is done.
 * Baselines from the same run on the same Postgres and Redis: raw BullMQ no-op jobs/s, the naive
 * design (one job per event, one upsert transaction per job into a one-table read model), and
 * graphile-worker 0.17.3 on the one-read-model workload. See README, Benchmarks, for each figure.
 */
const N = Number(process.env.BENCH_E2E_EVENTS ?? 20_000);
/** Back-to-back runs whose median is reported (all consumers vs naive; one read model vs graphile-worker). */
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** Events appended before any worker starts, for the 1-vs-3 worker processes drain. */
const BACKLOG = Number(process.env.BENCH_BACKLOG ?? 60_000);
/** Streams of the one-read-model workload (N TicketPriceChanged spread over them). */
const ONE_MODEL_STREAMS = Number(process.env.BENCH_ONE_MODEL_STREAMS ?? 1_000);
/** Seconds of the paced 1,000 events/s lag measurement. */
const LAG_SECONDS = Number(process.env.BENCH_LAG_SECONDS ?? 10);
/** Which parts to run (comma-separated): raw, all, two, ticket, graphile, backlog, pgbackend. RESULT fields of parts not run are NaN. */
const PARTS = new Set((process.env.BENCH_E2E_ONLY ?? 'raw,all,two,ticket,graphile,backlog,pgbackend').split(',').map((x) => x.trim()));
const GRAPHILE_CONCURRENCY = process.env.BENCH_GRAPHILE_CONCURRENCY ?? process.env.WORKER_CONCURRENCY ?? '2';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const redisConn = () => ({ host: new URL(REDIS_URL).hostname, port: Number(new URL(REDIS_URL).port || 6379), maxRetriesPerRequest: null });
/** This process's own sessions (application_name hdt:<script>): left out of the lock-wait sampling. */
const OWN_APP_NAME = `hdt:${(process.argv[1] ?? 'node').split('/').pop()!.replace(/\.(ts|js|mjs|cjs)$/, '')}`.slice(0, 63);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rawBullmq(prefix: string): Promise<number> {
  const q = new Queue('noop', { connection: redisConn(), prefix });
  const jobs = Array.from({ length: N }, (_, i) => ({ name: 'noop', data: { i }, opts: { removeOnComplete: true } }));
  let done = 0;
  const t0 = performance.now();
  const w = new Worker('noop', async () => void done++, { connection: redisConn(), prefix, concurrency: 50 });
  for (let i = 0; i < N; i += 1000) await q.addBulk(jobs.slice(i, i + 1000));
  while (done < N) await sleep(10);
  const rate = N / ((performance.now() - t0) / 1000);
  await w.close();
  await q.obliterate({ force: true });
  await q.close();
  return rate;
}

/** One BullMQ job per event, one upsert transaction per job, one read-model table. */
async function naive(prefix: string): Promise<number> {
  const db = await freshDatabase('naive');
  const pool = new pg.Pool({ connectionString: db.url, max: 10 });
  // Dropping the database at the end terminates idle connections; that is not a benchmark failure.
  pool.on('error', () => {});
  await pool.query(`CREATE TABLE naive_events (id uuid PRIMARY KEY, stream_id text, payload jsonb);
                    CREATE TABLE naive_read_model (id text PRIMARY KEY, doc jsonb, updated_at timestamptz)`);
  const q = new Queue('naive', { connection: redisConn(), prefix });
  let done = 0;
  const w = new Worker(
    'naive',
    async (job) => {
      const c = await pool.connect();
      try {
        await c.query('BEGIN');
        const { rows } = await c.query('SELECT stream_id, payload FROM naive_events WHERE id = $1', [job.data.id]);
        await c.query(
          `INSERT INTO naive_read_model (id, doc, updated_at) VALUES ($1, $2, now())
           ON CONFLICT (id) DO UPDATE SET doc = naive_read_model.doc || EXCLUDED.doc, updated_at = now()`,
          [rows[0].stream_id, rows[0].payload],
        );
        await c.query('COMMIT');
      } finally {
        c.release();
      }
      done++;
    },
    { connection: redisConn(), prefix, concurrency: 8 },
  );
  const gen = createEventGenerator({ seed: 5, streams: N / 10, runId: 'naive' });
  await pool.query('ANALYZE');
  const t0 = performance.now();
  for (let i = 0; i < N; i += 500) {
    const batch = gen.batch(500).map((e) => ({ id: randomUUID(), stream: JSON.stringify(e.payload).slice(0, 40), payload: e.payload }));
    await pool.query(`INSERT INTO naive_events SELECT * FROM unnest($1::uuid[], $2::text[], $3::jsonb[])`, [batch.map((b) => b.id), batch.map((b) => b.stream), batch.map((b) => JSON.stringify(b.payload))]);
    await q.addBulk(batch.map((b) => ({ name: 'e', data: { id: b.id }, opts: { removeOnComplete: true } })));
  }
  while (done < N) await sleep(10);
  const rate = N / ((performance.now() - t0) / 1000);
  await w.close();
  await q.obliterate({ force: true });
  await q.close();
  await pool.end();
  await db.drop();
  return rate;
}

/**
 * The one-read-model workload: only TicketPriceChanged, over `streams` ticket streams (no
 * TicketDiscovered first; the ticket projection starts a blank document), so every event reaches the
 * ticket read model. Deterministic from its seed: ours and graphile-worker get the same events.
 */
function priceChanges(streams: number, seed: number) {
  const r = rng(seed);
  const prices = Array.from({ length: streams }, () => r.int(25, 400) * 100);
  return {
    batch(n: number): DispatchInput[] {
      return Array.from({ length: n }, () => {
        const i = Math.floor(r.next() * streams);
        const old = prices[i]!;
        const next = Math.max(100, Math.round(old * (0.8 + r.next() * 0.35)));
        prices[i] = next;
        return {
          type: 'TicketPriceChanged',
          payload: { ticketId: `pc-${i}`, platform: PLATFORMS[i % PLATFORMS.length]!, oldPrice: { amountMinor: old, currency: 'GBP' }, newPrice: { amountMinor: next, currency: 'GBP' } },
        };
      });
    },
  };
}

/** Events that reached a ticket read model: every TicketPriceChanged adds one to its ticket's priceChanges. */
async function priceChangesApplied(db: pg.Pool | pg.Client, table: string): Promise<number> {
  const { rows } = await db.query(`SELECT coalesce(sum((doc->>'priceChanges')::int8), 0)::int8 AS n FROM ${table}`);
  return Number(rows[0].n);
}

/** What the one-read-model workload leaves per ticket (price, lowest, highest, changes), as one hash: ours and graphile-worker's must agree. */
async function ticketFingerprint(db: pg.Pool | pg.Client, table: string): Promise<string> {
  const { rows } = await db.query(
    `SELECT md5(coalesce(string_agg(concat_ws(':', id, doc->'price'->>'amountMinor', doc->'lowestPrice'->>'amountMinor', doc->'highestPrice'->>'amountMinor', doc->>'priceChanges'), ',' ORDER BY id), '')) AS h
     FROM ${table} WHERE doc <> 'null'::jsonb`,
  );
  return String(rows[0].h);
}

function startWorkers(count: number, env: Record<string, string>): ChildProcess[] {
  return Array.from({ length: count }, () =>
    spawn(process.execPath, ['--max-semi-space-size=64', ...(process.env.BENCH_WORKER_NODE_FLAGS?.split(' ').filter(Boolean) ?? []), '--import', 'tsx', 'workers/worker.ts'], { cwd: ROOT, env: { ...process.env, LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'error', ...env }, stdio: 'inherit' }),
  );
}

async function stopWorkers(ws: ChildProcess[]) {
  await Promise.all(ws.map((w) => new Promise((r) => (w.exitCode !== null ? r(null) : (w.on('exit', r), w.kill('SIGTERM'))))));
}

/** Done when Postgres owes nothing: no outbox row, no owed row (each is deleted with its consumer's effect). */
async function drained(c: Container): Promise<boolean> {
  const { rows } = await c.appendPool.query('SELECT (SELECT count(*) FROM event_outbox) + (SELECT count(*) FROM consumer_owed) AS n');
  return Number(rows[0].n) === 0;
}

/** A fresh database, our container in this process (the producer), and the worker processes' env. */
async function ourSystem(label: string, consumers?: string, extraEnv: Record<string, string> = {}) {
  const db = await freshDatabase(label);
  const env: Record<string, string> = { DATABASE_URL: db.url, QUEUE_PREFIX: `{bench-${randomBytes(3).toString('hex')}}`, WORKER_CONCURRENCY: process.env.WORKER_CONCURRENCY ?? '2', DATABASE_POOL_SIZE: '8', JOB_BATCH_SIZE: process.env.JOB_BATCH_SIZE ?? '500', ...extraEnv };
  if (consumers) env.CONSUMERS = consumers;
  const config = loadConfig({ ...process.env, ...env, LOG_LEVEL: 'error' });
  const c = await createContainer(config, createLogger((process.env.BENCH_LOG_LEVEL as 'error') ?? 'error'));
  const allQueues = () => [...Object.values(c.queues), ...c.routes.map((r) => c.consumerQueues.own(r.name))];
  const teardown = async (ws: ChildProcess[]) => {
    await stopWorkers(ws);
    for (const q of allQueues()) await q.obliterate({ force: true }).catch(() => {});
    await c.close();
    await db.drop();
  };
  return { db, env, c, allQueues, teardown };
}

export async function ours(workers: number, consumers?: string): Promise<{ rate: number; p50?: number; p99?: number }> {
  const { env, c, teardown } = await ourSystem(`e2e${workers}`, consumers);
  const ws = startWorkers(workers, env);
  // Warm up: wait until the workers take and finish a first batch.
  const gen = createEventGenerator({ seed: 9, streams: N / 10, runId: 'e2e' });
  for (let i = 0; i < 4; i++) await c.bus.dispatchMany(gen.batch(500));
  while (!(await drained(c))) await sleep(100);
  // Steady-state planner statistics, as autovacuum would have them on a running system.
  await c.appendPool.query('ANALYZE');
  const t0 = performance.now();
  for (let i = 0; i < N; i += 500) await c.bus.dispatchMany(gen.batch(500));
  while (!(await drained(c))) await sleep(20);
  const rate = N / ((performance.now() - t0) / 1000);

  let p50: number | undefined;
  let p99: number | undefined;
  if (!consumers) {
    // The throughput run grew every table tenfold; refresh statistics as autovacuum would (it is off
    // on the CI machine's PostgreSQL).
    await c.appendPool.query('ANALYZE');
    // Steady 1,000 events/s for LAG_SECONDS (50 events every 50 ms); lag from the append transaction
    // to the handler transaction that processed the event (both on the database clock).
    const startedAt = new Date().toISOString();
    const tick = performance.now();
    for (let k = 0; k < LAG_SECONDS * 20; k++) {
      await c.bus.dispatchMany(gen.batch(50));
      const wait = tick + (k + 1) * 50 - performance.now();
      if (wait > 0) await sleep(wait);
    }
    while (!(await drained(c))) await sleep(50);
    const { rows } = await c.appendPool.query(
      `SELECT extract(epoch FROM (l.processed_at - e.recorded_at)) * 1000 AS ms
       FROM event_handler_ledger l JOIN event_store e ON e.id = l.event_id
       WHERE e.recorded_at >= $1 ORDER BY ms`,
      [startedAt],
    );
    const lags = rows.map((r) => Number(r.ms));
    p50 = lags[Math.floor(lags.length * 0.5)];
    p99 = lags[Math.floor(lags.length * 0.99)];
  }
  await teardown(ws);
  return { rate, p50, p99 };
}

/**
 * Ours on the one-read-model workload: one worker process running only the ticket projection; N
 * TicketPriceChanged dispatched in batches of 500; timed until all N reached the read model.
 */
async function oursOneModel(): Promise<{ rate: number; fingerprint: string }> {
  const { env, c, teardown } = await ourSystem('e2e1m', 'TicketReadModelProjection');
  const ws = startWorkers(1, env);
  const gen = priceChanges(ONE_MODEL_STREAMS, 13);
  const warm = 2000;
  for (let i = 0; i < warm; i += 500) await c.bus.dispatchMany(gen.batch(500));
  while ((await priceChangesApplied(c.appendPool, 'ticket_read_models')) < warm) await sleep(100);
  while (!(await drained(c))) await sleep(100);
  await c.appendPool.query('ANALYZE');
  const t0 = performance.now();
  for (let i = 0; i < N; i += 500) await c.bus.dispatchMany(gen.batch(500));
  while ((await priceChangesApplied(c.appendPool, 'ticket_read_models')) < warm + N) await sleep(20);
  const rate = N / ((performance.now() - t0) / 1000);
  const fingerprint = await ticketFingerprint(c.appendPool, 'ticket_read_models');
  await teardown(ws);
  return { rate, fingerprint };
}

/**
 * graphile-worker 0.17.3 on the same workload: the producer inserts each batch of 500 events into
 * `gw_events` (one multi-row INSERT) and enqueues 1 job per 100 events with graphile_worker.add_job,
 * in the same statement (so the same transaction). One worker process (bench/graphileWorker.ts,
 * concurrency BENCH_GRAPHILE_CONCURRENCY, default WORKER_CONCURRENCY or 2, as ours) applies each job
 * in one transaction with one multi-row upsert. Timed until all N reached its read model.
 */
async function graphile(): Promise<{ rate: number; fingerprint: string }> {
  const db = await freshDatabase('gw');
  const pool = new pg.Pool({ connectionString: db.url, max: 4 });
  pool.on('error', () => {});
  await pool.query(`
    CREATE TABLE gw_events (position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, id uuid NOT NULL UNIQUE, stream_id text NOT NULL,
                            type text NOT NULL, payload jsonb NOT NULL, occurred_at timestamptz NOT NULL DEFAULT now());
    CREATE INDEX ON gw_events (stream_id, position);
    CREATE TABLE gw_ticket_read_models (LIKE ticket_read_models INCLUDING ALL);`);
  await graphileMigrations({ connectionString: db.url });
  const child = spawn(process.execPath, ['--max-semi-space-size=64', '--import', 'tsx', 'bench/graphileWorker.ts'], {
    cwd: ROOT,
    env: { ...process.env, DATABASE_URL: db.url, GRAPHILE_CONCURRENCY },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (l) => l.trim() === 'ready' && resolve());
    child.on('exit', (code) => reject(new Error(`graphile-worker process exited with code ${code}`)));
  });
  const append = async (batch: DispatchInput[]) => {
    const ev = batch.map((e) => {
      const p = e.payload as { ticketId: string };
      return { id: randomUUID(), stream: `ticket-${p.ticketId}`, type: e.type, payload: JSON.stringify(e.payload) };
    });
    await pool.query(
      `WITH ins AS (
         INSERT INTO gw_events (id, stream_id, type, payload)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[])
         RETURNING position)
       SELECT count(graphile_worker.add_job('apply_ticket_prices', json_build_object('ids', ids)))
       FROM (SELECT array_agg(position ORDER BY position) AS ids
             FROM (SELECT position, (row_number() OVER (ORDER BY position) - 1) / 100 AS g FROM ins) x GROUP BY g) j`,
      [ev.map((e) => e.id), ev.map((e) => e.stream), ev.map((e) => e.type), ev.map((e) => e.payload)],
    );
  };
  const gen = priceChanges(ONE_MODEL_STREAMS, 13);
  const warm = 2000;
  for (let i = 0; i < warm; i += 500) await append(gen.batch(500));
  while ((await priceChangesApplied(pool, 'gw_ticket_read_models')) < warm) await sleep(100);
  await pool.query('ANALYZE');
  const t0 = performance.now();
  for (let i = 0; i < N; i += 500) await append(gen.batch(500));
  while ((await priceChangesApplied(pool, 'gw_ticket_read_models')) < warm + N) await sleep(20);
  const rate = N / ((performance.now() - t0) / 1000);
  const fingerprint = await ticketFingerprint(pool, 'gw_ticket_read_models');
  child.removeAllListeners('exit');
  await new Promise((r) => (child.exitCode !== null ? r(null) : (child.on('exit', r), child.kill('SIGTERM'))));
  await pool.end();
  await db.drop();
  return { rate, fingerprint };
}

/**
 * Samples pg_stat_activity every 100 ms: of the active sessions on this database (leaving out the
 * sampler and this bench process's own sessions), how many wait on a lock. The share is summed over
 * all samples: lock-waiting session-samples / active session-samples. For diagnosis it also counts
 * sessions idle in a transaction, and what the sessions blocking a lock waiter were doing (their state
 * and the start of their statement, via pg_blocking_pids), printed to stderr after the drain.
 */
function lockSampler(url: string, label: string) {
  const client = new pg.Client({ connectionString: url });
  let stopped = false;
  let waiting = 0;
  let active = 0;
  let idleInTx = 0;
  let samples = 0;
  const byEvent = new Map<string, number>();
  const blockers = new Map<string, number>();
  const loop = (async () => {
    await client.connect();
    while (!stopped) {
      const t = performance.now();
      const { rows } = await client.query(
        `SELECT a.state, coalesce(a.wait_event_type, '') AS type, coalesce(a.wait_event, '') AS event,
                CASE WHEN a.wait_event_type = 'Lock' THEN
                  (SELECT array_agg(coalesce(b.state, '?') || ': ' || left(regexp_replace(b.query, '\\s+', ' ', 'g'), 90))
                   FROM pg_stat_activity b WHERE b.pid = ANY(pg_blocking_pids(a.pid))) END AS blockers
         FROM pg_stat_activity a
         WHERE a.datname = current_database() AND a.state IN ('active', 'idle in transaction') AND a.pid <> pg_backend_pid() AND a.application_name <> $1`,
        [OWN_APP_NAME],
      );
      for (const r of rows as { state: string; type: string; event: string; blockers: string[] | null }[]) {
        if (r.state !== 'active') {
          idleInTx++;
          continue;
        }
        active++;
        if (r.type === 'Lock') {
          waiting++;
          byEvent.set(r.event, (byEvent.get(r.event) ?? 0) + 1);
          for (const b of r.blockers ?? []) blockers.set(b, (blockers.get(b) ?? 0) + 1);
        }
      }
      samples++;
      const rest = 100 - (performance.now() - t);
      if (rest > 0) await sleep(rest);
    }
    await client.end();
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      // Which locks (tuple, transactionid, relation, advisory…), as shares of the lock waits.
      const kinds = [...byEvent].sort((a, b) => b[1] - a[1]).map(([e, n]) => `${e} ${Math.round((100 * n) / waiting)} %`).join(', ');
      const top = [...blockers].sort((a, b) => b[1] - a[1]).slice(0, 5);
      if (top.length) console.error(`lock waits during the ${label} drain, blocked by (session-samples):\n${top.map(([q, n]) => `  ${n}  ${q}`).join('\n')}`);
      return { share: active ? waiting / active : 0, samples, meanActive: samples ? active / samples : 0, meanIdleInTx: samples ? idleInTx / samples : 0, kinds };
    },
  };
}

/**
 * Worker processes on a backlog, all consumers: BACKLOG generated events are appended (and their jobs
 * enqueued) while every queue is paused and no worker runs; then `workers` processes start, and once
 * each has its BullMQ worker on the queue the queues are resumed and the drain is timed until Postgres
 * owes nothing. Lock waits are sampled during the drain.
 */
async function backlogDrain(workers: number): Promise<{ rate: number; lockShare: number; samples: number; meanActive: number; meanIdleInTx: number; kinds: string }> {
  // The backlog waits longer than the reconciler's horizon; its jobs are alive (paused), not lost.
  const { db, env, c, allQueues, teardown } = await ourSystem(`bl${workers}`, undefined, { OWED_REDELIVER_AFTER_MS: String(24 * 3_600_000) });
  for (const q of allQueues()) await q.pause();
  const gen = createEventGenerator({ seed: 21, streams: BACKLOG / 10, runId: 'bl' });
  for (let i = 0; i < BACKLOG; i += 500) await c.bus.dispatchMany(gen.batch(Math.min(500, BACKLOG - i)));
  await c.appendPool.query('ANALYZE');
  await waitForHorizon(c.appendPool);
  const ws = startWorkers(workers, env);
  const deadline = Date.now() + 120_000;
  while ((await c.queues.projections.getWorkersCount()) < workers || (await c.queues.handlers.getWorkersCount()) < workers) {
    if (Date.now() > deadline) throw new Error(`only ${await c.queues.projections.getWorkersCount()} of ${workers} worker processes came up`);
    await sleep(100);
  }
  const sampler = lockSampler(db.url, `${workers}-worker`);
  const t0 = performance.now();
  for (const q of allQueues()) await q.resume();
  while (!(await drained(c))) await sleep(50);
  const rate = BACKLOG / ((performance.now() - t0) / 1000);
  const locks = await sampler.stop();
  await teardown(ws);
  return { rate, lockShare: locks.share, samples: locks.samples, meanActive: locks.meanActive, meanIdleInTx: locks.meanIdleInTx, kinds: locks.kinds };
}

export interface E2eResult {
  rows: Row[];
  result: Record<string, number>;
}

export async function runE2eBenchWithResult(): Promise<E2eResult> {
  const run = (part: string) => PARTS.has(part);
  const watch = horizonWatch();
  const prefix = `{bench-raw-${randomBytes(3).toString('hex')}}`;
  const raw = run('raw') ? await rawBullmq(prefix) : NaN;

  // All consumers vs naive, RUNS back-to-back pairs.
  const naiveRates: number[] = [];
  const oneRuns: { rate: number; p50?: number; p99?: number }[] = [];
  for (let i = 0; run('all') && i < RUNS; i++) {
    naiveRates.push(await naive(prefix));
    oneRuns.push(await ours(1));
  }
  const naiveRate = run('all') ? median(naiveRates) : NaN;
  const oneRate = run('all') ? median(oneRuns.map((r) => r.rate)) : NaN;
  const two = run('two') ? await ours(2) : { rate: NaN, p50: NaN, p99: NaN };
  const oneModelGen = run('ticket') ? await ours(1, 'TicketReadModelProjection') : { rate: NaN };

  // One read model (TicketPriceChanged only) vs graphile-worker, RUNS back-to-back pairs.
  const oneModel: number[] = [];
  const gw: number[] = [];
  const fingerprints = new Set<string>();
  for (let i = 0; run('graphile') && i < RUNS; i++) {
    const o = await oursOneModel();
    const g = await graphile();
    oneModel.push(o.rate);
    gw.push(g.rate);
    fingerprints.add(o.fingerprint).add(g.fingerprint);
  }
  // Same events, so the same ticket rows (price, lowest, highest, changes) on both sides, every run.
  if (fingerprints.size > 1) console.warn(`warning: the one-read-model runs left different ticket read models (${fingerprints.size} distinct fingerprints)`);

  // 1 vs 3 worker processes on a backlog.
  const none = { rate: NaN, lockShare: NaN, samples: 0, meanActive: NaN, meanIdleInTx: NaN, kinds: '' };
  const w1 = run('backlog') ? await backlogDrain(1) : none;
  const w3 = run('backlog') ? await backlogDrain(3) : none;

  // The same runs on BullMQ's PostgreSQL backend (QUEUE_BACKEND=postgres), against this run's Redis figures.
  const pg = run('pgbackend') ? await (await import('./pgBackend.js')).runPgBackendBench(ours, run('all') ? oneRate : undefined, run('ticket') ? oneModelGen.rate : undefined) : null;

  const held = await watch.stop();
  const p50 = run('all') ? median(oneRuns.map((r) => r.p50 ?? NaN)) : NaN;
  const p99 = run('all') ? median(oneRuns.map((r) => r.p99 ?? NaN)) : NaN;
  const list = (xs: number[]) => xs.map((x) => Math.round(x).toLocaleString('en-US')).join(', ');
  const tagged: (Row & { part: string })[] = [
    { part: 'raw', benchmark: 'raw BullMQ no-op jobs (concurrency 50)', value: raw, unit: 'jobs/s' },
    { part: 'all', benchmark: `naive: job per event, txn per job, 1 read model (concurrency 8), median of ${RUNS} (${list(naiveRates)})`, value: naiveRate, unit: 'events/s' },
    { part: 'all', benchmark: `end to end, all 3 projections + 5 handlers, 1 worker process, median of ${RUNS} (${list(oneRuns.map((r) => r.rate))})`, value: oneRate, unit: 'events/s', baseline: 'naive design (median)', baselineValue: naiveRate },
    { part: 'two', benchmark: `end to end, all 3 projections + 5 handlers, 2 worker processes`, value: two.rate, unit: 'events/s', baseline: 'naive design (median)', baselineValue: naiveRate },
    { part: 'ticket', benchmark: 'end to end, ticket read model only (generated workload), 1 worker process', value: oneModelGen.rate, unit: 'events/s', baseline: 'naive design (median)', baselineValue: naiveRate },
    {
      part: 'graphile',
      benchmark: `one read model: ${N.toLocaleString('en-US')} TicketPriceChanged over ${ONE_MODEL_STREAMS.toLocaleString('en-US')} streams, 1 worker process, median of ${RUNS} (${list(oneModel)})`,
      value: median(oneModel),
      unit: 'events/s',
      baseline: `graphile-worker 0.17.3, job per 100 events enqueued in the append txn, concurrency ${GRAPHILE_CONCURRENCY}, median of ${RUNS} (${list(gw)})`,
      baselineValue: median(gw),
    },
    { part: 'graphile', benchmark: 'one read model: distinct ticket read-model contents over all those runs, ours and graphile-worker (expect 1)', value: fingerprints.size, unit: '' },
    { part: 'backlog', benchmark: `drain of a ${BACKLOG.toLocaleString('en-US')}-event backlog, all consumers, 3 worker processes`, value: w3.rate, unit: 'events/s', baseline: 'same, 1 worker process', baselineValue: w1.rate },
    { part: 'backlog', benchmark: `lock-wait share of active sessions during the drain, 1 worker process (${w1.samples} samples, ${w1.meanActive.toFixed(1)} active and ${w1.meanIdleInTx.toFixed(1)} idle in transaction on average; waits: ${w1.kinds || 'none'})`, value: w1.lockShare * 100, unit: '%' },
    { part: 'backlog', benchmark: `lock-wait share of active sessions during the drain, 3 worker processes (${w3.samples} samples, ${w3.meanActive.toFixed(1)} active and ${w3.meanIdleInTx.toFixed(1)} idle in transaction on average; waits: ${w3.kinds || 'none'})`, value: w3.lockShare * 100, unit: '%' },
    { part: 'all', benchmark: `lag p50 at 1,000 events/s, 1 worker process, median of ${RUNS} (${list(oneRuns.map((r) => r.p50 ?? NaN))})`, value: p50, unit: 'ms' },
    { part: 'all', benchmark: `lag p99 at 1,000 events/s, 1 worker process, median of ${RUNS} (${list(oneRuns.map((r) => r.p99 ?? NaN))})`, value: p99, unit: 'ms' },
    { part: 'two', benchmark: 'lag p50 at 1,000 events/s, 2 worker processes', value: two.p50 ?? NaN, unit: 'ms' },
    { part: 'two', benchmark: 'lag p99 at 1,000 events/s, 2 worker processes', value: two.p99 ?? NaN, unit: 'ms' },
  ];
  const rows: Row[] = tagged.filter((r) => run(r.part)).map(({ part: _part, ...r }) => r);
  if (pg) rows.push(...pg.rows);
  rows.push({ benchmark: 'longest xmin-horizon hold by another session during the run (0 = none over 1 s; else the figures are unreliable)', value: held, unit: 's' });
  const result = {
    all_consumers_ratio_naive: oneRate / naiveRate,
    one_model_eps: median(oneModel),
    graphile_eps: median(gw),
    one_model_ratio_graphile: median(oneModel) / median(gw),
    workers1_eps: w1.rate,
    workers3_eps: w3.rate,
    workers3_over_workers1: w3.rate / w1.rate,
    lock_wait_share_3w: w3.lockShare,
    lag_p99_ms: p99,
    pg_backend_all_consumers_eps: pg?.result.pg_backend_all_consumers_eps ?? NaN,
    pg_backend_ratio_redis: pg?.result.pg_backend_ratio_redis ?? NaN,
  };
  return { rows, result };
}

export async function runE2eBench(): Promise<Row[]> {
  return (await runE2eBenchWithResult()).rows;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { rows, result } = await runE2eBenchWithResult();
  printTable(`End to end (${N.toLocaleString('en-US')} events, dispatched in batches of 500; backlog ${BACKLOG.toLocaleString('en-US')})`, rows);
  console.log(resultLine(result));
  process.exit(0);
}
