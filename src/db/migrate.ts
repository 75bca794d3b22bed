import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations', import.meta.url));
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
