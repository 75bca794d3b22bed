import type { Logger } from 'pino';
import type { DatabasePool } from 'slonik';
import { jobOptions, ownQueueName, type HandlerJobData, type ProjectionJobData, type RetryPolicy } from './jobs.js';
import { claimDue, dropSettledBatches, markDueNow, repointOwed, type DueRow } from './owedWork.js';
import type { ConsumerQueues } from './queues.js';

/** Job states in which BullMQ will still run the job by itself. */
const ALIVE = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);

export interface ReconcilerOptions {
  /** OWED_REDELIVER_AFTER_MS: how long an owed batch may wait for its job before it is looked at again. */
  horizonMs: number;
  limit?: number;
}

/**
 * Part of the relay role: owed rows whose time has come are checked against their job in Redis. A job
 * that is still alive is left alone; one that is gone (Redis lost its data, an operator deleted it)
 * or finished without settling the row is redelivered as a job of that consumer's own, on its own
 * queue. Duplicates are harmless: the ledger and the checkpoints absorb them.
 */
export class Reconciler {
  redelivered = 0;
  private lastRound = 0;

  constructor(
    private readonly pool: DatabasePool,
    private readonly queues: ConsumerQueues,
    private readonly policyOf: (consumer: string) => RetryPolicy,
    private readonly logger: Logger,
    private readonly options: ReconcilerOptions,
  ) {}

  /**
   * A round at most every horizon/6 (5 s by default), however often the relay polls: owed work is
   * looked at a horizon after it was published, so polling faster finds nothing new.
   */
  async maybeReconcile(): Promise<number> {
    if (Date.now() - this.lastRound < Math.min(5000, this.options.horizonMs / 6)) return 0;
    return this.reconcile();
  }

  /** One round; returns how many owed batches were redelivered. */
  async reconcile(): Promise<number> {
    this.lastRound = Date.now();
    let total = 0;
    for (;;) {
      const due = await claimDue(this.pool, this.options.limit ?? 200, this.options.horizonMs);
      let n = 0;
      for (const [i, row] of due.entries()) {
        try {
          if (await this.check(row)) n++;
        } catch (error) {
          // Redis did not answer: the rows not yet looked at are due again at once, not a horizon later.
          await markDueNow(this.pool, [...new Set(due.slice(i).map((r) => r.job_key))]).catch(() => {});
          throw error;
        }
      }
      total += n;
      if (due.length < (this.options.limit ?? 200)) break;
    }
    await dropSettledBatches(this.pool);
    if (total > 0) this.logger.info({ redelivered: total }, 'owed work whose job was gone was redelivered');
    this.redelivered += total;
    return total;
  }

  private async check(row: DueRow): Promise<boolean> {
    const state = await this.queues.byName(row.job_queue).getJobState(row.job_id);
    if (ALIVE.has(state)) return false;
    const jobId = `${row.consumer.replace(/:/g, '_')}.${row.job_key}.r${row.deliveries}`;
    const data: HandlerJobData | ProjectionJobData =
      row.kind === 'handler' ? { consumers: [row.consumer], eventIds: row.event_ids, owed: row.job_key } : { streams: { [row.consumer]: row.streams }, owed: row.job_key };
    await this.queues.own(row.consumer).add(row.consumer, data, { ...jobOptions(this.policyOf(row.consumer)), jobId });
    await repointOwed(this.pool, row.consumer, row.job_key, ownQueueName(row.consumer), jobId, true);
    return true;
  }
}
