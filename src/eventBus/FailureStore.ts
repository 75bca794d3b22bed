import type { Queue } from 'bullmq';
import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { jobOptions, policyOf, retryJobId, type ConsumerRoute, type HandlerJobData, type ProjectionJobData, type RetryPolicy } from './queues.js';

export const FailureStatusSchema = z.enum(['open', 'retrying', 'resolved']);
export type FailureStatus = z.infer<typeof FailureStatusSchema>;

export const FailureRow = z.object({
  id: z.number(),
  consumer: z.string(),
  consumer_kind: z.enum(['handler', 'projection']),
  event_id: z.string(),
  stream_id: z.string(),
  event_type: z.string(),
  global_position: z.number(),
  attempts: z.number(),
  error_message: z.string(),
  error_stack: z.string().nullable(),
  job_id: z.string().nullable(),
  status: FailureStatusSchema,
  resolution_note: z.string().nullable(),
  retry_count: z.number(),
  first_failed_at: z.string(),
  last_failed_at: z.string(),
  resolved_at: z.string().nullable(),
});
export type Failure = z.infer<typeof FailureRow>;

export class FailureNotFoundError extends Error {
  override readonly name = 'FailureNotFoundError';
  constructor(readonly id: number) {
    super(`no processing failure with id ${id}`);
  }
}
export class FailureStateError extends Error {
  override readonly name = 'FailureStateError';
}

export interface FailedItem {
  eventId: string;
  message: string;
  stack?: string | null;
}

/** `event_processing_failures`: one row per (consumer, event) whose job exhausted its attempts. */
export class FailureStore {
  constructor(
    private readonly pool: DatabasePool,
    private readonly queues: { handlers: Queue; projections: Queue },
    private readonly routes: readonly ConsumerRoute[],
    private readonly defaults: RetryPolicy,
  ) {}

  /** Idempotent per (consumer, event): a second final failure updates the row, never adds one. */
  async record(consumer: string, kind: 'handler' | 'projection', items: readonly FailedItem[], attempts: number, jobId: string | undefined, db: CommonQueryMethods = this.pool): Promise<void> {
    if (items.length === 0) return;
    await db.query(sql.unsafe`
      INSERT INTO event_processing_failures (consumer, consumer_kind, event_id, stream_id, event_type, global_position, attempts, error_message, error_stack, job_id)
      SELECT ${consumer}, ${kind}, e.id, e.stream_id, e.event_type, e.global_position, ${attempts}, f.message, f.stack, ${jobId ?? null}
      FROM ${sql.unnest(items.map((i) => [i.eventId, i.message.slice(0, 4000), i.stack?.slice(0, 16000) ?? null]), ['uuid', 'text', 'text'])} AS f(event_id, message, stack)
      JOIN event_store e ON e.id = f.event_id
      ON CONFLICT (consumer, event_id) DO UPDATE SET
        attempts = EXCLUDED.attempts, error_message = EXCLUDED.error_message, error_stack = EXCLUDED.error_stack,
        job_id = EXCLUDED.job_id, last_failed_at = now(), status = 'open', resolved_at = NULL`);
  }

  async get(id: number): Promise<Failure> {
    const row = await this.pool.maybeOne(sql.type(FailureRow)`SELECT * FROM event_processing_failures WHERE id = ${id}`);
    if (!row) throw new FailureNotFoundError(id);
    return row;
  }

  async list(options: { status?: FailureStatus | 'all'; limit?: number; beforeId?: number; consumer?: string } = {}): Promise<Failure[]> {
    const status = options.status ?? 'open';
    const conds = [
      status === 'all' ? sql.fragment`TRUE` : sql.fragment`status = ${status}`,
      options.beforeId ? sql.fragment`id < ${options.beforeId}` : sql.fragment`TRUE`,
      options.consumer ? sql.fragment`consumer = ${options.consumer}` : sql.fragment`TRUE`,
    ];
    return [
      ...(await this.pool.any(sql.type(FailureRow)`
        SELECT * FROM event_processing_failures WHERE ${sql.join(conds, sql.fragment` AND `)}
        ORDER BY id DESC LIMIT ${Math.min(options.limit ?? 50, 500)}`)),
    ];
  }

