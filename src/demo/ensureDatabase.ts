import pg from 'pg';

export type EnsureDatabaseResult = 'exists' | 'created' | 'unreachable';

/**
 * Creates the database named in `url` when the server answers but the database is missing, so a
 * newcomer's first `npm start` needs no `createdb`. Any other trouble is reported as 'unreachable' and
 * left to the preflight check, which explains it in plain words.
 */
export async function ensureDatabase(url: string, timeoutMs = 3000): Promise<EnsureDatabaseResult> {
  const target = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  target.on('error', () => {});
  try {
    await target.connect();
    return 'exists';
  } catch (error) {
    if ((error as { code?: string }).code !== '3D000') return 'unreachable';
  } finally {
    await target.end().catch(() => {});
  }

  const name = decodeURIComponent(new URL(url).pathname.slice(1));
  const maintenance = new URL(url);
  maintenance.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: maintenance.toString(), connectionTimeoutMillis: timeoutMs });
  admin.on('error', () => {});
  try {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(name)}`);
    return 'created';
  } catch (error) {
    // Another process created it first: fine. Lacking the privilege is left to preflight to report.
    return (error as { code?: string }).code === '42P04' ? 'exists' : 'unreachable';
  } finally {
    await admin.end().catch(() => {});
  }
}
