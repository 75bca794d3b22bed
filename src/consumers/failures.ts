import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { markHandled } from '../handlers/ledger.js';
import { skipPast, unpark } from '../projections/checkpoints.js';
import { jobOptions, retryJobId, type HandlerJobData, type ProjectionJobData, type RetryPolicy } from './jobs.js';
import type { ConsumerQueues } from './queues.js';

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
  skipped: z.boolean(),
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

/** `event_processing_failures`: one row per (consumer, event) whose work exhausted its attempts. */
export class FailureStore {
  constructor(
    private readonly pool: DatabasePool,
    private readonly queues: ConsumerQueues,
    private readonly policyOf: (consumer: string) => RetryPolicy,
  ) {}

  /** Idempotent per (consumer, event): a second final failure updates the row, never adds one. */
  async record(consumer: string, kind: 'handler' | 'projection', items: readonly FailedItem[], attempts: number, jobId: string | undefined, db: CommonQueryMethods = this.pool): Promise<void> {
    if (items.length === 0) return;
    await db.query(sql.unsafe`
      INSERT INTO event_processing_failures (consumer, consumer_kind, event_id, stream_id, event_type, global_position, attempts, error_message, error_stack, job_id)
      SELECT ${consumer}, ${kind}, e.id, e.stream_id, e.event_type, e.global_position, ${attempts}, f.message, f.stack, ${jobId ?? null}
      FROM ${sql.unnest(items.map((i) => [i.eventId, i.message.slice(0, 4000), i.stack?.slice(0, 16000) ?? null]), ['uuid', 'text', 'text'])} AS f(event_id, message, stack)
      JOIN event_store e ON e.id = f.event_id
      ORDER BY e.id
      ON CONFLICT (consumer, event_id) DO UPDATE SET
        attempts = EXCLUDED.attempts, error_message = EXCLUDED.error_message, error_stack = EXCLUDED.error_stack,
        job_id = EXCLUDED.job_id, last_failed_at = now(), status = 'open', resolved_at = NULL, skipped = false`);
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
    return countOpenFailures(this.pool);
  }

  /**
   * Resolves a failure without running it: the operator decided this consumer should skip the event.
   * The skip holds for good: a handler's ledger gets the event (it is never run again), a projection's
   * stream continues after it, and every later rebuild of that projection skips it too.
   */
  async resolve(id: number, note: string): Promise<Failure> {
    const failure = await this.get(id);
    if (failure.status === 'resolved') throw new FailureStateError(`failure ${id} is already resolved`);
    const row = await this.pool.transaction(async (tx) => {
      if (failure.consumer_kind === 'projection') await skipPast(tx, failure.consumer, failure.stream_id, failure.event_id);
      else await markHandled(tx, failure.consumer, [failure.event_id]);
      return tx.one(sql.type(FailureRow)`
        UPDATE event_processing_failures SET status = 'resolved', resolved_at = now(), resolution_note = ${note}, skipped = true
        WHERE id = ${id} RETURNING *`);
    });
    // The stream's later events waited behind the skipped one: catch them up now.
    if (failure.consumer_kind === 'projection') await this.enqueueRetry(failure, id);
    return row;
  }

  /** Re-runs the consumer for the event with a fresh job (reset attempts); success marks the row resolved. */
  async retry(id: number): Promise<{ failure: Failure; jobId: string }> {
    const failure = await this.get(id);
    if (failure.status === 'resolved') throw new FailureStateError(`failure ${id} is already resolved`);
    const row = await this.pool.transaction(async (tx) => {
      if (failure.consumer_kind === 'projection') await unpark(tx, failure.consumer, failure.stream_id);
      return tx.one(sql.type(FailureRow)`
        UPDATE event_processing_failures SET status = 'retrying', retry_count = retry_count + 1, skipped = false WHERE id = ${id} RETURNING *`);
    });
    const jobId = await this.enqueueRetry(failure, id);
    return { failure: row, jobId };
  }

