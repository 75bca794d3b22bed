import { randomBytes } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { DatabasePool } from 'slonik';
import type { Projection } from '../projections/Projection.js';

export class UnknownProjectionError extends Error {
  override readonly name = 'UnknownProjectionError';
  constructor(
    readonly requested: string,
    readonly validNames: string[],
  ) {
    super(`unknown projection "${requested.slice(0, 100)}"; valid names: ${validNames.join(', ')}`);
  }
}

export interface ReplayRequest {
  /** One projection by name; all projections when absent. */
  projection?: string;
  /** Start at this global position without a reset (feed a projection created later). */
  from?: number;
  /** Events per chunk (default REPLAY_CHUNK_SIZE). */
  chunk?: number;
}

export interface ReplayJobData {
  projections: string[];
  from: number | null;
  chunk: number;
  requestedAt: string;
}

export interface ReplayProgress {
  phase: 'queued' | 'replaying' | 'catching-up' | 'switching' | 'done';
  projection: string | null;
  done: number;
  total: number;
  eventsPerSecond: number;
  etaSeconds: number | null;
}

export interface ReplayJobStatus {
  jobId: string;
  state: string;
  projections: string[];
  progress: ReplayProgress | null;
  result: unknown;
  failedReason: string | null;
  createdAt: string | null;
  finishedAt: string | null;
}

export interface DryRunReport {
  projections: { name: string; events: number; table: string; rows: number }[];
  events: number;
  estimatedSeconds: number;
}

/** Enqueues, describes and estimates replays; the replay worker (replay process) does the work. */
export interface ReplayApi {
  validate(request: ReplayRequest): string[];
  /** `alreadyQueued`: the same projections were already waiting or rebuilding; that job is returned. */
  enqueue(request: ReplayRequest): Promise<{ jobId: string; projections: string[]; alreadyQueued: boolean }>;
  status(jobId: string): Promise<ReplayJobStatus | null>;
  dryRun(request: ReplayRequest): Promise<DryRunReport>;
}

export type ReplayDeps = { pool: DatabasePool; queue: Queue; projections: readonly Projection<any>[]; defaultChunk: number };

export class ReplayInProgressError extends Error {
  override readonly name = 'ReplayInProgressError';
}

const ACTIVE_STATES = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);

/** Rough default until a rebuild has been measured on this deployment (events/s). */
const DEFAULT_RATE = 20_000;

export function createReplayService(deps: ReplayDeps): ReplayApi {
  const names = () => deps.projections.map((p) => p.name);
  const pick = (request: ReplayRequest) => {
    if (request.projection === undefined) return [...deps.projections];
    const p = deps.projections.find((x) => x.name === request.projection);
    if (!p) throw new UnknownProjectionError(request.projection, names());
    return [p];
  };
  const validate = (request: ReplayRequest): string[] => {
    const problems: string[] = [];
    if (request.from !== undefined && (!Number.isSafeInteger(request.from) || request.from < 0)) problems.push('from: must be a non-negative integer global position');
    if (request.chunk !== undefined && (!Number.isSafeInteger(request.chunk) || request.chunk < 1 || request.chunk > 100_000)) problems.push('chunk: must be an integer between 1 and 100000');
    return problems;
  };
  return {
    validate,
    async enqueue(request) {
      const problems = validate(request);
      if (problems.length) throw new RangeError(problems.join('; '));
      const projections = pick(request).map((p) => p.name);
      // One rebuild per projection at a time: two would fight over the shadow table. A request for the
      // same projections joins the job already waiting or running; one for an overlapping set is refused.
      const sameSet = (other: string[]) => other.length === projections.length && other.every((n) => projections.includes(n));
      for (const job of await deps.queue.getJobs(['waiting', 'active', 'delayed', 'prioritized'])) {
        const theirs = (job?.data as ReplayJobData | undefined)?.projections ?? [];
        if (job?.id && sameSet(theirs)) return { jobId: job.id, projections, alreadyQueued: true };
        const busy = theirs.filter((n) => projections.includes(n));
        if (busy.length) throw new ReplayInProgressError(`a replay of ${busy.join(', ')} is already queued or running (job ${job.id})`);
      }
      const data: ReplayJobData = { projections, from: request.from ?? null, chunk: request.chunk ?? deps.defaultChunk, requestedAt: new Date().toISOString() };
      const jobId = `replay-${request.projection ?? 'all'}-${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
      // The check above and this add are not atomic: two requests at once both pass it. The
      // deduplication id makes the add itself atomic per projection set: while a job holds it (until it
      // completes or finally fails), BullMQ stores nothing and answers with that job's id.
      const job = await deps.queue.add('replay', data, {
        jobId,
        deduplication: { id: `replay:${[...projections].sort().join(',')}` },
        attempts: 3,
        backoff: { type: 'exponential', delay: 2000 },
        removeOnComplete: { age: 7 * 24 * 3600 },
        removeOnFail: { age: 30 * 24 * 3600 },
      });
      const id = job.id ?? jobId;
      return { jobId: id, projections, alreadyQueued: id !== jobId };
    },
    async status(jobId) {
      let job = await deps.queue.getJob(jobId);
      if (!job) return null;
      const state = await job.getState();
      // The job may have finished between reading its hash and its state: read it again so a
      // finished state always comes with its result (or failure reason).
      if (state === 'completed' || state === 'failed') job = (await deps.queue.getJob(jobId)) ?? job;
      const progress = typeof job.progress === 'object' && job.progress ? (job.progress as unknown as ReplayProgress) : null;
      return {
        jobId,
        state: ACTIVE_STATES.has(state) || state === 'completed' || state === 'failed' ? state : 'unknown',
        projections: (job.data as ReplayJobData).projections,
        progress,
        result: job.returnvalue ?? null,
        failedReason: job.failedReason || null,
        createdAt: job.timestamp ? new Date(job.timestamp).toISOString() : null,
        finishedAt: job.finishedOn ? new Date(job.finishedOn).toISOString() : null,
      };
    },
    async dryRun(request) {
      const problems = validate(request);
      if (problems.length) throw new RangeError(problems.join('; '));
      const chosen = pick(request);
      const { sql } = await import('slonik');
      const { z } = await import('zod');
      const out: DryRunReport['projections'] = [];
      let rate = DEFAULT_RATE;
      for (const p of chosen) {
        const events = await deps.pool.oneFirst(sql.type(z.object({ n: z.number() }))`
          SELECT count(*) AS n FROM event_store WHERE event_type = ANY(${sql.array([...p.handledTypes], 'text')}) AND global_position >= ${request.from ?? 0}`);
        const rows = await deps.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*) AS n FROM ${sql.identifier([p.table])}`);
        const last = await deps.pool.maybeOne(sql.type(z.object({ d: z.number().nullable(), e: z.number().nullable() }))`
          SELECT last_rebuild_duration_ms AS d, last_rebuild_events AS e FROM event_projections WHERE name = ${p.name}`);
        if (last?.d && last.e && last.d > 0) rate = Math.max(100, (last.e / last.d) * 1000);
        out.push({ name: p.name, events, table: p.table, rows });
      }
      const events = out.reduce((s, p) => s + p.events, 0);
      return { projections: out, events, estimatedSeconds: Math.round((events / rate) * 10) / 10 };
    },
  };
}
