import { createPostgresBackend, Queue, Worker, type BackendFactory } from 'bullmq';
import { freshDatabase, printTable, type Row } from './support.js';

/**
 * The queues on BullMQ's PostgreSQL backend (QUEUE_BACKEND=postgres) beside Redis, in the same run:
 * end to end with all consumers and with one read model (1 worker process each, as `ours` runs them),
 * and raw no-op jobs on each backend. bench/e2e.ts passes its Redis all-consumers figure so the ratio
 * compares runs on the same machine at the same moment.
 *
 * RESULT keys: pg_backend_all_consumers_eps, pg_backend_ratio_redis (postgres / redis, all consumers,
 * 1 worker process), plus pg_backend_one_model_eps and pg_backend_raw_jobs_per_s.
 */
export interface PgBackendBench {
  rows: Row[];
  result: Record<string, number>;
}

const N = Number(process.env.BENCH_E2E_EVENTS ?? 20_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `ours` on the postgres backend: its container and the worker processes it spawns read QUEUE_BACKEND from the environment. */
async function onPostgres<T>(run: () => Promise<T>): Promise<T> {
  const previous = process.env.QUEUE_BACKEND;
  process.env.QUEUE_BACKEND = 'postgres';
  try {
    return await run();
  } finally {
    if (previous === undefined) delete process.env.QUEUE_BACKEND;
    else process.env.QUEUE_BACKEND = previous;
  }
}

/** N no-op jobs through BullMQ's Postgres backend (addBulk by 1,000, one worker at concurrency 50), as bench/e2e.ts's rawBullmq does on Redis. */
export async function rawBullmqPostgres(): Promise<number> {
  const db = await freshDatabase('rawpg');
  const connection = { connectionString: db.url, migrate: true, max: 10 };
  const factory = createPostgresBackend as BackendFactory<any, any>;
  const q = new Queue('noop', { connection } as never, factory) as unknown as Queue;
  const jobs = Array.from({ length: N }, (_, i) => ({ name: 'noop', data: { i }, opts: { removeOnComplete: true } }));
  let done = 0;
  const t0 = performance.now();
  const w = new Worker('noop', async () => void done++, { connection, concurrency: 50 } as never, factory) as unknown as Worker;
  for (let i = 0; i < N; i += 1000) await q.addBulk(jobs.slice(i, i + 1000));
  while (done < N) await sleep(10);
  const rate = N / ((performance.now() - t0) / 1000);
  await w.close();
  await q.close();
  await db.drop();
  return rate;
}

/** `redisAllConsumers`: bench/e2e.ts's figure for all consumers with 1 worker process on Redis (measured here when absent). */
/** bench/e2e.ts's `ours`, passed in: a static import of e2e.ts from here would deadlock when e2e.ts (a module still in its top-level await) loads this one. */
export type Ours = (workers: number, consumers?: string) => Promise<{ rate: number; p50?: number; p99?: number }>;

export async function runPgBackendBench(ours: Ours, redisAllConsumers?: number, redisOneModel?: number): Promise<PgBackendBench> {
  const redisAll = redisAllConsumers ?? (await ours(1)).rate;
  const redisOne = redisOneModel ?? (await ours(1, 'TicketReadModelProjection')).rate;
  const all = await onPostgres(() => ours(1));
  const oneModel = await onPostgres(() => ours(1, 'TicketReadModelProjection'));
  const raw = await rawBullmqPostgres();
  const rows: Row[] = [
    { benchmark: 'PostgreSQL queue backend: end to end, all consumers, 1 worker process', value: all.rate, unit: 'events/s', baseline: 'same on Redis', baselineValue: redisAll },
    { benchmark: 'PostgreSQL queue backend: end to end, ticket read model only, 1 worker process', value: oneModel.rate, unit: 'events/s', baseline: 'same on Redis', baselineValue: redisOne },
    { benchmark: 'PostgreSQL queue backend: lag p50 at 1,000 events/s, 1 worker process', value: all.p50 ?? NaN, unit: 'ms' },
    { benchmark: 'PostgreSQL queue backend: lag p99 at 1,000 events/s, 1 worker process', value: all.p99 ?? NaN, unit: 'ms' },
    { benchmark: 'PostgreSQL queue backend: raw BullMQ no-op jobs (concurrency 50)', value: raw, unit: 'jobs/s' },
  ];
  return {
    rows,
    result: {
      pg_backend_all_consumers_eps: Math.round(all.rate),
      pg_backend_ratio_redis: Number((all.rate / redisAll).toFixed(2)),
      pg_backend_one_model_eps: Math.round(oneModel.rate),
      pg_backend_raw_jobs_per_s: Math.round(raw),
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { ours } = await import('./e2e.js');
  const { rows, result } = await runPgBackendBench(ours);
  printTable(`Queue backends (${N.toLocaleString('en-US')} events, dispatched in batches of 500)`, rows);
  console.log(`RESULT ${Object.entries(result).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  process.exit(0);
}
