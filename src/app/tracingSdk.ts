import { diag, DiagLogLevel, type DiagLogger } from '@opentelemetry/api';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-node';
import type { Logger } from 'pino';
import { setTracingEnabled } from '../tracing.js';

export interface Tracing {
  /** Flushes the spans still buffered and stops exporting (run it last on SIGTERM). */
  shutdown(): Promise<void>;
}

/**
 * Tracing is on when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, or
 * OTEL_TRACES_EXPORTER names an exporter other than `none` (only `otlp` is built in: OTLP over HTTP).
 * OTEL_SDK_DISABLED=true turns it off whatever else is set.
 */
export function tracingWanted(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return false;
  const exporter = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase();
  if (exporter === 'none') return false;
  return !!(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || exporter);
}

/**
 * Registers the global tracer provider (AsyncLocalStorage context, W3C trace-context propagation) and
 * turns the hot-path helpers of `src/tracing.ts` on. Processes call `startTracingFromEnv`; a test
 * passes its own processors (an in-memory exporter).
 */
export async function startTracing(spanProcessors: SpanProcessor[], logger?: Logger): Promise<Tracing> {
  // The SDK is loaded only when tracing is on: a process without it never imports more than the API.
  const [{ defaultResource, detectResources, envDetector, hostDetector, processDetector }, { NodeTracerProvider }] = await Promise.all([
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-trace-node'),
  ]);
  if (logger) diag.setLogger(pinoDiag(logger), DiagLogLevel.WARN);
  const resource = defaultResource().merge(detectResources({ detectors: [envDetector, processDetector, hostDetector] }));
  const provider = new NodeTracerProvider({ resource, spanProcessors });
  provider.register();
  setTracingEnabled(true);
  return {
    async shutdown() {
      setTracingEnabled(false);
      await provider.shutdown().catch((e: Error) => logger?.warn({ err: e.message }, 'flushing spans at shutdown failed'));
    },
  };
}

/** Processes: OTLP over HTTP with a batch processor when the OTEL_* variables ask for it; null (no cost) otherwise. */
export async function startTracingFromEnv(logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<Tracing | null> {
  if (!tracingWanted(env)) return null;
  const exporter = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase();
  if (exporter && exporter !== 'otlp') logger.warn({ OTEL_TRACES_EXPORTER: exporter }, 'only the otlp (HTTP) trace exporter is built in; using it');
  const [{ OTLPTraceExporter }, { BatchSpanProcessor }] = await Promise.all([import('@opentelemetry/exporter-trace-otlp-http'), import('@opentelemetry/sdk-trace-node')]);
  const tracing = await startTracing([new BatchSpanProcessor(new OTLPTraceExporter())], logger);
  logger.info({ service: env.OTEL_SERVICE_NAME ?? 'unknown_service:node' }, 'tracing on: spans exported over OTLP/HTTP');
  return tracing;
}

function pinoDiag(logger: Logger): DiagLogger {
  const log = (level: 'error' | 'warn' | 'info' | 'debug') => (message: string, ...args: unknown[]) => logger[level]({ otel: args.length ? args.map(String) : undefined }, `otel: ${message}`);
  return { error: log('error'), warn: log('warn'), info: log('info'), debug: log('debug'), verbose: log('debug') };
}