  /** A retry is a consumer's own job (its own queue: only a worker running it takes it). */
  private async enqueueRetry(failure: Failure, id: number): Promise<string> {
    const jobId = retryJobId(failure.consumer, id);
    const data: HandlerJobData | ProjectionJobData =
      failure.consumer_kind === 'handler' ? { consumers: [failure.consumer], eventIds: [failure.event_id], retryOf: id } : { streams: { [failure.consumer]: [failure.stream_id] }, retryOf: id };
    await this.queues.own(failure.consumer).add(failure.consumer, data, { ...jobOptions(this.policyOf(failure.consumer)), jobId });
    return jobId;
  }
}

/** In the same transaction as the successful work of a retry job: the failure (or a bulk retry's failures) is resolved. */
export function resolveRetriedSql(ids: number | readonly number[]) {
  const list = typeof ids === 'number' ? [ids] : [...ids];
  return sql.fragment`
    UPDATE event_processing_failures SET status = 'resolved', resolved_at = now(), resolution_note = coalesce(resolution_note, 'retried successfully')
    WHERE id = ANY(${sql.array(list, 'int8')}) AND status <> 'resolved'`;
}

/**
 * A retry job failed for good after some of its events took effect (a batch narrows to what failed):
 * the failures it recorded again are `open`; the rest of the ones it retried are still `retrying`,
 * and their events did take effect, so they are resolved. In the transaction that records the others.
 */
export async function resolveRetriedRest(db: CommonQueryMethods, ids: number | readonly number[] | undefined): Promise<void> {
  if (ids === undefined || typeof ids === 'number') return;
  await db.query(sql.unsafe`
    UPDATE event_processing_failures SET status = 'resolved', resolved_at = now(), resolution_note = coalesce(resolution_note, 'retried successfully')
    WHERE id = ANY(${sql.array([...ids], 'int8')}) AND status = 'retrying'`);
}

/**
 * A job that failed for good and is run again from outside the API (bull-board's retry, or anyone's
 * `job.retry()`): its open failure rows (found by job id) become `retrying` and their projection
 * streams are unparked, as an API retry does, so the run can take effect. Returns how many.
 */
export async function reviveFailuresOfJob(pool: DatabasePool, jobId: string, consumers: readonly string[]): Promise<number> {
  return pool.transaction(async (tx) => {
    const rows = await tx.any(sql.type(z.object({ consumer: z.string(), consumer_kind: z.string(), stream_id: z.string() }))`
      UPDATE event_processing_failures SET status = 'retrying', retry_count = retry_count + 1
      WHERE job_id = ${jobId} AND status = 'open' AND consumer = ANY(${sql.array([...consumers], 'text')})
      RETURNING consumer, consumer_kind, stream_id`);
    for (const r of rows) if (r.consumer_kind === 'projection') await unpark(tx, r.consumer, r.stream_id);
    return rows.length;
  });
}

/** Resolves, in the effect's transaction, the failure rows a re-run job had recorded. */
export function resolveFailuresOfJobSql(jobId: string) {
  return sql.fragment`
    UPDATE event_processing_failures SET status = 'resolved', resolved_at = now(), resolution_note = coalesce(resolution_note, 'job retried successfully')
    WHERE job_id = ${jobId} AND status <> 'resolved'`;
}

/** Events an operator resolved (skipped) for this consumer: a rebuild skips them too. */
export async function skippedEvents(db: CommonQueryMethods, consumer: string): Promise<Set<string>> {
  return new Set(
    await db.anyFirst(sql.type(z.object({ event_id: z.string() }))`
      SELECT event_id FROM event_processing_failures WHERE consumer = ${consumer} AND skipped AND status = 'resolved'`),
  );
}

/** Failures not resolved yet (open or retrying). */
export async function countOpenFailures(db: CommonQueryMethods): Promise<number> {
  return db.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*) AS n FROM event_processing_failures WHERE status <> 'resolved'`);
}
