import type { ConnectionOptions } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';

/** ioredis options from a redis:// or rediss:// URL (BullMQ wants options it can duplicate). */
export function redisOptionsFromUrl(url: string): RedisOptions {
  const u = new URL(url);
  return {
    host: u.hostname || '127.0.0.1',
    port: u.port ? Number(u.port) : 6379,
    username: u.username ? decodeURIComponent(u.username) : undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: u.pathname && u.pathname !== '/' ? Number(u.pathname.slice(1)) : undefined,
    tls: u.protocol === 'rediss:' ? {} : undefined,
  };
}

/** Connection for the workers' BullMQ Workers: blocking commands must wait for Redis, never give up. */
export function workerConnectionOptions(url: string): ConnectionOptions {
  return { ...redisOptionsFromUrl(url), maxRetriesPerRequest: null } as ConnectionOptions;
}

/**
 * Connection for producers: when Redis is down, a command fails at once instead of queueing in memory,
 * so `dispatch` returns (the event is in Postgres and the outbox) instead of hanging.
 */
export function producerConnectionOptions(url: string): ConnectionOptions {
  return { ...redisOptionsFromUrl(url), enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2000, retryStrategy: (n: number) => Math.min(n * 200, 2000) } as ConnectionOptions;
}

export function createRedis(url: string, options: RedisOptions = {}): Redis {
  const r = new Redis({ ...redisOptionsFromUrl(url), lazyConnect: false, ...options });
  r.on('error', () => {});
  return r;
}
