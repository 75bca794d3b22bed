import pg from 'pg';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { isInfrastructureError } from '../src/faults.js';
import { createDbPool, type DatabasePool } from '../src/db/pool.js';
import { createTestDb, type TestDb } from './support/db.js';
import { freePort } from './support/redisServer.js';

// The trap: an outage classified as poison uses up attempts and parks streams; poison classified as
// an outage is retried for ever. Real errors from real drivers, both ways.
let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('faults', { migrate: false });
  await db.pool.query(sql.unsafe`CREATE TABLE t (id int PRIMARY KEY)`);
  await db.pool.query(sql.unsafe`INSERT INTO t VALUES (1)`);
});
afterAll(async () => {
  await db?.drop();
});

const caught = async (fn: () => Promise<unknown>): Promise<unknown> => {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
};

describe('isInfrastructureError', () => {
  it('infrastructure-vs-poison: unreachable, terminated, read-only and conflicts wait; constraint, syntax and handler errors fail', async () => {
    const closed = await freePort();
    let pool: DatabasePool | null = null;
    const refused = await caught(async () => {
      pool = await createDbPool(`postgres://postgres@127.0.0.1:${closed}/x`);
      await pool.query(sql.unsafe`SELECT 1`);
    });
    await (pool as DatabasePool | null)?.end();
    expect(isInfrastructureError(refused)).toBe(true);

    const raw = new pg.Client({ connectionString: db.url });
    raw.on('error', () => {});
    await raw.connect();
    const terminated = await caught(() => raw.query('SELECT pg_terminate_backend(pg_backend_pid())'));
    await raw.end().catch(() => {});
    expect(isInfrastructureError(terminated)).toBe(true);

    const readOnly = await caught(() => db.pool.transaction(async (tx) => {
      await tx.query(sql.unsafe`SET TRANSACTION READ ONLY`);
      await tx.query(sql.unsafe`INSERT INTO t VALUES (2)`);
    }));
    expect(isInfrastructureError(readOnly)).toBe(true);
    expect(isInfrastructureError(Object.assign(new Error('deadlock detected'), { code: '40P01' }))).toBe(true);
    expect(isInfrastructureError(Object.assign(new Error('the database system is starting up'), { code: '57P03' }))).toBe(true);

    const redis = new Redis({ port: closed, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
    redis.on('error', () => {});
    const redisDown = await caught(async () => {
      await redis.connect();
    });
    redis.disconnect();
    expect(isInfrastructureError(redisDown)).toBe(true);

    const unique = await caught(() => db.pool.query(sql.unsafe`INSERT INTO t VALUES (1)`));
    expect(isInfrastructureError(unique)).toBe(false);
    const syntax = await caught(() => db.pool.query(sql.unsafe`SELEC 1`));
    expect(isInfrastructureError(syntax)).toBe(false);
    const badInput = await caught(() => db.pool.query(sql.unsafe`SELECT '\ud800'::jsonb`));
    expect(isInfrastructureError(badInput)).toBe(false);
    // A handler's own failure naming a remote it could not reach is the handler's: retried, then recorded.
    expect(isInfrastructureError(new Error('alert webhook https://hooks.example/x unreachable: fetch failed'))).toBe(false);
    expect(isInfrastructureError(new TypeError("Cannot read properties of undefined (reading 'price')"))).toBe(false);
  });
});
