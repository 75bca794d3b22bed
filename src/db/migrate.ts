import { existsSync, readdirSync } from 'node:fs';
import pg from 'pg';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';

// From src/db (tsx) the folder is two levels up; from dist/src/db (compiled) it is three.
export const MIGRATIONS_DIR = ['../../migrations', '../../../migrations']
  .map((rel) => fileURLToPath(new URL(rel, import.meta.url)))
  .find((dir) => existsSync(dir))!;
export const MIGRATIONS_TABLE = 'pgmigrations';

/**
 * Applies the SQL migrations. node-pg-migrate takes an advisory lock, so two processes
 * (e.g. two release steps) running this at once serialise instead of racing.
 */
export async function runMigrations(databaseUrl: string, direction: 'up' | 'down' = 'up', count?: number): Promise<string[]> {
  const applied = await runner({
    databaseUrl,
    dir: MIGRATIONS_DIR,
    migrationsTable: MIGRATIONS_TABLE,
    direction,
    count: count ?? (direction === 'down' ? 1 : Infinity),
    singleTransaction: true,
    checkOrder: true,
    advisoryLockMode: 'wait',
    log: () => {},
  });
  return applied.map((m) => m.name);
}

/** Names of the migration files in MIGRATIONS_DIR, sorted. */
export function migrationNames(): string[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((f) => /\.(sql|js|ts|cjs|mjs)$/.test(f))
    .map((f) => f.replace(/\.[^.]+$/, ''))
    .sort();
}

/** Migrations not yet applied to the database at `url` (all of them on an empty database). */
export async function pendingMigrationsAt(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => {});
  await client.connect();
  try {
    const exists = (await client.query<{ t: boolean }>('SELECT to_regclass($1) IS NOT NULL AS t', [MIGRATIONS_TABLE])).rows[0]?.t;
    const applied = new Set(exists ? (await client.query<{ name: string }>(`SELECT name FROM ${client.escapeIdentifier(MIGRATIONS_TABLE)}`)).rows.map((r) => r.name) : []);
    return migrationNames().filter((m) => !applied.has(m));
  } finally {
    await client.end().catch(() => {});
  }
}

/** The one-line message every entry point prints for an unmigrated database (exit code 3). */
export function pendingMessage(pending: readonly string[]): string {
  return `${pending.length} migration${pending.length === 1 ? '' : 's'} pending: run \`npm run migrate\` (first pending: ${pending[0]}).`;
}
