import { sql } from 'slonik';

export type SqlFragment = ReturnType<typeof sql.fragment>;

/**
 * Statements that must commit with a transaction's own writes (the consumer pipeline's bookkeeping,
 * e.g. settling owed work), given the consumers that took effect. They are folded into a statement the
 * transaction runs anyway, so they cost no round trip and hold no lock longer.
 */
export type SettleSql = (consumers: readonly string[]) => readonly SqlFragment[];

/**
 * Several data-modifying statements as one: each becomes a CTE (`name0 AS (...)`), ahead of `main`
 * (default `SELECT 1`). PostgreSQL runs every data-modifying CTE whether or not `main` reads it.
 */
export function asOneStatement(parts: readonly SqlFragment[], main: SqlFragment = sql.fragment`SELECT 1`, name = 's'): SqlFragment {
  if (parts.length === 0) return main;
  return sql.fragment`WITH ${sql.join(parts.map((p, i) => sql.fragment`${sql.identifier([`${name}${i}`])} AS (${p})`), sql.fragment`, `)} ${main}`;
}
