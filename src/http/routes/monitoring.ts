import { z } from 'zod';
import type { Container } from '../../app/container.js';
import { decodeCursor, listFailures } from '../../consumers/bulkFailures.js';
import { FailureRow, FailureStatusSchema } from '../../consumers/failures.js';
import { owedSummary } from '../../consumers/owedWork.js';
import { StreamIdSchema } from '../../eventStore/types.js';
import { projectionStatuses, ProjectionStatusSchema } from '../../projections/status.js';
import type { ReplayApi } from '../../replay/ReplayService.js';
import { HttpError, invalidRequest } from '../errors.js';
import { EventViewSchema, recentEvents, StreamInfoSchema, streamEvents } from '../queries/events.js';
import { overview, OverviewSchema } from '../queries/overview.js';
import { statistics, StatisticsSchema } from '../queries/statistics.js';
import { defineRoute } from '../route.js';

const MAX_POSITION = Number.MAX_SAFE_INTEGER;
const limit = (def: number, max: number) => z.coerce.number().int().min(1).max(max).default(def).describe(`1–${max}, default ${def}`);
const position = () => z.coerce.number().int().min(1).max(MAX_POSITION);

const MAX_WINDOW_MS = 31 * 24 * 3600 * 1000;
const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

export const StatisticsQuery = z
  .object({
    since: z
      .string()
      .max(64)
      .default('24h')
      .describe('An ISO 8601 date-time or a duration back from now: 15m, 6h, 7d (at most 31 days). Default 24h.'),
  })
  .strict();

/** `since` as a Date, refusing the future and windows longer than 31 days (they would scan too much). */
export function parseSince(raw: string, now = Date.now()): Date {
  const rel = /^(\d{1,6})([mhd])$/.exec(raw);
  const at = rel ? now - Number(rel[1]) * UNIT_MS[rel[2] as keyof typeof UNIT_MS] : /^\d{4}-\d\d-\d\dT/.test(raw) ? Date.parse(raw) : Number.NaN;
  if (!Number.isFinite(at)) throw invalidRequest([{ field: 'since', message: 'expected an ISO 8601 date-time or a duration like 15m, 6h, 7d' }]);
  if (at > now) throw invalidRequest([{ field: 'since', message: 'must not be in the future' }]);
  if (now - at > MAX_WINDOW_MS) throw invalidRequest([{ field: 'since', message: 'window longer than 31 days' }]);
  return new Date(at);
}

export const RecentQuery = z
  .object({
    limit: limit(50, 500),
    before: position().optional().describe('Cursor: `nextBefore` of the previous page'),
    type: z.string().min(1).max(128).optional(),
    stream: StreamIdSchema.optional(),
  })
  .strict();

export const StreamParams = z.object({ streamId: StreamIdSchema }).strict();
export const StreamQuery = z.object({ from: position().default(1).describe('First version to return (default 1)'), limit: limit(100, 1000) }).strict();

export const FailuresQuery = z
  .object({
    status: z.union([FailureStatusSchema, z.literal('all')]).default('open'),
    limit: limit(50, 500),
    cursor: z.string().min(1).max(200).optional().describe('Opaque: `nextCursor` of the previous page'),
    before: position().optional().describe('Cursor: `nextBefore` of the previous page (a failure id); `cursor` is preferred'),
    consumer: z.string().min(1).max(128).optional(),
    eventType: z.string().min(1).max(128).optional(),
    q: z.string().min(1).max(500).optional().describe('Substring of the error message (case-insensitive)'),
    since: z.string().datetime({ offset: true }).optional().describe('ISO 8601: last failed at or after'),
    until: z.string().datetime({ offset: true }).optional().describe('ISO 8601: last failed before'),
  })
  .strict()
  .refine((f) => !f.since || !f.until || Date.parse(f.since) < Date.parse(f.until), { message: 'must be later than since', path: ['until'] });

export const ReplayParams = z.object({ jobId: z.string().min(1).max(200) }).strict();
export const ReplayStatusSchema = z.object({
  jobId: z.string(),
  state: z.string(),
  projections: z.array(z.string()),
  progress: z
    .object({ phase: z.string(), projection: z.string().nullable(), done: z.number(), total: z.number(), eventsPerSecond: z.number(), etaSeconds: z.number().nullable() })
    .nullable(),
  result: z.unknown(),
  failedReason: z.string().nullable(),
  createdAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
});

