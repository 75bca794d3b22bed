import type { Queue } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { sessionUrl } from '../db/sessionUrl.js';
import { createDbPool, type DatabasePool } from '../db/pool.js';
import { eventRegistry } from '../domain/index.js';
import { FailureStore } from '../consumers/failures.js';
import { policyOf, type ConsumerRoute, type RetryPolicy } from '../consumers/jobs.js';
import { JobPublisher } from '../consumers/JobPublisher.js';
import { ConsumerQueues } from '../consumers/queues.js';
import { registerConsumers } from '../consumers/registry.js';
import { EventBus } from '../eventBus/EventBus.js';
import { createQueue, QUEUE_NAMES } from '../eventBus/queues.js';
import { PostgresEventStore } from '../eventStore/PostgresEventStore.js';
import type { Upcaster } from '../eventStore/types.js';
import { defaultHandlers, type EventHandler } from '../handlers/index.js';
import { defaultProjections, type Projection } from '../projections/index.js';
import { FaultMonitor } from '../faultMonitor.js';
import { infrastructureFaults, infrastructureUp } from '../metrics/metrics.js';
import { sql } from 'slonik';
import { redisTopology, type RedisTopology } from './redisTopology.js';
import { queueStore, type QueueStore } from './queueStore.js';
import type { VersionedCache } from '../handlers/cache.js';
import { redisCache } from '../handlers/redisCache.js';
import { postgresCache } from '../handlers/postgresCache.js';

export interface Container {
  config: Config;
  logger: Logger;
  pool: DatabasePool;
  appendPool: pg.Pool;
  store: PostgresEventStore;
  queues: { handlers: Queue; projections: Queue; replay: Queue };
  /** The shared consumer queues and each consumer's own queue (opened on first use). */
  consumerQueues: ConsumerQueues;
  publisher: JobPublisher;
  bus: EventBus;
  failures: FailureStore;
  handlers: readonly EventHandler[];
  projections: readonly Projection<any>[];
  routes: readonly ConsumerRoute[];
  /** A consumer's retry policy: its own attempts/backoff if this process knows it, else the defaults. */
  policyOf(consumer: string): RetryPolicy;
  upcast: Upcaster;
  /** Infrastructure faults seen by this process: outages are waited out, not failed (bounded-rate warnings). */
  faults: FaultMonitor;
  /** Standalone Redis or Redis Cluster: connections and key prefixes for queues, workers and caches. */
  redis: RedisTopology;
  /** Where the queues live (QUEUE_BACKEND): every Queue and Worker is built from it. */
  queueStore: QueueStore;
  /**
   * A plain Redis connection for caches (created on first use; a Cluster client with
   * REDIS_CLUSTER_NODES). Throws on the postgres queue backend, which has no Redis: use `cache()`.
   */
  cacheRedis(): Redis | Cluster;
  /** The handlers' versioned cache: Redis, or the UNLOGGED handler_cache table on the postgres backend. */
  cache(): VersionedCache;
  close(): Promise<void>;
}

export interface ContainerOptions {
  handlers?: readonly EventHandler[];
  projections?: readonly Projection<any>[];
  /**
   * Register this process's consumers in Postgres (default true): producers and workers do, so the
   * events they publish are owed to every consumer they know. Operator CLIs do not: a shell without
   * the deployment's CONSUMERS must not make the fleet owe work to a consumer nobody runs.
   */
  register?: boolean;
}

export function routesOf(handlers: readonly EventHandler[], projections: readonly Projection<any>[]): ConsumerRoute[] {
  return [
    ...handlers.map((h): ConsumerRoute => {
      const types = new Set<string>(h.handledTypes);
      return { name: h.name, kind: 'handler', version: 1, handledTypes: h.handledTypes, handles: (t) => types.has(t), attempts: h.attempts, backoffMs: h.backoffMs };
    }),
    ...projections.map((p): ConsumerRoute => ({ name: p.name, kind: 'projection', version: p.version, handledTypes: p.handledTypes, handles: (t) => p.handles(t) })),
  ];
}

