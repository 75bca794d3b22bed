import type { Logger } from 'pino';
import { isInfrastructureError } from '../faults.js';
import { errorSummary } from '../logger.js';
import { eventsAppended } from '../metrics/metrics.js';
import { eventRegistry, EventValidationError } from '../domain/index.js';
import { ConcurrencyError, IdempotencyConflictError } from '../eventStore/errors.js';
import type { PostgresEventStore, StreamAppend } from '../eventStore/PostgresEventStore.js';
import { EventMetadataSchema, ExpectedVersionSchema, type EventMetadata, type ExpectedVersion } from '../eventStore/types.js';
import { activeTraceHeaders, SpanKind, withSpan } from '../tracing.js';
import type { OutboxEntry, Publisher } from './publisher.js';

export interface DispatchInput {
  id?: string;
  type: string;
  payload: unknown;
  metadata?: EventMetadata;
  occurredAt?: string;
  expectedVersion?: ExpectedVersion;
}

export interface DispatchResult {
  id: string;
  type: string;
  streamId: string;
  version: number;
  position: number;
  alreadyStored: boolean;
}

/**
 * The producers' entry point: validate with the event's zod schema, append (with outbox rows, one
 * transaction), then try to enqueue at once. Processing happens asynchronously in workers. If Redis is
 * down the call still succeeds: the event is stored and the outbox relay delivers it later.
 */
export class EventBus {
  constructor(
    private readonly store: PostgresEventStore,
    private readonly publisher: Publisher,
    private readonly logger: Logger,
  ) {}

  async dispatch(input: DispatchInput): Promise<DispatchResult> {
    return (await this.dispatchMany([input]))[0]!;
  }

  /** All stored or none (one transaction across streams), then enqueued. */
  async dispatchMany(inputs: readonly DispatchInput[]): Promise<DispatchResult[]> {
    // The dispatch span (a child of the request's, or a new root) is the trace every consumer of these events continues.
    return withSpan('dispatch', { kind: SpanKind.PRODUCER, attributes: { 'hdt.events': inputs.length } }, () => this.dispatchManyTraced(inputs));
  }

  private async dispatchManyTraced(inputs: readonly DispatchInput[]): Promise<DispatchResult[]> {
    const { appends, order } = this.prepare(inputs);
    const results = await this.append(appends);
    const out = order.map(({ append, index }) => {
      const r = results[append]!;
      const e = r.events[index]!;
      return { id: e.id, type: appends[append]!.events[index]!.type, streamId: r.streamId, version: e.version, position: e.position, alreadyStored: r.alreadyStored };
    });
    const fresh = out.filter((r) => !r.alreadyStored);
    countAppended(fresh);
    await this.publishNow(fresh);
    return out;
  }

  /** Returns as soon as the events are stored; enqueueing continues in the background. */
  async dispatchAsync(input: DispatchInput): Promise<DispatchResult> {
    return withSpan('dispatch', { kind: SpanKind.PRODUCER, attributes: { 'hdt.events': 1 } }, () => this.dispatchAsyncTraced(input));
  }

  private async dispatchAsyncTraced(input: DispatchInput): Promise<DispatchResult> {
    const { appends } = this.prepare([input]);
    const [r] = await this.append(appends);
    const e = r!.events[0]!;
    const result = { id: e.id, type: input.type, streamId: r!.streamId, version: e.version, position: e.position, alreadyStored: r!.alreadyStored };
    if (!result.alreadyStored) {
      countAppended([result]);
      void this.publishNow([result]);
    }
    return result;
  }