export function monitoringRoutes(c: Container, replay: ReplayApi) {
  const tags = ['monitoring'];
  return [
    defineRoute({
      method: 'GET',
      url: '/api/events/overview',
      operationId: 'getOverview',
      summary: 'Totals, events today, event types, projections, open failures, outbox backlog, queue depths',
      tags,
      access: 'read',
      responses: { 200: { description: 'Overview', data: OverviewSchema } },
      errors: [],
      handler: async () => ({ data: await overview(c.pool, c.queues) }),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/events/statistics',
      operationId: 'getStatistics',
      summary: 'Counts per type, platform and hour over a window; processing rates; p50/p99 processing lag',
      tags,
      access: 'read',
      query: StatisticsQuery,
      responses: { 200: { description: 'Statistics', data: StatisticsSchema } },
      errors: [400],
      handler: async ({ query }) => ({ data: await statistics(c.pool, parseSince(query.since)) }),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/events/recent',
      operationId: 'getRecentEvents',
      summary: 'Newest events first, paginated with the `before` cursor',
      tags,
      access: 'read',
      query: RecentQuery,
      responses: { 200: { description: 'A page of events', data: z.object({ events: z.array(EventViewSchema), nextBefore: z.number().int().nullable() }) } },
      errors: [400],
      handler: async ({ query }) => ({ data: await recentEvents(c.pool, query, c.upcast) }),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/events/streams/:streamId',
      operationId: 'getStream',
      summary: 'A stream’s events in version order',
      tags,
      access: 'read',
      params: StreamParams,
      query: StreamQuery,
      responses: { 200: { description: 'The stream and a page of its events', data: z.object({ stream: StreamInfoSchema, events: z.array(EventViewSchema), nextFromVersion: z.number().int().nullable() }) } },
      errors: [400, 404],
      async handler({ params, query }) {
        const r = await streamEvents(c.pool, params.streamId, { fromVersion: query.from, limit: query.limit }, c.upcast);
        if (!r) throw new HttpError(404, 'stream_not_found', `no stream ${params.streamId}`);
        return { data: r };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/events/projections',
      operationId: 'getProjections',
      summary: 'Each projection: version, status, checkpoint, lag, rows, last rebuild',
      tags,
      access: 'read',
      responses: { 200: { description: 'Projection statuses', data: z.object({ projections: z.array(ProjectionStatusSchema) }) } },
      errors: [],
      handler: async () => ({ data: { projections: await projectionStatuses(c.pool, c.projections, await owedSummary(c.pool)) } }),
    }),
    defineRoute({
      method: 'GET',
      url: '/api/events/failures',
      operationId: 'getFailures',
      summary: 'Processing failures (open by default), newest first, filtered and paginated (`nextCursor`)',
      tags,
      access: 'read',
      query: FailuresQuery,
      responses: {
        200: {
          description: 'A page of failures; `total` counts every failure the filter matches',
          data: z.object({ failures: z.array(FailureRow), total: z.number().int(), nextCursor: z.string().nullable(), nextBefore: z.number().int().nullable() }),
        },
      },
      errors: [400],
      async handler({ query }) {
        const { status, limit: pageSize, cursor, before, ...filter } = query;
        const beforeId = cursor !== undefined ? decodeCursor(cursor) : before;
        if (beforeId === null) throw invalidRequest([{ field: 'cursor', message: 'not a cursor this server issued (pass `nextCursor` of the previous page as is)' }]);
        return { data: await listFailures(c.pool, filter, { status, limit: pageSize, beforeId }) };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/events/replays/:jobId',
      operationId: 'getReplay',
      summary: 'Progress of a replay (projection rebuild) job',
      tags: ['operations'],
      access: 'read',
      params: ReplayParams,
      responses: { 200: { description: 'Replay job status', data: ReplayStatusSchema } },
      errors: [400, 404],
      async handler({ params }) {
        const status = await replay.status(params.jobId);
        if (!status) throw new HttpError(404, 'replay_not_found', 'no replay job with that id');
        return { data: status };
      },
    }),
  ];
}
