import { createPostgresBackend, type BackendFactory, type ConnectionOptions } from 'bullmq';
import type { Config } from '../config.js';
import { withApplicationName } from '../db/horizon.js';
import { redisTopology, type RedisTopology } from './redisTopology.js';

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
  /** One line for banners and logs: where the queues are. */
  describe(): string;
  close(): Promise<void>;
}

export function queueStore(config: Config, redis: RedisTopology = redisTopology(config)): QueueStore {
  if (config.QUEUE_BACKEND === 'redis') {
    return {
      kind: 'redis',
      factory: undefined,
      producerConnection: () => redis.producerConnection(),
      workerConnection: () => redis.workerConnection(),
      queuePrefix: (q) => redis.queuePrefix(q),
      describe: () => (redis.cluster ? 'Redis Cluster' : 'Redis'),
      close: () => redis.close(),
    };
  }
  // Every Queue and Worker owns a small pool (idle connections close after 10 s) and, for workers, one
  // LISTEN connection. `migrate: true` creates or upgrades the bullmq schema on first use (an advisory
  // lock serialises concurrent starters; a no-op read once it is current).
  const base = (max: number) =>
    ({ connectionString: withApplicationName(config.DATABASE_URL), schema: BULLMQ_SCHEMA, migrate: true, max, idleTimeoutMillis: 10_000, connectionTimeoutMillis: 5000, keepAlive: true }) as unknown as ConnectionOptions;
  return {
    kind: 'postgres',
    factory: createPostgresBackend as BackendFactory<any, any>,
    producerConnection: () => base(3),
    // The worker's own calls (fetch, complete, extend locks) plus one spare; LISTEN has its own connection.
    workerConnection: (concurrency) => base(concurrency + 2),
    queuePrefix: () => config.QUEUE_PREFIX,
    describe: () => `PostgreSQL (schema ${BULLMQ_SCHEMA})`,
    close: async () => {},
  };
}
