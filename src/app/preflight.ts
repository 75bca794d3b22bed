import { Cluster, Redis } from 'ioredis';
import pg from 'pg';
import { redactUrl, scrubSecrets, type Config } from '../config.js';
import { redisOptionsFromUrl } from './redis.js';
import { clusterOptions } from './redisTopology.js';

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
    const code = (error as { code?: string }).code;
    const user = decodeURIComponent(new URL(url).username || 'postgres');
    if (code === '28P01' || code === '28000') {
      // The server answered: starting or creating anything would not help.
      throw new PreflightError(
        [
          `PostgreSQL at ${redactUrl(url)} refused the login of role "${user}" (${reason}).`,
          'Check the user and password in DATABASE_URL, or create the role (`createuser -h HOST -U postgres --pwprompt ' + user + '`) and allow it in pg_hba.conf.',
        ].join('\n'),
      );
    }
    if (code === '3D000') {
      const db = decodeURIComponent(new URL(url).pathname.slice(1));
      throw new PreflightError(
        [`PostgreSQL at ${redactUrl(url)} has no database "${db}" (${reason}).`, `Create it (\`createdb -h HOST -U ${user} ${db}\`), or point DATABASE_URL at an existing one; \`npm start\` creates it for you.`].join('\n'),
      );
    }
    throw new PreflightError(
      [
        `Cannot reach PostgreSQL at ${redactUrl(url)} (${reason}).`,
        'Start it with `docker compose up -d postgres`, or on Debian/Ubuntu `sudo apt install postgresql && sudo pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`,',
        'or point DATABASE_URL at a running server.',
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

/**
 * checkRedis for the configured topology: REDIS_CLUSTER_NODES set, the cluster must answer and say
 * `cluster_state:ok`; unset, REDIS_URL must answer and must not be a cluster node (a plain client
 * pointed at one follows no MOVED and spins on them).
 */
export async function checkRedisOf(config: Pick<Config, 'REDIS_URL' | 'REDIS_CLUSTER_NODES'>, timeoutMs = 4000): Promise<void> {
  const url = config.REDIS_URL;
  const nodes = config.REDIS_CLUSTER_NODES;
  if (!nodes?.length) {
    await checkRedis(url, timeoutMs);
    if (await isClusterNode(url, timeoutMs)) {
      throw new PreflightError(
        [
          `Redis at ${redactUrl(url)} is a Redis Cluster node (cluster_enabled:1).`,
          'Set REDIS_CLUSTER_NODES=host:port,host:port,… to the cluster\'s nodes (REDIS_URL then gives only the scheme and credentials).',
        ].join('\n'),
      );
    }
    return;
  }
  const where = nodes.map((n) => `${n.host}:${n.port}`).join(',');
  const cluster = new Cluster(
    nodes,
    clusterOptions(url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      clusterRetryStrategy: () => null,
      slotsRefreshTimeout: timeoutMs,
      redisOptions: { connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null },
    }),
  );
  let first: Error | null = null;
  cluster.on('error', (e: Error) => {
    first ??= (e as Error & { lastNodeError?: Error }).lastNodeError ?? e;
  });
  cluster.on('node error', (e: Error) => {
    first ??= e;
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const info = await Promise.race([
      cluster.connect().then(() => cluster.cluster('INFO') as Promise<string>),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs))),
    ]);
    const state = /cluster_state:(\w+)/.exec(info)?.[1];
    if (state !== 'ok') throw new Error(`cluster_state:${state ?? 'unknown'}`);
  } catch (error) {
    const reason = scrubSecrets((first as Error | null)?.message || (error as Error).message || String(error), url);
    throw new PreflightError(
      [
        `Cannot use the Redis Cluster at ${where} (REDIS_CLUSTER_NODES; credentials from ${redactUrl(url)}): ${reason.replace(/\.$/, '')}.`,
        'Start one locally with `bash scripts/redis-cluster.sh` (see README, Redis Cluster), or fix REDIS_CLUSTER_NODES.',
      ].join('\n'),
    );
  } finally {
    clearTimeout(timer);
    cluster.disconnect();
  }
}

async function isClusterNode(url: string, timeoutMs: number): Promise<boolean> {
  const redis = new Redis({ ...redisOptionsFromUrl(url), lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return /cluster_enabled:1/.test(await redis.info('cluster'));
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

/**
 * Both services at once: when PostgreSQL and Redis are both unavailable, both are reported (one
 * message, PostgreSQL first), not only the first one found.
 */
export async function checkServices(config: Pick<Config, 'DATABASE_URL' | 'REDIS_URL' | 'REDIS_CLUSTER_NODES'> & Partial<Pick<Config, 'QUEUE_BACKEND'>>, timeoutMs = 4000): Promise<void> {
  // With the queues on PostgreSQL (QUEUE_BACKEND=postgres) no process needs Redis.
  const redisCheck = config.QUEUE_BACKEND === 'postgres' ? Promise.resolve() : checkRedisOf(config, timeoutMs);
  const [pgResult, redisResult] = await Promise.allSettled([checkPostgres(config.DATABASE_URL, timeoutMs), redisCheck]);
  const problems = [pgResult, redisResult].flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (problems.length === 0) return;
  const other = problems.find((p) => !(p instanceof PreflightError));
  if (other) throw other;
  throw new PreflightError(problems.map((p) => (p as Error).message).join('\n\n'));
}
