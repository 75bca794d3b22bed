import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { markHandled } from '../handlers/ledger.js';
import { skipPastMany, unparkMany } from '../projections/checkpoints.js';
import { FailureRow, type Failure, type FailureStatus } from './failures.js';
import { bulkRetryJobId, jobOptions, type HandlerJobData, type ProjectionJobData, type RetryPolicy } from './jobs.js';
import type { ConsumerQueues } from './queues.js';

/**
 * The failures explorer's filter, shared by the list, the bulk retry/resolve and the CLI. Times are
 * compared with `last_failed_at` (when the failure was last recorded).
 */
export const FailureFilterSchema = z
  .object({
    consumer: z.string().min(1).max(128).optional(),
    eventType: z.string().min(1).max(128).optional(),
    q: z.string().min(1).max(500).optional().describe('Substring of the error message (case-insensitive)'),
    since: z.string().datetime({ offset: true }).optional().describe('ISO 8601: last failed at or after'),
    until: z.string().datetime({ offset: true }).optional().describe('ISO 8601: last failed before'),
    ids: z.array(z.number().int().min(1).max(Number.MAX_SAFE_INTEGER)).min(1).max(10_000).optional().describe('Only these failure ids'),
  })
  .strict()
  .refine((f) => !f.since || !f.until || Date.parse(f.since) < Date.parse(f.until), { message: 'must be later than since', path: ['until'] });
export type FailureFilter = z.infer<typeof FailureFilterSchema>;

