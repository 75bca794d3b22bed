import { z } from 'zod';
import type { Container } from '../../app/container.js';
import { eventRegistry, IsoDateTimeSchema } from '../../domain/index.js';
import { EventMetadataSchema, ExpectedVersionSchema } from '../../eventStore/types.js';
import type { DispatchInput } from '../../eventBus/EventBus.js';
import { contextFromHeaders, SpanKind, withSpan } from '../../tracing.js';
import { invalidRequest, issuesOf } from '../errors.js';
import { defineRoute } from '../route.js';

export const MAX_BATCH = 1000;

const envelopeFields = {
  id: z.string().uuid().optional().describe('Event id; send one to make retries idempotent'),
  metadata: EventMetadataSchema.optional(),
  occurredAt: IsoDateTimeSchema.optional().describe('When the producer observed it; defaults to the time of storing'),
  expectedVersion: ExpectedVersionSchema.optional().describe('Optimistic concurrency for the event’s stream: a version, "no_stream", "stream_exists" or "any"'),
};

/** The envelope; the payload is checked against the event type's domain schema by the event bus (422). */
export const IngestEventSchema = z
  .object({ ...envelopeFields, type: z.string().min(1).max(128), payload: z.record(z.string(), z.unknown()) })
  .strict();
export const IngestBatchSchema = z.object({ events: z.array(IngestEventSchema).min(1).max(MAX_BATCH) }).strict();

// For the document only: the same domain schemas the bus validates with, one variant per event type.
const typedEvent = z.union(
  eventRegistry.types.map((t) => z.object({ ...envelopeFields, type: z.literal(t), payload: eventRegistry.definition(t).schema }).strict()) as unknown as [z.ZodTypeAny, z.ZodTypeAny, ...z.ZodTypeAny[]],
);
const IngestBodyDoc = z.union([typedEvent, z.object({ events: z.array(typedEvent).min(1).max(MAX_BATCH) }).strict()]);

export const IngestResultSchema = z.object({ id: z.string().uuid(), streamId: z.string(), version: z.number().int(), position: z.number().int() });

/** One event or `{ events: [...] }`, told apart by the `events` key so errors name the real field. */
export function parseIngestBody(body: unknown): { batch: boolean; events: DispatchInput[] } {
  const batch = !!body && typeof body === 'object' && !Array.isArray(body) && 'events' in body;
  const r = (batch ? IngestBatchSchema : IngestEventSchema).safeParse(body);
  if (!r.success) throw invalidRequest(issuesOf(r.error));
  const events = 'events' in r.data ? r.data.events : [r.data as z.infer<typeof IngestEventSchema>];
  return { batch, events: events as DispatchInput[] };
}

export function ingestRoutes(c: Container) {
  return [
    defineRoute({
      method: 'POST',
      url: '/api/events',
      operationId: 'ingestEvents',
      summary: 'Append one event, or a batch of up to 1,000 atomically',
      description:
        'Body: one event `{ id?, type, payload, metadata?, occurredAt?, expectedVersion? }` or `{ events: [...] }`. A batch is stored all or nothing. ' +
        'Resending the same events with the same ids returns the original result (header `Idempotent-Replay: true`). ' +
        '400 = envelope shape, 422 = payload rejected by the event type’s schema, 409 = version or idempotency conflict; nothing is stored on any error. ' +
        'The one route a producer token (INGEST_TOKENS) may call; its events without `metadata.source` get the producer’s name there.',
      tags: ['ingest'],
      access: 'write',
      producers: true,
      bodyDoc: IngestBodyDoc,
      responses: {
        201: { description: 'Stored (single event: the result; batch: `{ events: [...] }` in request order)', data: z.union([IngestResultSchema, z.object({ events: z.array(IngestResultSchema) })]) },
      },
      errors: [400, 409, 413, 415, 422],
      async handler({ req }) {
        const { batch, events } = parseIngestBody(req.body);
        // A producer's events say where they came from unless the producer said so itself.
        const actor = req.actor;
        if (actor?.kind === 'producer') for (const e of events) if (e.metadata?.source === undefined) e.metadata = { ...e.metadata, source: actor.name };
        // The request's `traceparent` header is honoured (a new root without it): its trace is the events' trace.
        const results = await withSpan('POST /api/events', { kind: SpanKind.SERVER, parent: contextFromHeaders(req.headers), attributes: { 'http.request.method': 'POST', 'http.route': '/api/events', 'hdt.events': events.length } }, () => c.bus.dispatchMany(events));
        const view = results.map((r) => ({ id: r.id, streamId: r.streamId, version: r.version, position: r.position }));
        const replay = results.every((r) => r.alreadyStored);
        return { status: 201, data: batch ? { events: view } : view[0], headers: replay ? { 'idempotent-replay': 'true' } : undefined };
      },
    }),
  ];
}
