import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';

/**
 * The transactions holding back the gap-free global order: a reader (replay, catch-up, alerting)
 * only sees events below the oldest transaction id still running anywhere on the server, so one
 * forgotten `BEGIN` stalls them all. Oldest first, with who holds them (application_name).
 */
export const HorizonHolderSchema = z.object({
  pid: z.number().int(),
  applicationName: z.string(),
  database: z.string().nullable(),
  state: z.string().nullable(),
  ageSeconds: z.number(),
});
export type HorizonHolder = z.infer<typeof HorizonHolderSchema>;

export const XminHorizonSchema = z.object({
  /** Age of the oldest transaction with a transaction id (0 when none is running). */
  ageSeconds: z.number(),
  /** The oldest ones, oldest first (at most 3). */
  oldest: z.array(HorizonHolderSchema),
});
export type XminHorizon = z.infer<typeof XminHorizonSchema>;

const Row = z.object({ pid: z.number(), application_name: z.string(), datname: z.string().nullable(), state: z.string().nullable(), age: z.number() });

export async function xminHorizon(pool: DatabasePool): Promise<XminHorizon> {
  const rows = await pool.any(sql.type(Row)`
    SELECT pid, application_name, datname, state,
           extract(epoch FROM now() - coalesce(xact_start, now()))::float8 AS age
    FROM pg_stat_activity
    WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid()
    ORDER BY age(backend_xid) DESC
    LIMIT 3`);
  const oldest = rows.map((r) => ({ pid: r.pid, applicationName: r.application_name, database: r.datname, state: r.state, ageSeconds: Math.max(0, r.age) }));
  return { ageSeconds: oldest[0]?.ageSeconds ?? 0, oldest };
}

/** `hdt:<entry point>` (hdt:web, hdt:worker, hdt:start, …): what pg_stat_activity and the stall alarm show. */
export function defaultApplicationName(): string {
  const script = (process.argv[1] ?? 'node').split('/').pop()!.replace(/\.(ts|js|mjs|cjs)$/, '');
  return `hdt:${script}`.slice(0, 63);
}

/** The URL with `application_name` set, unless it names one already. */
export function withApplicationName(url: string, name = defaultApplicationName()): string {
  const u = new URL(url);
  if (!u.searchParams.has('application_name')) u.searchParams.set('application_name', name);
  return u.toString();
}
