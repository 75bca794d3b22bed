import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { z } from 'zod';
import type { CacheBatch, VersionedCache } from './cache.js';

// Expired rows are deleted a bounded page at a time, at most this often per process.
const SWEEP_EVERY_MS = 60_000;
const SWEEP_PAGE = 1000;

interface Row {
  key: string;
  field: string;
  value: string;
  version: number;
  ttl: number;
}

/**
 * The cache on the PostgreSQL queue backend: the UNLOGGED table `handler_cache` (migration 0014), one
 * row per (key, field) with the version that wrote it. The batch is one upsert inside the handler's
 * own transaction, in (key, field) order so concurrent batches lock rows in one order.
 */
export function postgresCache(pool: DatabasePool): VersionedCache {
  let lastSweep = 0;
  return {
    kind: 'postgres',
    batch(): CacheBatch {
      // One row per (key, field), the newest version: an upsert may not touch a row twice.
      const rows = new Map<string, Row>();
      return {
        set(key, version, ttl, fields) {
          for (const [field, value] of Object.entries(fields)) {
            const id = `${key}\u0000${field}`;
            const cur = rows.get(id);
            if (!cur || cur.version < version) rows.set(id, { key, field, value: String(value), version, ttl });
          }
        },
        get length() {
          return rows.size;
        },
        async flush(tx: CommonQueryMethods) {
          if (!rows.size) return;
          const sorted = [...rows.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.field < b.field ? -1 : a.field > b.field ? 1 : 0));
          await tx.query(upsertSql(sorted));
          if (Date.now() - lastSweep > SWEEP_EVERY_MS) {
            lastSweep = Date.now();
            await tx.query(sweepSql());
          }
        },
      };
    },
    async read(key) {
      const rows = await pool.any(sql.type(z.object({ field: z.string(), value: z.string() }))`
        SELECT field, value FROM handler_cache WHERE key = ${key} AND (expires_at IS NULL OR expires_at > now())`);
      return rows.length ? Object.fromEntries(rows.map((r) => [r.field, r.value])) : null;
    },
  };
}

function upsertSql(rows: readonly Row[]) {
  return sql.unsafe`
    INSERT INTO handler_cache (key, field, value, version, expires_at)
    SELECT k, f, v, ver, CASE WHEN ttl > 0 THEN now() + make_interval(secs => ttl) END
    FROM ${sql.unnest(rows.map((r) => [r.key, r.field, r.value, r.version, r.ttl]), ['text', 'text', 'text', 'int4', 'int4'])} AS t(k, f, v, ver, ttl)
    ON CONFLICT (key, field) DO UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version, expires_at = EXCLUDED.expires_at
    WHERE handler_cache.version < EXCLUDED.version OR handler_cache.expires_at <= now()`;
}

function sweepSql() {
  return sql.unsafe`
    DELETE FROM handler_cache WHERE (key, field) IN (
      SELECT key, field FROM handler_cache WHERE expires_at < now() LIMIT ${SWEEP_PAGE} FOR UPDATE SKIP LOCKED)`;
}
