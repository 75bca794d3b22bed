import { withApplicationName } from './horizon.js';

/**
 * The URL every pool of ours connects with: named in pg_stat_activity (the stall alarm says who holds
 * the horizon back), and with JIT compilation off unless the URL sets its own `options`. Our
 * statements are short and many; their estimated cost can still pass jit_above_cost (a catch-up over
 * a few hundred streams does), and then compiling took 10 to 100 ms of a statement that runs in a few.
 */
export function sessionUrl(url: string): string {
  const u = new URL(withApplicationName(url));
  if (!u.searchParams.has('options')) u.searchParams.set('options', '-c jit=off');
  return u.toString();
}

/**
 * For clients that add startup options of their own (BullMQ's PostgreSQL backend appends its
 * `-c search_path=…`): `options` as a separate setting, since one in the connection string would
 * replace theirs (node-postgres lets the string win).
 */
export function sessionConfig(url: string): { connectionString: string; options: string } {
  const u = new URL(sessionUrl(url));
  const options = u.searchParams.get('options') ?? '';
  u.searchParams.delete('options');
  return { connectionString: u.toString(), options };
}
