import { z } from 'zod';

// Bounded so a hostile producer cannot stuff megabytes into every event's envelope.
const metaValue = z.union([z.string().max(2000), z.number(), z.boolean(), z.null()]);

export const EventMetadataSchema = z
  .object({
    correlation_id: z.string().min(1).max(128).optional(),
    causation_id: z.string().min(1).max(128).optional(),
    source: z.string().min(1).max(128).optional(),
    actor: z.string().min(1).max(128).optional(),
    // W3C trace context of the dispatch that stored the event (README, Tracing); consumers continue that trace.
    traceparent: z.string().regex(/^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/, 'a W3C traceparent: version-traceid-spanid-flags in lower-case hex').optional(),
    tracestate: z.string().max(512).optional(),
  })
  .catchall(metaValue)
  .refine((m) => Object.keys(m).length <= 32, { message: 'at most 32 metadata keys' });
export type EventMetadata = z.infer<typeof EventMetadataSchema>;

export const StreamIdSchema = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:-]*$/, 'letters, digits and _ . : - only, starting with a letter or digit');

export const ExpectedVersionSchema = z.union([
  z.number().int().min(0).max(2 ** 31 - 1),
  z.enum(['no_stream', 'stream_exists', 'any']),
]);
export type ExpectedVersion = z.infer<typeof ExpectedVersionSchema>;

/** An event as a producer hands it to the store (already validated against its domain schema). */
export interface NewEvent {
  id?: string;
  type: string;
  schemaVersion?: number;
  payload: unknown;
  metadata?: EventMetadata;
  occurredAt?: string;
}

export const StoredEventRow = z.object({
  id: z.string().uuid(),
  stream_id: z.string(),
  stream_type: z.string(),
  version: z.number().int(),
  event_type: z.string(),
  schema_version: z.number().int(),
  payload: z.unknown(),
  metadata: z.record(z.unknown()),
  global_position: z.number().int(),
  transaction_id: z.string(),
  occurred_at: z.string(),
  recorded_at: z.string(),
});

export type StoredEventRowType = z.infer<typeof StoredEventRow>;

export interface StoredEvent {
  id: string;
  streamId: string;
  streamType: string;
  version: number;
  type: string;
  schemaVersion: number;
  payload: unknown;
  metadata: EventMetadata;
  globalPosition: number;
  transactionId: string;
  occurredAt: string;
  recordedAt: string;
}

export interface AppendResult {
  streamId: string;
  /** Stream version after the append. */
  nextExpectedVersion: number;
  events: { id: string; version: number; position: number; transactionId: string }[];
  /** True when every event id was already stored: the call was an idempotent retry and wrote nothing. */
  alreadyStored: boolean;
}

/** A position in the gap-free global order. The pair, never the position alone. */
export interface GlobalCheckpoint {
  transactionId: string;
  position: number;
}
export const START: GlobalCheckpoint = { transactionId: '0', position: 0 };

export const GlobalCheckpointSchema = z.object({
  transactionId: z.string().regex(/^\d{1,20}$/),
  position: z.number().int().min(0),
});

/** Rewrites an older stored payload shape into the current one on read. */
export type Upcaster = (type: string, schemaVersion: number, payload: unknown) => { schemaVersion: number; payload: unknown };

/** A stored row as the domain sees it, older payload shapes lifted to the current schema version. */
export function rowToEvent(r: z.infer<typeof StoredEventRow>, upcast: Upcaster): StoredEvent {
  const up = upcast(r.event_type, r.schema_version, r.payload);
  return {
    id: r.id,
    streamId: r.stream_id,
    streamType: r.stream_type,
    version: r.version,
    type: r.event_type,
    schemaVersion: up.schemaVersion,
    payload: up.payload,
    metadata: r.metadata as StoredEvent['metadata'],
    globalPosition: r.global_position,
    transactionId: r.transaction_id,
    occurredAt: r.occurred_at,
    recordedAt: r.recorded_at,
  };
}
