import { Queue, Worker } from 'bullmq';
import pg from 'pg';
import { randomBytes, randomUUID } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createContainer, type Container } from '../src/app/container.js';
import { loadConfig } from '../src/config.js';
import { createEventGenerator } from '../src/demo/eventGenerator.js';
import { createLogger } from '../src/logger.js';
import { freshDatabase, median, printTable, type Row } from './support.js';

/**
 * End-to-end throughput: from dispatch (batches of 500) until every projection and handler is done,
 * with 1 and 2 worker processes; lag p50/p99 at a steady 1,000 events/s. Baselines from the same run
 * on the same Postgres and Redis: raw BullMQ no-op jobs/s, and the naive design (one job per event,
 * one upsert transaction per job into a one-table read model).
 */
const N = Number(process.env.BENCH_E2E_EVENTS ?? 20_000);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const redisConn = () => ({ host: new URL(REDIS_URL).hostname, port: Number(new URL(REDIS_URL).port || 6379), maxRetriesPerRequest: null });

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
async function naive(url: string, prefix: string): Promise<number> {
  const pool = new pg.Pool({ connectionString: url, max: 10 });
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
  return rate;
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

export async function ours(workers: number, consumers?: string): Promise<{ rate: number; p50?: number; p99?: number }> {
  const db = await freshDatabase(`e2e${workers}`);
  const env: Record<string, string> = { DATABASE_URL: db.url, QUEUE_PREFIX: `{bench-${randomBytes(3).toString('hex')}}`, WORKER_CONCURRENCY: process.env.WORKER_CONCURRENCY ?? '2', DATABASE_POOL_SIZE: '8', JOB_BATCH_SIZE: process.env.JOB_BATCH_SIZE ?? '500' };
  if (consumers) env.CONSUMERS = consumers;
  const config = loadConfig({ ...process.env, ...env, LOG_LEVEL: 'error' });
  const c = await createContainer(config, createLogger((process.env.BENCH_LOG_LEVEL as 'error') ?? 'error'));
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
    // Steady 1,000 events/s for 10 s (50 events every 50 ms); lag from the append transaction to the
    // handler transaction that processed the event (both on the database clock).
    const startedAt = new Date().toISOString();
    const tick = performance.now();
    for (let k = 0; k < 200; k++) {
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
  await stopWorkers(ws);
  for (const q of [...Object.values(c.queues), ...c.routes.map((r) => c.consumerQueues.own(r.name))]) await q.obliterate({ force: true }).catch(() => {});
  await c.close();
  await db.drop();
  return { rate, p50, p99 };
}

export async function runE2eBench(): Promise<Row[]> {
  const prefix = `{bench-raw-${randomBytes(3).toString('hex')}}`;
  const raw = await rawBullmq(prefix);
  const naiveDb = await freshDatabase('naive');
  const naiveRate = await naive(naiveDb.url, prefix);
  await naiveDb.drop();
  const one = await ours(1);
  const two = await ours(2);
  const oneModel = await ours(1, 'TicketReadModelProjection');
  return [
    { benchmark: 'raw BullMQ no-op jobs (concurrency 50)', value: raw, unit: 'jobs/s' },
    { benchmark: 'naive: job per event, txn per job, 1 read model (concurrency 8)', value: naiveRate, unit: 'events/s' },
    { benchmark: `end to end, all 3 projections + 5 handlers, 1 worker process`, value: one.rate, unit: 'events/s', baseline: 'naive design', baselineValue: naiveRate },
    { benchmark: `end to end, all 3 projections + 5 handlers, 2 worker processes`, value: two.rate, unit: 'events/s', baseline: 'naive design', baselineValue: naiveRate },
    { benchmark: 'end to end, ticket read model only, 1 worker process', value: oneModel.rate, unit: 'events/s', baseline: 'naive design', baselineValue: naiveRate },
    { benchmark: 'lag p50 at 1,000 events/s, 1 worker process', value: one.p50 ?? NaN, unit: 'ms' },
    { benchmark: 'lag p99 at 1,000 events/s, 1 worker process', value: one.p99 ?? NaN, unit: 'ms' },
    { benchmark: 'lag p50 at 1,000 events/s, 2 worker processes', value: two.p50 ?? NaN, unit: 'ms' },
    { benchmark: 'lag p99 at 1,000 events/s, 2 worker processes', value: two.p99 ?? NaN, unit: 'ms' },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await runE2eBench();
  printTable(`End to end (${N.toLocaleString('en-US')} events, dispatched in batches of 500)`, rows);
  process.exit(0);
}
void median;
