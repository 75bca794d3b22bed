import type { Queue } from 'bullmq';
import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { listConsumers } from '../../consumers/registry.js';
import { migrationNames, MIGRATIONS_TABLE } from '../../db/migrate.js';

export const ReadinessSchema = z.object({
  ready: z.boolean(),
  checks: z.object({
    postgres: z.object({ ok: z.boolean(), error: z.string().optional() }),
    redis: z.object({ ok: z.boolean(), error: z.string().optional() }),
    migrations: z.object({ ok: z.boolean(), pending: z.array(z.string()), error: z.string().optional() }),
    /**
     * Registered consumers without a live worker (no heartbeat for 30 s): their owed work grows. It
     * does not make this process unready (it still serves and ingests); it tells the operator which
     * consumer needs a worker, or `npm run events:consumers -- --remove NAME` if it was retired.
     */
    consumers: z.object({ ok: z.boolean(), withoutLiveWorker: z.array(z.string()), error: z.string().optional() }),
  }),
});
export type Readiness = z.infer<typeof ReadinessSchema>;

const within = <T>(ms: number, p: Promise<T>): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())]);

// Messages only (no stack, no connection string): this answer may be public.
const reason = (e: unknown) => String((e as Error)?.message ?? e).slice(0, 200);

/** Postgres and Redis answer, and every migration file in migrations/ is recorded in pgmigrations. */
export async function readiness(pool: DatabasePool, redisQueue: Queue, timeoutMs = 2000): Promise<Readiness> {
  const [pg, redis, migrations, consumers] = await Promise.all([
    within(timeoutMs, pool.query(sql.unsafe`SELECT 1`)).then(() => ({ ok: true }), (e) => ({ ok: false, error: reason(e) })),
    within(timeoutMs, redisQueue.getJobCounts('waiting')).then(() => ({ ok: true }), (e) => ({ ok: false, error: reason(e) })),
    within(timeoutMs, pendingMigrations(pool)).then((pending) => ({ ok: pending.length === 0, pending }), (e) => ({ ok: false, pending: [], error: reason(e) })),
    within(timeoutMs, listConsumers(pool)).then(
      (list) => {
        const missing = list.filter((c) => !c.live).map((c) => c.name);
        return { ok: missing.length === 0, withoutLiveWorker: missing };
      },
      (e) => ({ ok: false, withoutLiveWorker: [], error: reason(e) }),
    ),
  ]);
  return { ready: pg.ok && redis.ok && migrations.ok, checks: { postgres: pg, redis, migrations, consumers } };
}

export async function pendingMigrations(pool: DatabasePool): Promise<string[]> {
  const files = migrationNames();
  const exists = await pool.oneFirst(sql.type(z.object({ t: z.boolean() }))`SELECT to_regclass(${MIGRATIONS_TABLE}) IS NOT NULL AS t`);
  if (!exists) return files;
  const applied = new Set(await pool.anyFirst(sql.type(z.object({ name: z.string() }))`SELECT name FROM ${sql.identifier([MIGRATIONS_TABLE])}`));
  return files.filter((f) => !applied.has(f));
}
