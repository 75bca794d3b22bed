import { Redis } from 'ioredis';
import pg from 'pg';
import { redactUrl, scrubSecrets } from '../config.js';
import { redisOptionsFromUrl } from './redis.js';

export class PreflightError extends Error {
  override readonly name = 'PreflightError';
}

/** Answers "is Postgres there?" in plain words, not a stack trace. */
export async function checkPostgres(url: string, timeoutMs = 4000): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  // A connection lost mid-check is reported by the rejected promise; unheard, the event would crash the process.
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
  } catch (error) {
    // The driver's message may quote the URL or its user and password.
    const reason = scrubSecrets((error as Error).message || String(error), url);
    throw new PreflightError(
      [
        `Cannot reach PostgreSQL at ${redactUrl(url)} (${reason}).`,
        'Start it with `docker compose up -d postgres`, or on Debian/Ubuntu `sudo apt install postgresql && sudo pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`,',
        'create the database if needed (`createdb -h 127.0.0.1 -U postgres hdtickets`), or point DATABASE_URL at a running server.',
      ].join('\n'),
    );
  } finally {
    await client.end().catch(() => {});
  }
}

export async function checkRedis(url: string, timeoutMs = 4000): Promise<void> {
  const redis = new Redis({ ...redisOptionsFromUrl(url), lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  // The first socket error (e.g. ECONNREFUSED) says more than the "Connection is closed" that follows it.
  let first: Error | null = null;
  redis.on('error', (e: Error) => {
    first ??= e;
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (error) {
    const reason = scrubSecrets((first as Error | null)?.message || (error as Error).message || String(error), url);
    throw new PreflightError(
      [
        `Cannot reach Redis at ${redactUrl(url)} (${reason}).`,
        'Start it with `docker compose up -d redis`, or on Debian/Ubuntu `sudo apt install redis-server && redis-server --daemonize yes --port 6379`,',
        'or point REDIS_URL at a running server.',
      ].join('\n'),
    );
  } finally {
    redis.disconnect();
  }
}
