import { createHash } from 'node:crypto';
import type { JobsOptions } from 'bullmq';

/** A consumer of events: one handler (side effects) or one projection (read model). */
export interface ConsumerRoute {
  name: string;
  kind: ConsumerKind;
  version: number;
  handledTypes: readonly string[];
  handles(type: string): boolean;
  attempts?: number;
  backoffMs?: number;
}
export type ConsumerKind = 'handler' | 'projection';

/**
 * Every job of the pipeline is a batch: events (handlers) or streams (projections) for one or more
 * consumers. A published batch becomes one job on the shared `handlers` queue for all its handlers
 * and one on `projections` for all its projections; a consumer's own job (retry, hand-over,
 * redelivery, work a worker does not run) is the same shape with one consumer, on that consumer's
 * own queue, which only workers running it consume. Jobs carry ids, never payloads.
 */
export interface HandlerJobData {
  consumers: string[];
  eventIds: string[];
  /** The owed-work key (`consumer_owed.job_key`) this job settles; absent for operator retries. */
  owed?: string;
  /** Set when an operator retried recorded failures (one id, or a bulk retry's ids); success resolves them. */
  retryOf?: number | number[];
  /** Attempts already spent by the job this one was handed over from. */
  attemptOffset?: number;
}
export interface ProjectionJobData {
  /** Per projection, the streams it should catch up. */
  streams: Record<string, string[]>;
  owed?: string;
  retryOf?: number | number[];
  attemptOffset?: number;
}
export type ConsumerJobData = HandlerJobData | ProjectionJobData;
export const BATCH_JOB_NAME = 'batch';

export const SHARED_QUEUE = { handler: 'handlers', projection: 'projections' } as const;

/** The queue only workers running this consumer consume. */
export function ownQueueName(consumer: string): string {
  return `consumer-${consumer}`;
}

/** A job id derived from its parts: no ':' and never all digits (BullMQ's rules), bounded length. */
export function derivedJobId(prefix: string, parts: readonly (string | number | undefined)[]): string {
  const h = createHash('sha1');
  for (const p of parts) h.update(String(p ?? '')).update('\n');
  return `${prefix.replace(/:/g, '_')}.${h.digest('hex').slice(0, 24)}`;
}

/** A fresh id for a bulk retry's job (one per consumer and chunk of failures). */
export function bulkRetryJobId(consumer: string, firstFailureId: number, count: number): string {
  return `${consumer}.bulk-retry-${firstFailureId}x${count}-${Date.now().toString(36)}`;
}

/** A fresh id for operator retries: the old failed job still holds its id. */
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
 * Options of a consumer's own job taking over after its first attempt failed inside a shared job: the
 * remaining attempts, the first retry's delay, and the base doubled, so the delays continue the same
 * exponential series (B, 2B, 4B, ... with BullMQ's jitter) as if the shared attempt had been its own.
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

export function isHandlerJob(data: ConsumerJobData): data is HandlerJobData {
  return Array.isArray((data as HandlerJobData).eventIds);
}

/** The consumers a job names. */
export function consumersOf(data: ConsumerJobData): string[] {
  return isHandlerJob(data) ? data.consumers : Object.keys(data.streams);
}
