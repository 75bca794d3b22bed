import { Queue, type BackendFactory, type ConnectionOptions } from 'bullmq';

export const QUEUE_NAMES = {
  handlers: 'handlers',
  projections: 'projections',
  replay: 'replay',
} as const;
export type QueueName = (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES];

/** One prefix for every queue, or the prefix of each queue by name (Redis Cluster: a hash tag per queue). */
export type QueuePrefix = string | ((queue: string) => string);

/** `factory`: BullMQ's backend (undefined: Redis; `createPostgresBackend` with QUEUE_BACKEND=postgres). */
export function createQueue(name: string, connection: ConnectionOptions, prefix: QueuePrefix, factory?: BackendFactory<any, any>): Queue {
  const opts = { connection, prefix: typeof prefix === 'function' ? prefix(name) : prefix };
  const queue = factory ? (new Queue(name, opts, factory) as unknown as Queue) : new Queue(name, opts);
  // Without a listener BullMQ prints every connection error as a stack trace.
  queue.on('error', () => {});
  return queue;
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
