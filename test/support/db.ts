import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createDbPool, type DatabasePool } from '../../src/db/pool.js';
import { runMigrations } from '../../src/db/migrate.js';

export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export function dbUrl(name: string): string {
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

export interface TestDb {
  name: string;
  url: string;
  pool: DatabasePool;
  drop(): Promise<void>;
}

/** A fresh, migrated database owned by one test file; dropped again by `drop()`. */
export async function createTestDb(label: string, options: { migrate?: boolean; poolSize?: number } = {}): Promise<TestDb> {
  const name = `hdt_t_${label.replace(/[^a-z0-9_]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = dbUrl(name);
  if (options.migrate !== false) await runMigrations(url);
  const pool = await createDbPool(url, { maximumPoolSize: options.poolSize ?? 12 });
  return {
    name,
    url,
    pool,
    async drop() {
      await pool.end();
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/** Polls until `fn` returns a truthy value, or fails with the last value after the deadline. */
export async function waitFor<T>(fn: () => Promise<T> | T, { timeoutMs = 30_000, intervalMs = 50, what = 'condition' } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  for (;;) {
    last = await fn();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** A BullMQ prefix of this test run (HDT_TEST_RUN, set by the global setup), deleted from Redis when the run ends. */
export function testPrefix(label: string): string {
  return `{hdt-test-${process.env.HDT_TEST_RUN ?? 'adhoc'}-${label}-${randomBytes(3).toString('hex')}}`;
}
