import { z } from 'zod';
import type { Container } from '../../app/container.js';
import { AuditEntrySchema, auditEntries, OperatorActions } from '../../app/operatorActions.js';
import { failedEvent, FailedEventSchema, FailureFilterSchema } from '../../consumers/bulkFailures.js';
import { FailureStatusSchema } from '../../consumers/failures.js';
import { StreamIdSchema } from '../../eventStore/types.js';
import { actorName } from '../auth.js';
import { HttpError, invalidRequest } from '../errors.js';
import type { LiveTail } from '../liveTail.js';
import { defineRoute } from '../route.js';
import { FailureParams } from './operations.js';

const BulkRetryBody = z.object({ filter: FailureFilterSchema, dryRun: z.boolean().optional().describe('Only count what would be retried') }).strict();
const BulkResolveBody = z
  .object({
    filter: FailureFilterSchema,
    dryRun: z.boolean().optional().describe('Only count what would be resolved'),
    note: z.string().trim().min(1).max(2000).optional().describe('Why no processing is needed (required unless dryRun)'),
  })
  .strict();
const ByConsumer = z.record(z.number().int()).describe('Matched failures per consumer');

const AuditQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(500).default(50).describe('1–500, default 50'),
    before: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional().describe('Cursor: the id of the last entry of the previous page'),
  })
  .strict();

const StreamQuery = z
  .object({
    type: z
      .string()
      .min(1)
      .max(2000)
      .regex(/^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$/, 'a comma-separated list of event types')
      .optional()
      .describe('Only these event types (comma-separated)'),
    stream: StreamIdSchema.optional().describe('Only this stream'),
    lastEventId: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional().describe('Resume after this global position (as the Last-Event-ID header does)'),
  })
  .strict();

export const FailureDetailSchema = z.object({
  id: z.number().int(),
  consumer: z.string(),
  consumerKind: z.enum(['handler', 'projection']),
  status: FailureStatusSchema,
  attempts: z.number().int(),
  retryCount: z.number().int(),
  error: z.string(),
  stack: z.string().nullable(),
  jobId: z.string().nullable(),
  resolutionNote: z.string().nullable(),
  skipped: z.boolean(),
  firstFailedAt: z.string(),
  lastFailedAt: z.string(),
  resolvedAt: z.string().nullable(),
  event: FailedEventSchema.nullable().describe('The stored event (null if it is no longer stored)'),
});

