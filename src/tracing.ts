import { context, createContextKey, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Link, type Span, type SpanContext } from '@opentelemetry/api';

/**
 * Tracing on the hot path: only `@opentelemetry/api` is imported here. The SDK is started (and this
 * flag set) by `src/app/tracingSdk.ts` only when OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_TRACES_EXPORTER) is set; otherwise every helper below returns after one boolean check: no
 * spans, no link arrays, nothing serialised, nothing added to event metadata.
 *
 * The trace of an event is the W3C `traceparent` (and `tracestate`) stored in its metadata when it was
 * dispatched. A job covers events of many traces, so a job span is a root of its own, LINKED (never
 * parented) to the traces of its events, at most MAX_LINKS of them; each consumer's run is recorded as
 * one span per distinct trace in the batch (at most MAX_TRACE_SPANS), a child of that trace.
 */
let enabled = false;

export const TRACER_NAME = 'hd-tickets-events';
/** Links on one job span at most (one per distinct trace of its events). */
export const MAX_LINKS = 128;
/** Per consumer run, spans in event traces at most (one per distinct trace); the rest are counted in an attribute. */
export const MAX_TRACE_SPANS = 128;

export function isTracingEnabled(): boolean {
  return enabled;
}

/** Set by the SDK set-up; tests and processes never call it otherwise. */
export function setTracingEnabled(on: boolean): void {
  enabled = on;
}

// The job (root) span a consumer run belongs to. Kept under its own key: inside a transaction the
// active span is the Postgres client's (slonik traces its own connections and queries).
const JOB_SPAN = createContextKey('hdt.job_span');

export function tracer() {
  return trace.getTracer(TRACER_NAME);
}

export { SpanKind };

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  /** Parent context; default the active one. */
  parent?: Context;
  /** A root span (a job: its events' traces are linked, not parented); consumer runs inside it link to it. */
  root?: boolean;
}

