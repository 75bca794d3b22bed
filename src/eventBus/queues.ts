import { createHash } from 'node:crypto';
import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';

export const QUEUE_NAMES = {
  handlers: 'handlers',
  projections: 'projections',
  replay: 'replay',
} as const;
export type QueueName = (typeof QUEUE_NAMES)[keyof typeof QUEUE_NAMES];

/** A consumer of events: one handler (side effects) or one projection (read model). */
export interface ConsumerRoute {
  name: string;
  kind: 'handler' | 'projection';
  handles(type: string): boolean;
  attempts?: number;
  backoffMs?: number;
}

/** Jobs carry ids, never payloads: workers read the events from Postgres. */
export interface HandlerJobData {
  consumer: string;
  eventIds: string[];
  /** Set when an operator retried a recorded failure; success resolves it. */
  retryOf?: number;
  /** Attempts already spent on these events by the batch job this one was handed over from. */
  attemptOffset?: number;
}
export interface ProjectionJobData {
  consumer: string;
  streams: string[];
  retryOf?: number;
  attemptOffset?: number;
}

/**
 * The job a published batch becomes on each queue: one for all handlers, one for all projections.
 * The worker loads the batch's events once and runs every listed consumer over them, each in its own
 * transaction; a consumer that fails is handed over to a job of its own (`HandlerJobData` /
 * `ProjectionJobData`) that carries on with that consumer's retry policy. One job per consumer per
 * batch was 8 BullMQ jobs and ~3.5 reads of each event.
 */
export interface HandlerBatchJobData {
  batch: true;
  consumers: string[];
  eventIds: string[];
}
export interface ProjectionBatchJobData {
  batch: true;
  /** Per projection, the streams of the batch it should catch up. */
  streams: Record<string, string[]>;
}
export const BATCH_JOB_NAME = 'batch';

export function isBatchJob<T extends object>(data: T | HandlerBatchJobData | ProjectionBatchJobData): data is HandlerBatchJobData | ProjectionBatchJobData {
  return (data as { batch?: unknown }).batch === true;
}

/**
 * Deterministic job ids: a re-sent job (pipeline retried, relay and producer racing) is absorbed by
 * BullMQ instead of running twice. Never contains ':' and is never all digits.
 */
export function batchJobId(consumer: string, keys: readonly string[]): string {
  if (keys.length === 1) return `${consumer}.${keys[0]!.replace(/:/g, '_')}`;
  const h = createHash('sha1');
  for (const k of keys) h.update(k).update('\n');
  return `${consumer}.b${keys.length}-${h.digest('hex').slice(0, 24)}`;
}

/** A fresh id for operator retries: the old failed job still holds the deterministic id. */
export function retryJobId(consumer: string, failureId: number): string {
  return `${consumer}.retry-${failureId}-${Date.now().toString(36)}`;
}

export interface RetryPolicy {
  attempts: number;
  backoffMs: number;
}

/** A consumer's own attempts/backoff, else the deployment's defaults (JOB_ATTEMPTS, JOB_BACKOFF_MS). */
export function policyOf(route: Pick<ConsumerRoute, 'attempts' | 'backoffMs'> | undefined, defaults: RetryPolicy): RetryPolicy {
  return { attempts: route?.attempts ?? defaults.attempts, backoffMs: route?.backoffMs ?? defaults.backoffMs };
}

export function jobOptions(policy: RetryPolicy): JobsOptions {
  return {
    attempts: policy.attempts,
    // Exponential backoff with 20 % jitter so a fleet retrying after an outage does not stampede.
    backoff: { type: 'exponential', delay: policy.backoffMs, jitter: 0.2 },
    removeOnComplete: { age: 3600, count: 5000 },
    removeOnFail: { age: 7 * 24 * 3600 },
  };
}

/**
 * Options of a consumer's own job taking over after its first attempt failed inside a batch job: the
 * remaining attempts, the first retry's delay, and the base doubled, so the delays continue the same
 * exponential series (B, 2B, 4B, ... with BullMQ's jitter) as if the batch attempt had been its own.
 */
export function handOverJobOptions(policy: RetryPolicy): JobsOptions {
  const base = jobOptions(policy);
  const jitter = 0.2;
  return {
    ...base,
    attempts: policy.attempts - 1,
    delay: Math.floor(Math.random() * policy.backoffMs * jitter + policy.backoffMs * (1 - jitter)),
    backoff: { type: 'exponential', delay: policy.backoffMs * 2, jitter },
  };
}

export function createQueue(name: QueueName, connection: ConnectionOptions, prefix: string): Queue {
  const queue = new Queue(name, { connection, prefix });
  // Without a listener BullMQ prints every connection error as a stack trace.
  queue.on('error', () => {});
  return queue;
}

export function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