  /**
   * Retries the append on transient Postgres errors with exponential backoff. Validation and
   * concurrency errors are the caller's to handle and are not retried.
   */
  async dispatchWithRetry(input: DispatchInput, attempts = 3, baseDelayMs = 100): Promise<DispatchResult> {
    // A fixed id makes every retry idempotent even if an earlier attempt committed but its answer was lost.
    const withId = { ...input, id: input.id ?? crypto.randomUUID() };
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.dispatch(withId);
      } catch (error) {
        if (!isTransient(error) || attempt >= attempts) throw error;
        const delay = baseDelayMs * 2 ** (attempt - 1) * (0.8 + Math.random() * 0.4);
        this.logger.warn({ attempt, delay: Math.round(delay), error: errorSummary(error) }, 'append failed, retrying');
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  private append(appends: StreamAppend[]) {
    return withSpan('eventStore.append', { attributes: { 'hdt.streams': appends.length } }, () => this.store.appendMany(appends));
  }

  private prepare(inputs: readonly DispatchInput[]) {
    if (inputs.length === 0) throw new EventValidationError([{ field: 'events', message: 'at least one event is required' }]);
    // With tracing on, every event records the dispatch span's W3C trace context (README, Tracing).
    const traceHeaders = activeTraceHeaders();
    const appends: (StreamAppend & { expectedGiven: boolean })[] = [];
    const byStream = new Map<string, number>();
    const order: { append: number; index: number }[] = [];
    inputs.forEach((input, i) => {
      const at = inputs.length > 1 ? `events[${i}].` : '';
      const event = prefixErrors(at, () => eventRegistry.validate(input.type, input.payload));
      const metadata = input.metadata === undefined ? {} : parseField(`${at}metadata`, EventMetadataSchema, input.metadata);
      const expected = input.expectedVersion === undefined ? undefined : parseField(`${at}expectedVersion`, ExpectedVersionSchema, input.expectedVersion);
      const { streamId, streamType } = eventRegistry.streamOf(event);
      let a = byStream.get(streamId);
      if (a === undefined) {
        a = appends.length;
        byStream.set(streamId, a);
        appends.push({ streamId, streamType, events: [], expectedVersion: expected ?? 'any', expectedGiven: expected !== undefined });
      } else if (expected !== undefined) {
        throw new EventValidationError([{ field: `${at}expectedVersion`, message: `only the first event of stream ${streamId} in a batch may carry expectedVersion` }]);
      }
      const target = appends[a]!;
      order.push({ append: a, index: target.events.length });
      target.events.push({
        id: input.id,
        type: event.type,
        schemaVersion: eventRegistry.currentVersion(event.type),
        payload: event.payload,
        metadata: traceHeaders ? { ...metadata, ...traceHeaders } : metadata,
        occurredAt: input.occurredAt,
      });
    });
    return { appends, order };
  }

  /** Best effort: on any Redis trouble the outbox rows stay and the relay sends them later. */
  private async publishNow(results: readonly DispatchResult[]): Promise<void> {
    if (results.length === 0) return;
    const entries: OutboxEntry[] = results.map((r) => ({ position: r.position, eventId: r.id, streamId: r.streamId, eventType: r.type }));
    try {
      await withSpan('publish', { kind: SpanKind.PRODUCER, attributes: { 'hdt.events': entries.length } }, () => this.publisher.publish(entries));
    } catch (error) {
      this.logger.warn({ err: (error as Error).message, events: entries.length }, 'enqueue after append failed; the outbox relay will deliver these events');
      await this.publisher.wakeRelays().catch(() => {});
    }
  }
}

function countAppended(results: readonly DispatchResult[]): void {
  const byType = new Map<string, number>();
  for (const r of results) byType.set(r.type, (byType.get(r.type) ?? 0) + 1);
  for (const [type, n] of byType) eventsAppended.inc({ type }, n);
}

function parseField<T>(field: string, schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { path: (string | number)[]; message: string }[] } } }, value: unknown): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  throw new EventValidationError(r.error.issues.map((i) => ({ field: [field, ...i.path].join('.'), message: i.message })));
}

function prefixErrors<T>(prefix: string, fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (prefix && error instanceof EventValidationError) {
      throw new EventValidationError(error.issues.map((i) => ({ field: `${prefix}${i.field}`, message: i.message })));
    }
    throw error;
  }
}

/** An append worth retrying: an infrastructure fault (src/faults.ts), never a refusal of the input. */
export function isTransient(error: unknown): boolean {
  if (error instanceof EventValidationError || error instanceof ConcurrencyError || error instanceof IdempotencyConflictError) return false;
  return isInfrastructureError(error);
}