  async countOpen(): Promise<number> {
    return this.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*) AS n FROM event_processing_failures WHERE status <> 'resolved'`);
  }

  /** Marks a failure resolved without running anything (an operator decided the event needs no processing). */
  async resolve(id: number, note: string): Promise<Failure> {
    const failure = await this.get(id);
    if (failure.status === 'resolved') throw new FailureStateError(`failure ${id} is already resolved`);
    return this.pool.transaction(async (tx) => {
      if (failure.consumer_kind === 'projection') {
        // Skipping the poison event: the stream continues after it.
        await tx.query(sql.unsafe`
          UPDATE projection_checkpoints c SET parked = false, parked_event_id = NULL,
            version = GREATEST(c.version, e.version), global_position = GREATEST(c.global_position, e.global_position), updated_at = now()
          FROM event_store e
          WHERE e.id = ${failure.event_id} AND c.projection = ${failure.consumer} AND c.stream_id = ${failure.stream_id}
            AND c.generation = (SELECT generation FROM event_projections WHERE name = ${failure.consumer})`);
      }
      return tx.one(sql.type(FailureRow)`
        UPDATE event_processing_failures SET status = 'resolved', resolved_at = now(), resolution_note = ${note}
        WHERE id = ${id} RETURNING *`);
    }).then(async (row) => {
      if (failure.consumer_kind === 'projection') await this.enqueueRetry(failure, id);
      return row;
    });
  }

  /** Re-runs the consumer for the event with a fresh job (reset attempts); success marks the row resolved. */
  async retry(id: number): Promise<{ failure: Failure; jobId: string }> {
    const failure = await this.get(id);
    if (failure.status === 'resolved') throw new FailureStateError(`failure ${id} is already resolved`);
    const row = await this.pool.transaction(async (tx) => {
      if (failure.consumer_kind === 'projection') {
        await tx.query(sql.unsafe`
          UPDATE projection_checkpoints SET parked = false, parked_event_id = NULL, updated_at = now()
          WHERE projection = ${failure.consumer} AND stream_id = ${failure.stream_id}`);
      }
      return tx.one(sql.type(FailureRow)`
        UPDATE event_processing_failures SET status = 'retrying', retry_count = retry_count + 1 WHERE id = ${id} RETURNING *`);
    });
    const jobId = await this.enqueueRetry(failure, id);
    return { failure: row, jobId };
  }

  private async enqueueRetry(failure: Failure, id: number): Promise<string> {
    const route = this.routes.find((r) => r.name === failure.consumer);
    const policy = policyOf(route, this.defaults);
    const jobId = retryJobId(failure.consumer, id);
    if (failure.consumer_kind === 'handler') {
      const data: HandlerJobData = { consumer: failure.consumer, eventIds: [failure.event_id], retryOf: id };
      await this.queues.handlers.add(failure.consumer, data, { ...jobOptions(policy), jobId });
    } else {
      const data: ProjectionJobData = { consumer: failure.consumer, streams: [failure.stream_id], retryOf: id };
      await this.queues.projections.add(failure.consumer, data, { ...jobOptions(policy), jobId });
    }
    return jobId;
  }

  /** Called by a consumer in the same transaction as the successful work of a retry job. */
  static async markResolved(db: CommonQueryMethods, id: number, note = 'retried successfully'): Promise<void> {
    await db.query(sql.unsafe`
      UPDATE event_processing_failures SET status = 'resolved', resolved_at = now(), resolution_note = coalesce(resolution_note, ${note})
      WHERE id = ${id} AND status <> 'resolved'`);
  }
}
