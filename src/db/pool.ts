import { createPool, SchemaValidationError, type DatabasePool, type Interceptor, type QueryResultRow } from 'slonik';
import { createPgDriverFactory } from '@slonik/pg-driver';

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
  { name: 'timestamptz', parse: (v: string) => new Date(v.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00')).toISOString() },
  { name: 'timestamp', parse: (v: string) => v },
  { name: 'date', parse: (v: string) => v },
  { name: 'interval', parse: (v: string) => v },
];

export type { DatabasePool };

export async function createDbPool(connectionUri: string, options: { maximumPoolSize?: number; statementTimeoutMs?: number } = {}): Promise<DatabasePool> {
  return createPool(connectionUri, {
    driverFactory: createPgDriverFactory(),
    interceptors: [resultParser],
    typeParsers,
    maximumPoolSize: options.maximumPoolSize ?? 10,
    // Fail fast when Postgres is unreachable instead of hanging a request or a start-up.
    connectionTimeout: 5000,
    statementTimeout: options.statementTimeoutMs ?? 60_000,
    idleInTransactionSessionTimeout: 60_000,
    captureStackTrace: false,
  });
}
