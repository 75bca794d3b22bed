import { Worker, type Processor, type WorkerOptions } from 'bullmq';
import type { QueueStore } from './queueStore.js';

/** A BullMQ Worker on the process's queue store (Redis, or PostgreSQL with QUEUE_BACKEND=postgres). */
export function newWorker<D>(store: QueueStore, queue: string, processor: Processor<D>, opts: WorkerOptions): Worker<D> {
  return store.factory ? (new Worker<D>(queue, processor, opts, store.factory) as unknown as Worker<D>) : new Worker<D>(queue, processor, opts);
}