/** The composition root: every process builds its services here, and closes them here. */
export async function createContainer(config: Config, logger: Logger, options: ContainerOptions = {}): Promise<Container> {
  const pool = await createDbPool(config.DATABASE_URL, { maximumPoolSize: config.DATABASE_POOL_SIZE });
  const appendPool = new pg.Pool({ connectionString: sessionUrl(config.DATABASE_URL), max: Math.max(2, Math.ceil(config.DATABASE_POOL_SIZE / 2)), connectionTimeoutMillis: 5000 });
  const queuesRef: { handlers?: Queue } = {};
  const onPostgres = config.QUEUE_BACKEND === 'postgres';
  const faults = new FaultMonitor(logger, {
    queuesOn: onPostgres ? 'postgres' : 'redis',
    probes: {
      // Back means writable: a server in recovery or read-only (a failover half done) is still down.
      postgres: async () => {
        const writable = await pool.oneFirst(sql.unsafe`SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off' AS writable`);
        if (writable !== true) throw new Error('PostgreSQL answers but is read-only (in recovery or failing over)');
      },
      // The queue store: Redis, or the bullmq schema in PostgreSQL (faults are then PostgreSQL's; see queuesOn).
      redis: async () => void (await queuesRef.handlers!.getJobCounts('waiting')),
    },
    onFault: (service) => infrastructureFaults.inc({ service }),
  });
  faults.subscribe((service, up) => infrastructureUp.set({ service }, up ? 1 : 0));
  // A connection lost while idle in the pool (Postgres restarted): the pool drops it; a warning at a bounded rate.
  appendPool.on('error', (err) => faults.warn('postgres:idle', { err: err.message }, 'idle Postgres connection lost'));
  const upcast: Upcaster = (type, v, payload) => (eventRegistry.has(type) ? eventRegistry.upcast(type, v, payload) : { schemaVersion: v, payload });
  const store = new PostgresEventStore(pool, { upcaster: upcast, appendPool });
  const redis = redisTopology(config);
  const qstore = queueStore(config, redis, (err) => faults.warn('postgres:queues', { err: err.message }, 'queue connection error'));
  const connection = qstore.producerConnection();
  const prefix = (q: string) => qstore.queuePrefix(q);
  const queues = {
    handlers: createQueue(QUEUE_NAMES.handlers, connection, prefix, qstore.factory),
    projections: createQueue(QUEUE_NAMES.projections, connection, prefix, qstore.factory),
    replay: createQueue(QUEUE_NAMES.replay, connection, prefix, qstore.factory),
  };
  queuesRef.handlers = queues.handlers;
  const only = config.CONSUMERS;
  if (only) {
    const known = [...defaultHandlers.map((h) => h.name), ...defaultProjections.map((p) => p.name)];
    const unknown = only.filter((n) => !known.includes(n) && !(options.handlers ?? []).some((h) => h.name === n) && !(options.projections ?? []).some((p) => p.name === n));
    if (unknown.length) throw new Error(`CONSUMERS names unknown consumers: ${unknown.join(', ')}; known: ${known.join(', ')}`);
  }
  const handlers = (options.handlers ?? defaultHandlers).filter((h) => !only || only.includes(h.name));
  const projections = (options.projections ?? defaultProjections).filter((p) => !only || only.includes(p.name));
  const routes = routesOf(handlers, projections);
  const defaults = { attempts: config.JOB_ATTEMPTS, backoffMs: config.JOB_BACKOFF_MS };
  const byName = new Map(routes.map((r) => [r.name, r]));
  const policy = (consumer: string) => policyOf(byName.get(consumer), defaults);
  const consumerQueues = new ConsumerQueues(queues.handlers, queues.projections, connection, prefix, qstore.factory);
  const publisher = new JobPublisher(pool, consumerQueues, defaults, { batchSize: config.JOB_BATCH_SIZE, redeliverAfterMs: config.OWED_REDELIVER_AFTER_MS });
  const bus = new EventBus(store, publisher, logger);
  const failures = new FailureStore(pool, consumerQueues, policy);
  // Every consumer this process knows is owed the events published from now on, whichever process
  // runs it; one that no live worker runs shows as growing owed work.
  if (options.register !== false) await registerConsumers(pool, routes).catch(async (error: unknown) => {
    // A database without migrations is reported by /ready and the migrate step, not by a crash here.
    if (pgErrorCode(error) === '42P01') return logger.warn('consumer registry table missing: run `npm run migrate`');
    await Promise.allSettled([appendPool.end(), pool.end(), ...Object.values(queues).map((q) => q.close())]);
    await qstore.close();
    throw error;
  });
  let cache: Redis | Cluster | null = null;
  let versioned: VersionedCache | null = null;
  const cacheRedis = () => {
    if (onPostgres) throw new Error('QUEUE_BACKEND=postgres has no Redis: the handlers cache in PostgreSQL (handler_cache)');
    return (cache ??= redis.createCache({ maxRetriesPerRequest: 3 }));
  };
  return {
    config, logger, pool, appendPool, store, queues, consumerQueues, publisher, bus, failures, handlers, projections, routes, policyOf: policy, upcast, faults, redis, queueStore: qstore,
    cacheRedis,
    cache: () => (versioned ??= onPostgres ? postgresCache(pool) : redisCache(cacheRedis())),
    async close() {
      faults.stop();
      await Promise.allSettled(Object.values(queues).map((q) => q.close()));
      await consumerQueues.closeOwn();
      if (cache) await cache.quit().catch(() => cache?.disconnect());
      await qstore.close();
      await appendPool.end().catch(() => {});
      await pool.end().catch(() => {});
    },
  };
}

function pgErrorCode(error: unknown): string | undefined {
  let e: unknown = error;
  for (let i = 0; i < 5 && e && typeof e === 'object'; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
