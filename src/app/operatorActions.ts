import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import { BulkFailures, matchOpen, type FailureFilter } from '../consumers/bulkFailures.js';
import type { Failure } from '../consumers/failures.js';
import type { Container } from './container.js';

/**
 * Operator actions (retry, resolve, rebuild) as the API and the CLI run them, each written to
 * `operator_audit`: who, when, with which filter, how many. Dry runs change nothing and are not audited.
 */

export const AuditActionSchema = z.enum(['retry', 'resolve', 'bulk-retry', 'bulk-resolve', 'rebuild']);
export type AuditAction = z.infer<typeof AuditActionSchema>;

export const AuditEntrySchema = z.object({
  id: z.number().int(),
  at: z.string(),
  actor: z.string(),
  action: z.string(),
  filter: z.record(z.unknown()),
  counts: z.record(z.unknown()),
  details: z.record(z.unknown()),
});
export type AuditEntry = z.infer<typeof AuditEntrySchema>;
const AuditRow = z.object({ id: z.number(), at: z.string(), actor: z.string(), action: z.string(), filter: z.record(z.unknown()), counts: z.record(z.unknown()), details: z.record(z.unknown()) });

export async function audit(db: CommonQueryMethods, entry: { actor: string; action: AuditAction; filter?: object; counts?: object; details?: object }): Promise<number> {
  return db.oneFirst(sql.type(z.object({ id: z.number() }))`
    INSERT INTO operator_audit (actor, action, filter, counts, details)
    VALUES (${entry.actor.slice(0, 200)}, ${entry.action}, ${sql.jsonb((entry.filter ?? {}) as never)}, ${sql.jsonb((entry.counts ?? {}) as never)}, ${sql.jsonb((entry.details ?? {}) as never)})
    RETURNING id`);
}

/** Newest first; `before` is the id of the last entry of the previous page. */
export async function auditEntries(db: CommonQueryMethods, o: { limit: number; before?: number }): Promise<AuditEntry[]> {
  const rows = await db.any(sql.type(AuditRow)`
    SELECT id, at, actor, action, filter, counts, details FROM operator_audit
    ${o.before !== undefined ? sql.fragment`WHERE id < ${o.before}` : sql.fragment``}
    ORDER BY id DESC LIMIT ${o.limit}`);
  return [...rows];
}

export interface BulkResult {
  dryRun: boolean;
  matched: number;
  byConsumer: Record<string, number>;
  auditId: number | null;
}

type Deps = Pick<Container, 'pool' | 'consumerQueues' | 'policyOf' | 'failures'>;

export class OperatorActions {
  private readonly bulk: BulkFailures;
  constructor(private readonly c: Deps) {
    this.bulk = new BulkFailures(c.pool, c.consumerQueues, c.policyOf);
  }

  async bulkRetry(filter: FailureFilter, o: { actor: string; dryRun?: boolean }): Promise<BulkResult & { retried: number; jobs: number }> {
    if (o.dryRun) return { dryRun: true, ...(await matchOpen(this.c.pool, filter)), retried: 0, jobs: 0, auditId: null };
    const r = await this.bulk.retry(filter);
    const auditId = await audit(this.c.pool, { actor: o.actor, action: 'bulk-retry', filter, counts: { matched: r.matched, retried: r.done, jobs: r.jobs, byConsumer: r.byConsumer } });
    return { dryRun: false, matched: r.matched, byConsumer: r.byConsumer, retried: r.done, jobs: r.jobs, auditId };
  }

  async bulkResolve(filter: FailureFilter, o: { actor: string; dryRun?: boolean; note?: string }): Promise<BulkResult & { resolved: number }> {
    if (o.dryRun) return { dryRun: true, ...(await matchOpen(this.c.pool, filter)), resolved: 0, auditId: null };
    if (!o.note?.trim()) throw new Error('a note is required to resolve failures');
    const r = await this.bulk.resolve(filter, o.note.trim());
    const auditId = await audit(this.c.pool, { actor: o.actor, action: 'bulk-resolve', filter, counts: { matched: r.matched, resolved: r.done, byConsumer: r.byConsumer }, details: { note: o.note.trim() } });
    return { dryRun: false, matched: r.matched, byConsumer: r.byConsumer, resolved: r.done, auditId };
  }

  async retryOne(id: number, actor: string): Promise<{ failure: Failure; jobId: string; auditId: number }> {
    const r = await this.c.failures.retry(id);
    const auditId = await audit(this.c.pool, { actor, action: 'retry', filter: { ids: [id] }, counts: { retried: 1 }, details: { jobId: r.jobId, consumer: r.failure.consumer } });
    return { ...r, auditId };
  }

  async resolveOne(id: number, note: string, actor: string): Promise<{ failure: Failure; auditId: number }> {
    const failure = await this.c.failures.resolve(id, note);
    const auditId = await audit(this.c.pool, { actor, action: 'resolve', filter: { ids: [id] }, counts: { resolved: 1 }, details: { note, consumer: failure.consumer } });
    return { failure, auditId };
  }
}