/** `%` and `_` in the operator's text are literal. */
const likePattern = (q: string) => `%${q.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;

export function filterWhere(f: FailureFilter, status: FailureStatus | 'all') {
  const conds = [
    status === 'all' ? null : sql.fragment`status = ${status}`,
    f.consumer !== undefined ? sql.fragment`consumer = ${f.consumer}` : null,
    f.eventType !== undefined ? sql.fragment`event_type = ${f.eventType}` : null,
    f.q !== undefined ? sql.fragment`error_message ILIKE ${likePattern(f.q)}` : null,
    f.since !== undefined ? sql.fragment`last_failed_at >= ${f.since}::timestamptz` : null,
    f.until !== undefined ? sql.fragment`last_failed_at < ${f.until}::timestamptz` : null,
    f.ids !== undefined ? sql.fragment`id = ANY(${sql.array(f.ids, 'int8')})` : null,
  ].filter((c) => c !== null);
  return conds.length ? sql.join(conds, sql.fragment` AND `) : sql.fragment`TRUE`;
}

/** The cursor is opaque to clients; today it is the last id of the page (pages run newest first). */
export function encodeCursor(id: number): string {
  return Buffer.from(`f1:${id}`, 'utf8').toString('base64url');
}
export function decodeCursor(cursor: string): number | null {
  const m = /^f1:(\d{1,16})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  const id = m ? Number(m[1]) : Number.NaN;
  return Number.isSafeInteger(id) && id > 0 ? id : null;
}

export interface FailurePage {
  failures: Failure[];
  total: number;
  nextBefore: number | null;
  nextCursor: string | null;
}

const Count = z.object({ n: z.number() });
const ByConsumerRow = z.object({ consumer: z.string(), n: z.number() });

export async function listFailures(db: CommonQueryMethods, f: FailureFilter, o: { status: FailureStatus | 'all'; limit: number; beforeId?: number }): Promise<FailurePage> {
  const where = filterWhere(f, o.status);
  const page = o.beforeId !== undefined ? sql.fragment`AND id < ${o.beforeId}` : sql.fragment``;
  const [rows, total] = await Promise.all([
    db.any(sql.type(FailureRow)`SELECT * FROM event_processing_failures WHERE ${where} ${page} ORDER BY id DESC LIMIT ${o.limit + 1}`),
    db.oneFirst(sql.type(Count)`SELECT count(*) AS n FROM event_processing_failures WHERE ${where}`),
  ]);
  const failures = rows.slice(0, o.limit);
  const last = rows.length > o.limit ? failures[failures.length - 1]!.id : null;
  return { failures, total, nextBefore: last, nextCursor: last === null ? null : encodeCursor(last) };
}

/** How many open failures match, per consumer (the dry run's preview). */
export async function matchOpen(db: CommonQueryMethods, f: FailureFilter): Promise<{ matched: number; byConsumer: Record<string, number> }> {
  const rows = await db.any(sql.type(ByConsumerRow)`
    SELECT consumer, count(*) AS n FROM event_processing_failures WHERE ${filterWhere(f, 'open')} GROUP BY consumer ORDER BY consumer`);
  return { matched: rows.reduce((n, r) => n + r.n, 0), byConsumer: Object.fromEntries(rows.map((r) => [r.consumer, r.n])) };
}

export const FailedEventSchema = z.object({
  id: z.string(),
  streamId: z.string(),
  type: z.string(),
  version: z.number().int(),
  globalPosition: z.number().int(),
  payload: z.unknown(),
  metadata: z.record(z.unknown()),
});
const FailedEventRow = z.object({ id: z.string(), stream_id: z.string(), event_type: z.string(), version: z.number(), global_position: z.number(), payload: z.unknown(), metadata: z.record(z.unknown()) });

/** The stored event a failure is about (archived events too); null if it is no longer stored. */
export async function failedEvent(db: CommonQueryMethods, eventId: string): Promise<z.infer<typeof FailedEventSchema> | null> {
  const r = await db.maybeOne(sql.type(FailedEventRow)`
    SELECT id, stream_id, event_type, version, global_position, payload, metadata FROM event_store_all WHERE id = ${eventId}`);
  return r ? { id: r.id, streamId: r.stream_id, type: r.event_type, version: r.version, globalPosition: r.global_position, payload: r.payload, metadata: r.metadata } : null;
}

export interface BulkOutcome {
  matched: number;
  byConsumer: Record<string, number>;
  /** Retried or resolved. */
  done: number;
  jobs: number;
}

/** Rows claimed per transaction; a bulk action over 10,000 failures is ten short transactions. */
const CLAIM_PAGE = 1000;
/** Failures one retry job covers: few jobs for hundreds of failures, each still a bounded batch. */
export const RETRY_JOB_CHUNK = 200;

const Claimed = z.object({ id: z.number(), consumer: z.string(), consumer_kind: z.enum(['handler', 'projection']), event_id: z.string(), stream_id: z.string() });
type ClaimedRow = z.infer<typeof Claimed>;

/**
 * Bulk retry and resolve of the open failures a filter matches. Rows are claimed (status changed)
 * in pages by ascending id, up to the newest id seen at the start, so a failure that is recorded again
 * while the action runs is not taken twice, and two operators acting at once never take the same row.
 */
export class BulkFailures {
  constructor(
    private readonly pool: DatabasePool,
    private readonly queues: ConsumerQueues,
    private readonly policyOf: (consumer: string) => RetryPolicy,
  ) {}

  /**
   * The same path as a one-id retry (status `retrying`, projection streams unparked, a consumer's own
   * job with reset attempts that resolves the rows when it succeeds), with one job per consumer per
   * RETRY_JOB_CHUNK failures, enqueued with one addBulk per consumer.
   */
  async retry(f: FailureFilter): Promise<BulkOutcome> {
    return this.claimAll(f, async (tx, rows) => {
      await tx.query(sql.unsafe`
        UPDATE event_processing_failures SET status = 'retrying', retry_count = retry_count + 1, skipped = false
        WHERE id = ANY(${sql.array(rows.map((r) => r.id), 'int8')})`);
      for (const [consumer, of] of groupBy(rows.filter((r) => r.consumer_kind === 'projection'))) await unparkMany(tx, consumer, of.map((r) => r.stream_id));
    }, (rows) => this.enqueue(rows, true));
  }

  /** As a one-id resolve: the consumer skips each event for good (ledger row, or the stream continues after it). */
  async resolve(f: FailureFilter, note: string): Promise<BulkOutcome> {
    return this.claimAll(f, async (tx, rows) => {
      for (const [consumer, of] of groupBy(rows)) {
        if (of[0]!.consumer_kind === 'handler') await markHandled(tx, consumer, of.map((r) => r.event_id));
        else await skipPastMany(tx, consumer, of.map((r) => ({ streamId: r.stream_id, eventId: r.event_id })));
      }
      await tx.query(sql.unsafe`
        UPDATE event_processing_failures SET status = 'resolved', resolved_at = now(), resolution_note = ${note}, skipped = true
        WHERE id = ANY(${sql.array(rows.map((r) => r.id), 'int8')})`);
      // The streams' later events waited behind the skipped ones: their catch-up is enqueued below.
    }, (rows) => this.enqueue(rows.filter((r) => r.consumer_kind === 'projection'), false));
  }

  private async claimAll(f: FailureFilter, apply: (tx: CommonQueryMethods, rows: ClaimedRow[]) => Promise<void>, after: (rows: ClaimedRow[]) => Promise<number>): Promise<BulkOutcome> {
    const where = filterWhere(f, 'open');
    const maxId = await this.pool.oneFirst(sql.type(z.object({ m: z.number() }))`SELECT coalesce(max(id), 0) AS m FROM event_processing_failures`);
    const byConsumer: Record<string, number> = {};
    let lastId = 0;
    let done = 0;
    let jobs = 0;
    for (;;) {
      const rows = await this.pool.transaction(async (tx) => {
        const claimed = [
          ...(await tx.any(sql.type(Claimed)`
            SELECT id, consumer, consumer_kind, event_id, stream_id FROM event_processing_failures
            WHERE ${where} AND id > ${lastId} AND id <= ${maxId}
            ORDER BY id LIMIT ${CLAIM_PAGE} FOR UPDATE SKIP LOCKED`)),
        ];
        if (claimed.length) await apply(tx, claimed);
        return claimed;
      });
      if (rows.length === 0) break;
      lastId = rows[rows.length - 1]!.id;
      for (const r of rows) byConsumer[r.consumer] = (byConsumer[r.consumer] ?? 0) + 1;
      done += rows.length;
      jobs += await after(rows);
    }
    return { matched: done, byConsumer, done, jobs };
  }

  private async enqueue(rows: readonly ClaimedRow[], retryOf: boolean): Promise<number> {
    let jobs = 0;
    for (const [consumer, of] of groupBy(rows)) {
      const opts = jobOptions(this.policyOf(consumer));
      const batch = chunks(of, RETRY_JOB_CHUNK).map((part) => {
        const ids = part.map((r) => r.id);
        const base = retryOf ? { retryOf: ids } : {};
        const data: HandlerJobData | ProjectionJobData =
          part[0]!.consumer_kind === 'handler' ? { consumers: [consumer], eventIds: part.map((r) => r.event_id), ...base } : { streams: { [consumer]: [...new Set(part.map((r) => r.stream_id))] }, ...base };
        return { name: consumer, data, opts: { ...opts, jobId: bulkRetryJobId(consumer, ids[0]!, ids.length) } };
      });
      await this.queues.own(consumer).addBulk(batch);
      jobs += batch.length;
    }
    return jobs;
  }
}

function groupBy(rows: readonly ClaimedRow[]): Map<string, ClaimedRow[]> {
  const m = new Map<string, ClaimedRow[]>();
  for (const r of rows) (m.get(r.consumer) ?? m.set(r.consumer, []).get(r.consumer)!).push(r);
  return m;
}

function chunks<T>(xs: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += n) out.push(xs.slice(i, i + n));
  return out;
}
