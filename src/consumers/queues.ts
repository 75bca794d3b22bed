import type { BackendFactory, ConnectionOptions, Queue } from 'bullmq';
import { createQueue, type QueuePrefix } from '../eventBus/queues.js';
import { ownQueueName, SHARED_QUEUE, type ConsumerKind } from './jobs.js';

/**
 * The consumer pipeline's queues: the two shared ones (published batches for every consumer) and one
 * per consumer (its own jobs), created on first use.
 */
export class ConsumerQueues {
  private readonly owned = new Map<string, Queue>();

  constructor(
    readonly handlers: Queue,
    readonly projections: Queue,
    private readonly connection: ConnectionOptions,
    private readonly prefix: QueuePrefix,
    private readonly factory?: BackendFactory<any, any>,
  ) {}

  shared(kind: ConsumerKind): Queue {
    return kind === 'handler' ? this.handlers : this.projections;
  }

  own(consumer: string): Queue {
    return this.byName(ownQueueName(consumer));
  }

  byName(name: string): Queue {
    if (name === SHARED_QUEUE.handler) return this.handlers;
    if (name === SHARED_QUEUE.projection) return this.projections;
    let q = this.owned.get(name);
    if (!q) this.owned.set(name, (q = createQueue(name, this.connection, this.prefix, this.factory)));
    return q;
  }

  /** The shared queues and every own queue this process has opened. */
  all(): Queue[] {
    return [this.handlers, this.projections, ...this.owned.values()];
  }

  async closeOwn(): Promise<void> {
    await Promise.allSettled([...this.owned.values()].map((q) => q.close()));
  }
}
