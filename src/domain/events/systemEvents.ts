import { z } from 'zod';
import { defineEvent } from '../defineEvent.js';
import { oneOf } from '../oneOf.js';
import { IdSchema } from '../valueObjects/Id.js';
import { IsoDateTimeSchema } from '../valueObjects/IsoDateTime.js';
import { PlatformSourceSchema } from '../valueObjects/PlatformSource.js';

const scrapingJobStream = (p: { jobId: string }) => `scraping_job-${p.jobId}`;

export const ScrapingJobStartedPayloadSchema = z
  .object({
    jobId: IdSchema,
    platform: PlatformSourceSchema,
    /** What was scraped: a search URL or query; free text, hence only bounded. */
    target: z.string().min(1).max(500),
    startedAt: IsoDateTimeSchema,
  })
  .strict();
export type ScrapingJobStartedPayload = z.infer<typeof ScrapingJobStartedPayloadSchema>;

export const ScrapingJobStarted = defineEvent({
  type: 'ScrapingJobStarted',
  schemaVersion: 1,
  streamType: 'scraping_job',
  streamId: scrapingJobStream,
  payload: ScrapingJobStartedPayloadSchema,
});

export const ScrapingJobCompletedPayloadSchema = z
  .object({
    jobId: IdSchema,
    platform: PlatformSourceSchema,
    success: z.boolean(),
    ticketsFound: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    durationMs: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    errorMessage: z.string().max(1000).optional(),
  })
  .strict();
export type ScrapingJobCompletedPayload = z.infer<typeof ScrapingJobCompletedPayloadSchema>;

export const ScrapingJobCompleted = defineEvent({
  type: 'ScrapingJobCompleted',
  schemaVersion: 1,
  streamType: 'scraping_job',
  streamId: scrapingJobStream,
  payload: ScrapingJobCompletedPayloadSchema,
});

export const PLATFORM_STATUSES = ['online', 'degraded', 'offline', 'rate_limited'] as const;
export const PlatformStatusSchema = oneOf('platform status', PLATFORM_STATUSES);
export type PlatformStatus = z.infer<typeof PlatformStatusSchema>;

export const PlatformStatusChangedPayloadSchema = z
  .object({
    platform: PlatformSourceSchema,
    oldStatus: PlatformStatusSchema,
    newStatus: PlatformStatusSchema,
    reason: z.string().max(500).optional(),
  })
  .strict();
export type PlatformStatusChangedPayload = z.infer<typeof PlatformStatusChangedPayloadSchema>;

export const PlatformStatusChanged = defineEvent({
  type: 'PlatformStatusChanged',
  schemaVersion: 1,
  streamType: 'platform',
  streamId: (p) => `platform-${p.platform}`,
  payload: PlatformStatusChangedPayloadSchema,
});

export const ERROR_SEVERITIES = ['warning', 'error', 'critical'] as const;
export const ErrorSeveritySchema = oneOf('severity', ERROR_SEVERITIES);
export type ErrorSeverity = z.infer<typeof ErrorSeveritySchema>;

/** Bounded in entry count too: context is caller-built and would otherwise be an unbounded blob. */
const MAX_CONTEXT_ENTRIES = 50;

export const ErrorContextSchema = z
  .record(z.string().max(100), z.union([z.string().max(2000), z.number().finite(), z.boolean(), z.null()]))
  .refine((c) => Object.keys(c).length <= MAX_CONTEXT_ENTRIES, `at most ${MAX_CONTEXT_ENTRIES} entries`);

export const ErrorOccurredPayloadSchema = z
  .object({
    errorId: IdSchema,
    component: IdSchema,
    severity: ErrorSeveritySchema,
    message: z.string().min(1).max(2000),
    context: ErrorContextSchema.optional(),
  })
  .strict();
export type ErrorOccurredPayload = z.infer<typeof ErrorOccurredPayloadSchema>;

export const ErrorOccurred = defineEvent({
  type: 'ErrorOccurred',
  schemaVersion: 1,
  streamType: 'system',
  streamId: (p) => `system-${p.component}`,
  payload: ErrorOccurredPayloadSchema,
});
