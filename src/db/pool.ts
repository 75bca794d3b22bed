import { createPool, SchemaValidationError, type DatabasePool, type Interceptor, type QueryResultRow } from 'slonik';
import { createPgDriverFactory } from '@slonik/pg-driver';
import { sessionUrl } from './sessionUrl.js';

/**
 * slonik's `sql.type(schema)` attaches a zod schema but validates nothing by itself;
 * this interceptor is what makes typed queries actually checked.
 */
const resultParser: Interceptor = {
  name: 'result-parser',
  transformRow: (ctx, query, row, fields) => {
    const parser = ctx.resultParser;
    if (!parser) return row;
    const parsed = parser.safeParse(row);
    if (!parsed.success) throw new SchemaValidationError(query, row, parsed.error.issues);
    return parsed.data as QueryResultRow;
  },
};

// Positions and counts fit comfortably in a double; bigint would leak into JSON and every caller.
const typeParsers = [
  { name: 'int8', parse: (v: string) => Number.parseInt(v, 10) },
  { name: 'numeric', parse: (v: string) => Number.parseFloat(v) },
  { name: 'timestamptz', parse: parseTimestamptz },
  { name: 'timestamp', parse: (v: string) => v },
  { name: 'date', parse: (v: string) => v },
  { name: 'interval', parse: (v: string) => v },
];

/**
 * Postgres text timestamps to ISO 8601. Every event row carries two, so the common case (a session in
 * UTC: "2026-11-30 20:45:35.123456+00") is rewritten without building a Date; others go through Date.
 */
export function parseTimestamptz(v: string): string {
  // Same output as Date#toISOString (milliseconds, "Z"), so strings compare in time order everywhere.
  if (v.length >= 22 && v.endsWith('+00') && v[10] === ' ' && v[4] === '-') {
    const frac = v.length > 22 ? v.slice(20, -3) : '';
    return `${v.slice(0, 10)}T${v.slice(11, 19)}.${(frac + '000').slice(0, 3)}Z`;
  }
  return new Date(v.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00')).toISOString();
}

export type { DatabasePool };

export async function createDbPool(connectionUri: string, options: { maximumPoolSize?: number; statementTimeoutMs?: number } = {}): Promise<DatabasePool> {
  // Named in pg_stat_activity (hdt:web, hdt:worker…): the stall alarm says who holds the horizon back.
  return createPool(sessionUrl(connectionUri), {
    driverFactory: createPgDriverFactory(),
    interceptors: [resultParser],
    typeParsers,
    maximumPoolSize: options.maximumPoolSize ?? 10,
    // Fail fast when Postgres is unreachable instead of hanging a request or a start-up.
    connectionTimeout: 5000,
    statementTimeout: options.statementTimeoutMs ?? 60_000,
    idleInTransactionSessionTimeout: 60_000,
    captureStackTrace: false,
    // slonik's default sends DISCARD ALL on every release: one extra round trip per transaction (700
    // of 4,000 statements of a worker in the e2e bench). Nothing here leaves session state behind (no
    // session SET, temp table or session advisory lock through this pool), so there is nothing to reset.
    resetConnection: async () => {},
  });
}
