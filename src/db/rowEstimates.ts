import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';

/** Up to this many rows a table is counted exactly; beyond it, the planner's estimate is reported. */
export const EXACT_ROWS_UP_TO = 1_000;

export interface RowCount {
  rows: number;
  /** true: the planner's estimate (pg_class.reltuples scaled to the table's current pages), not a count. */
  estimated: boolean;
}

const Row = z.object({ t: z.string(), counted: z.number(), estimate: z.number() });

/**
 * Row counts of tables whose size grows with the store (read models), at a cost that does not: a
 * count stopped at EXACT_ROWS_UP_TO + 1 rows, and above that the estimate the planner itself uses
 * (reltuples / relpages × current pages; VACUUM and ANALYZE refresh it), flagged as an estimate.
 */
export async function tableRowCounts(db: CommonQueryMethods, tables: readonly string[]): Promise<Map<string, RowCount>> {
  if (tables.length === 0) return new Map();
  const rows = await db.any(sql.type(Row)`
    ${sql.join(
      tables.map(
        (t) => sql.fragment`
          SELECT ${t}::text AS t,
                 (SELECT count(*) FROM (SELECT 1 FROM ${sql.identifier([t])} LIMIT ${EXACT_ROWS_UP_TO + 1}) capped)::int8 AS counted,
                 (SELECT CASE WHEN c.relpages > 0 AND c.reltuples >= 0
                              THEN c.reltuples / c.relpages * (pg_relation_size(c.oid) / current_setting('block_size')::int8)
                              ELSE 0 END
                  FROM pg_class c WHERE c.oid = ${t}::regclass)::float8 AS estimate`,
      ),
      sql.fragment` UNION ALL `,
    )}`);
  return new Map(
    rows.map((r) => [
      r.t,
      r.counted <= EXACT_ROWS_UP_TO ? { rows: r.counted, estimated: false } : { rows: Math.max(EXACT_ROWS_UP_TO + 1, Math.round(r.estimate)), estimated: true },
    ]),
  );
}
