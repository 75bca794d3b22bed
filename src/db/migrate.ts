import { existsSync } from 'node:fs';
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