/** Runs `fn` in an active span (when tracing is on); the span ends with fn, marked as an error if it throws. */
export async function withSpan<T>(name: string, options: SpanOptions, fn: (span: Span | undefined) => Promise<T>): Promise<T> {
  if (!enabled) return fn(undefined);
  const parent = options.parent ?? context.active();
  return tracer().startActiveSpan(name, { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes, root: options.root }, parent, async (span) => {
    try {
      return options.root ? await context.with(context.active().setValue(JOB_SPAN, span), () => fn(span)) : await fn(span);
    } catch (error) {
      failSpan(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}

/** The context a request's W3C headers (`traceparent`, `tracestate`) carry; the active one without them. */
export function contextFromHeaders(headers: Record<string, unknown>): Context {
  if (!enabled || typeof headers.traceparent !== 'string') return context.active();
  return propagation.extract(ROOT_CONTEXT, headers);
}

/** `traceparent`/`tracestate` of the active span, for an event's metadata or an outgoing request; undefined when off. */
export function activeTraceHeaders(): { traceparent: string; tracestate?: string } | undefined {
  if (!enabled) return undefined;
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier.traceparent ? (carrier as { traceparent: string; tracestate?: string }) : undefined;
}

interface TracedEvent {
  id: string;
  metadata: Record<string, unknown>;
}

/** The context an event's metadata carries (its dispatch span), or undefined. */
export function contextOfEvent(e: TracedEvent): Context | undefined {
  if (!enabled) return undefined;
  const tp = e.metadata.traceparent;
  if (typeof tp !== 'string') return undefined;
  const carrier: Record<string, string> = { traceparent: tp };
  if (typeof e.metadata.tracestate === 'string') carrier.tracestate = e.metadata.tracestate;
  const ctx = propagation.extract(ROOT_CONTEXT, carrier);
  return trace.getSpanContext(ctx) ? ctx : undefined;
}

/** Runs `fn` with the event's trace context active (a webhook call then continues that trace). */
export function inEventTrace<T>(e: TracedEvent, fn: () => Promise<T>): Promise<T> {
  const ctx = enabled ? contextOfEvent(e) : undefined;
  return ctx ? context.with(ctx, fn) : fn();
}

/** Events grouped by their trace (traceparent), at most `cap` traces. */
function byTrace<E extends TracedEvent>(events: readonly E[], cap: number): { traces: Map<string, { ctx: Context; span: SpanContext; events: E[] }>; untraced: number; overflow: number } {
  const traces = new Map<string, { ctx: Context; span: SpanContext; events: E[] }>();
  let untraced = 0;
  let overflow = 0;
  for (const e of events) {
    const tp = e.metadata.traceparent;
    if (typeof tp !== 'string') {
      untraced++;
      continue;
    }
    const known = traces.get(tp);
    if (known) {
      known.events.push(e);
      continue;
    }
    if (traces.size >= cap) {
      overflow++;
      continue;
    }
    const ctx = contextOfEvent(e);
    const span = ctx && trace.getSpanContext(ctx);
    if (!ctx || !span) {
      untraced++;
      continue;
    }
    traces.set(tp, { ctx, span, events: [e] });
  }
  return { traces, untraced, overflow };
}

// Distinct traces already linked per job span, so several consumers of one job add each link once.
const linkedTraces = new WeakMap<Span, Set<string>>();

/** Links the span (a job) to the traces of these events: distinct traces only, MAX_LINKS at most. */
export function linkToEventTraces(span: Span | undefined, events: readonly TracedEvent[]): void {
  if (!enabled || !span || !span.isRecording()) return;
  let seen = linkedTraces.get(span);
  if (!seen) linkedTraces.set(span, (seen = new Set()));
  if (seen.size >= MAX_LINKS) return;
  const links: Link[] = [];
  for (const e of events) {
    if (seen.size >= MAX_LINKS) break;
    const tp = e.metadata.traceparent;
    if (typeof tp !== 'string' || seen.has(tp)) continue;
    const sc = trace.getSpanContext(contextOfEvent(e) ?? ROOT_CONTEXT);
    if (!sc) continue;
    seen.add(tp);
    links.push({ context: sc });
  }
  if (links.length) span.addLinks(links);
  if (seen.size >= MAX_LINKS) span.setAttribute('hdt.links_capped', true);
}

/**
 * Records one consumer's run over a batch as spans in its events' traces: one span per distinct
 * trace (MAX_TRACE_SPANS at most), a child of the event's dispatch span, timed from `startTime` to
 * now and linked to the active span (the job). The active span is linked back to those traces.
 */
export function recordConsumerRun(kind: 'handler' | 'projection', consumer: string, events: readonly TracedEvent[], startTime: number, failure?: { error: unknown; eventIds?: ReadonlySet<string> }): void {
  if (!enabled || events.length === 0) return;
  const job = context.active().getValue(JOB_SPAN) as Span | undefined;
  linkToEventTraces(job, events);
  const { traces, overflow } = byTrace(events, MAX_TRACE_SPANS);
  const links = job ? [{ context: job.spanContext() }] : undefined;
  for (const { ctx, events: evs } of traces.values()) {
    const span = tracer().startSpan(
      `${kind} ${consumer}`,
      {
        kind: SpanKind.CONSUMER,
        startTime,
        links,
        attributes: {
          'hdt.consumer': consumer,
          'hdt.consumer.kind': kind,
          'hdt.events': evs.length,
          'hdt.event_ids': evs.slice(0, 20).map((e) => e.id),
          'hdt.batch_events': events.length,
          ...(overflow ? { 'hdt.traces_not_spanned': overflow } : {}),
        },
      },
      ctx,
    );
    if (failure && (!failure.eventIds || evs.some((e) => failure.eventIds!.has(e.id)))) failSpan(span, failure.error);
    span.end();
  }
}

/** performance.timeOrigin-based epoch ms, the SDK's span time input. */
export function spanClock(): number {
  return enabled ? performance.timeOrigin + performance.now() : 0;
}

function failSpan(span: Span, error: unknown): void {
  const e = error instanceof Error ? error : new Error(String(error));
  span.recordException(e);
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
}
