import type { BackendFactory, ConnectionOptions } from 'bullmq';
import type { Config } from '../config.js';
import { sessionConfig } from '../db/sessionUrl.js';
import { redisTopology, type RedisTopology } from './redisTopology.js';
import { sharedPostgresBackend } from './sharedPostgresBackend.js';

/** The schema of BullMQ's own tables on the PostgreSQL backend, beside ours in the application database. */
export const BULLMQ_SCHEMA = 'bullmq';

/**
 * Where the BullMQ queues live, for every Queue and Worker of a process: Redis (standalone or Cluster,
 * through RedisTopology), or PostgreSQL (QUEUE_BACKEND=postgres: BullMQ's Postgres backend, its tables in
 * the `bullmq` schema of DATABASE_URL). Producers, workers, replay and bull-board all build their
 * queues from here, so they agree on the backend.
 */
export interface QueueStore {
  readonly kind: Config['QUEUE_BACKEND'];
  /** The BullMQ backend factory for the Queue/Worker constructors (undefined: BullMQ's Redis default). */
  readonly factory: BackendFactory<any, any> | undefined;
  /** Connection of the producers' queues (fails fast when the store is down: the outbox covers it). */
  producerConnection(): ConnectionOptions;
  /** Connection of one BullMQ Worker running `concurrency` jobs at once. */
  workerConnection(concurrency: number): ConnectionOptions;
  /** The BullMQ prefix of one queue (ignored by the Postgres backend: the database isolates it). */
  queuePrefix(queue: string): string;
  close(): Promise<void>;
}

/** `onError`: errors of the shared Postgres connection (an idle connection lost); Redis reports through each Queue and Worker. */
export function queueStore(config: Config, redis: RedisTopology = redisTopology(config), onError: (err: Error) => void = () => {}): QueueStore {
  if (config.QUEUE_BACKEND === 'redis') {
    return {
      kind: 'redis',
      factory: undefined,
      producerConnection: () => redis.producerConnection(),
      workerConnection: () => redis.workerConnection(),
      queuePrefix: (q) => redis.queuePrefix(q),
      close: () => redis.close(),
    };
  }
  // One pool (half DATABASE_POOL_SIZE, like the append pool) and one LISTEN connection for every Queue
  // and Worker of the process (see sharedPostgresBackend). `migrate: true` creates or upgrades the
  // bullmq schema on first use (an advisory lock serialises concurrent starters; a no-op read once it
  // is current).
  const shared = sharedPostgresBackend(
    { ...sessionConfig(config.DATABASE_URL), schema: BULLMQ_SCHEMA, migrate: true, max: Math.max(2, Math.ceil(config.DATABASE_POOL_SIZE / 2)), idleTimeoutMillis: 10_000, connectionTimeoutMillis: 5000, keepAlive: true },
    onError,
  );
  // The connection is the shared one; what a Queue or Worker is given is only handed to the factory.
  const connection = { shared: true } as unknown as ConnectionOptions;
  return {
    kind: 'postgres',
    factory: shared.factory,
    producerConnection: () => connection,
    workerConnection: () => connection,
    queuePrefix: () => config.QUEUE_PREFIX,
    close: () => shared.close(),
  };
}
