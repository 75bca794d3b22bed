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
  enqueue(request: ReplayRequest): Promise<{ jobId: string; projections: string[] }>;
  status(jobId: string): Promise<ReplayJobStatus | null>;
  dryRun(request: ReplayRequest): Promise<DryRunReport>;
}

export type ReplayDeps = { pool: DatabasePool; queue: Queue; projections: readonly Projection<any>[]; defaultChunk: number };