/** The operator console's routes: one failure, bulk retry/resolve, the audit log and the live stream. */
export function consoleRoutes(c: Container, tail: LiveTail) {
  const actions = new OperatorActions(c);
  return [
    defineRoute({
      method: 'GET',
      url: '/api/events/failures/:id',
      operationId: 'getFailure',
      summary: 'One failure with its event (payload, metadata), error, stack and attempts',
      tags: ['monitoring'],
      access: 'read',
      params: FailureParams,
      responses: { 200: { description: 'The failure', data: FailureDetailSchema } },
      errors: [400, 404],
      async handler({ params }) {
        const f = await c.failures.get(params.id);
        return {
          data: {
            id: f.id,
            consumer: f.consumer,
            consumerKind: f.consumer_kind,
            status: f.status,
            attempts: f.attempts,
            retryCount: f.retry_count,
            error: f.error_message,
            stack: f.error_stack,
            jobId: f.job_id,
            resolutionNote: f.resolution_note,
            skipped: f.skipped,
            firstFailedAt: f.first_failed_at,
            lastFailedAt: f.last_failed_at,
            resolvedAt: f.resolved_at,
            event: await failedEvent(c.pool, f.event_id),
          },
        };
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/api/events/failures/retry',
      operationId: 'retryFailures',
      summary: 'Retry every open failure the filter matches (dryRun: only count them); audited',
      description: 'One job per consumer per 200 failures, on the same path as a one-id retry: each failure is resolved when its job succeeds.',
      tags: ['operations'],
      access: 'write',
      body: BulkRetryBody,
      responses: {
        200: {
          description: 'What was (or, with dryRun, would be) retried',
          data: z.object({ dryRun: z.boolean(), matched: z.number().int(), byConsumer: ByConsumer, retried: z.number().int(), jobs: z.number().int(), auditId: z.number().int().nullable() }),
        },
      },
      errors: [400],
      handler: async ({ body, req }) => ({ data: await actions.bulkRetry(body.filter, { actor: actorName(req), dryRun: body.dryRun }) }),
    }),
    defineRoute({
      method: 'POST',
      url: '/api/events/failures/resolve',
      operationId: 'resolveFailures',
      summary: 'Resolve (skip) every open failure the filter matches, with a note (dryRun: only count them); audited',
      tags: ['operations'],
      access: 'write',
      body: BulkResolveBody,
      responses: {
        200: {
          description: 'What was (or, with dryRun, would be) resolved',
          data: z.object({ dryRun: z.boolean(), matched: z.number().int(), byConsumer: ByConsumer, resolved: z.number().int(), auditId: z.number().int().nullable() }),
        },
      },
      errors: [400, 422],
      async handler({ body, req }) {
        if (!body.dryRun && !body.note) throw invalidRequest([{ field: 'note', message: 'required unless dryRun is true: say why these failures need no processing' }], 422, 'note_required');
        return { data: await actions.bulkResolve(body.filter, { actor: actorName(req), dryRun: body.dryRun, note: body.note }) };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/events/audit',
      operationId: 'getAudit',
      summary: 'Operator actions (retry, resolve, rebuild; single and bulk), newest first',
      tags: ['operations'],
      access: 'read',
      query: AuditQuery,
      responses: { 200: { description: 'A page of audit entries', data: z.object({ entries: z.array(AuditEntrySchema), nextBefore: z.number().int().nullable() }) } },
      errors: [400],
      async handler({ query }) {
        const rows = await auditEntries(c.pool, { limit: query.limit + 1, before: query.before });
        const entries = rows.slice(0, query.limit);
        return { data: { entries, nextBefore: rows.length > query.limit ? entries[entries.length - 1]!.id : null } };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/events/stream',
      operationId: 'streamEvents',
      summary: 'Live tail of new events (Server-Sent Events) in the gap-free global order',
      description:
        'Each message: `id: <globalPosition>`, `event: event`, `data: {id, streamId, type, version, globalPosition, occurredAt, recordedAt, payload, metadata}`. ' +
        'Reconnect with the `Last-Event-ID` header (or `lastEventId`) to resume without loss or duplicates. `: heartbeat` comments every STREAM_HEARTBEAT_MS (15 s); ' +
        'a client whose unread buffer passes STREAM_CLIENT_BUFFER_BYTES is disconnected.',
      tags: ['monitoring'],
      access: 'read',
      query: StreamQuery,
      responses: { 200: { description: 'An event stream', raw: { contentType: 'text/event-stream' } } },
      errors: [400],
      async handler({ query, req, reply }) {
        const header = req.headers['last-event-id'];
        let resumeFrom = query.lastEventId;
        if (typeof header === 'string' && header.trim() !== '') {
          if (!/^\d{1,16}$/.test(header.trim()) || Number(header) < 1) throw invalidRequest([{ field: 'Last-Event-ID', message: 'must be the id (a global position) of an event this stream sent' }]);
          resumeFrom = Number(header.trim());
        }
        const resumeAfter = resumeFrom === undefined ? null : await tail.resumePoint(resumeFrom);
        if (resumeFrom !== undefined && resumeAfter === null) {
          throw new HttpError(400, 'invalid_request', `Last-Event-ID: no event at global position ${resumeFrom}`, { field: 'Last-Event-ID' });
        }
        reply.hijack();
        await tail.attach(reply.raw, { types: query.type?.split(','), stream: query.stream }, resumeAfter);
        return { hijacked: true };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/docs/ui',
      operationId: 'openApiUi',
      summary: 'This API document rendered for people (Swagger UI, served offline)',
      tags: ['system'],
      access: 'public',
      external: true,
      responses: { 200: { description: 'An HTML page', raw: { contentType: 'text/html' } } },
      errors: [],
      handler: async () => ({}),
    }),
  ];
}
