import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Container } from '../app/container.js';
import { ConfigError } from '../config.js';
import { owedSummary } from '../consumers/owedWork.js';
import { errorSummary } from '../logger.js';
import { createReplayService, type ReplayApi } from '../replay/ReplayService.js';
import type { AuthSettings } from './auth.js';
import { BULL_BOARD_PATH, mountBullBoard } from './bullBoard.js';
import { DASHBOARD_PATH, mountDashboard } from './dashboard/mount.js';
import { HttpError, toErrorResponse } from './errors.js';
import { useStrictJsonParser } from './jsonBody.js';
import { startLagHistory } from './lagHistory.js';
import { LiveTail } from './liveTail.js';
import { mountOpenApiUi } from './openapiUi.js';
import { buildOpenApi } from './openapi.js';
import type { RouteDef } from './route.js';
import { mountRoutes } from './route.js';
import { dashboardRoutes } from './routes/dashboard.js';
import { ingestRoutes } from './routes/ingest.js';
import { consoleRoutes } from './routes/console.js';
import { monitoringRoutes } from './routes/monitoring.js';
import { operationsRoutes } from './routes/operations.js';
import { systemRoutes } from './routes/system.js';

export interface ServerOptions {
  /** Defaults to the replay service over the container's replay queue. */
  replay?: ReplayApi;
  /** How often the dashboard's lag history samples owed work (default 10 s). */
  lagSampleMs?: number;
}

const VERSION = (() => {
  const file = ['../../package.json', '../../../package.json'].map((rel) => fileURLToPath(new URL(rel, import.meta.url))).find((f) => existsSync(f));
  try {
    return file ? (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version ?? '0.0.0' : '0.0.0';
  } catch {
    return '0.0.0';
  }
})();

/**
 * Refuses an unauthenticated production server; elsewhere a missing token only warns, because a
 * developer's laptop (bound to 127.0.0.1 by default) is where running without one is reasonable.
 */
export function authSettings(c: Container): AuthSettings {
  const { API_TOKEN, NODE_ENV, PUBLIC_READ } = c.config;
  if (!API_TOKEN) {
    if (NODE_ENV === 'production') throw new ConfigError(['API_TOKEN: required when NODE_ENV=production (at least 16 characters); the web server will not start without it']);
    c.logger.warn(
      { nodeEnv: NODE_ENV },
      '!!! API_TOKEN is not set: POST endpoints, bull-board and every read are OPEN to anyone who can reach this port. Set API_TOKEN (16+ characters) before exposing the server. !!!',
    );
  }
  return { token: API_TOKEN, publicRead: PUBLIC_READ, producers: c.config.INGEST_TOKENS ?? [] };
}

/** The web process's HTTP server with every route, not yet listening (tests may `inject` or `listen`). */
export async function buildServer(c: Container, options: ServerOptions = {}): Promise<FastifyInstance> {
  const auth = authSettings(c);
  const replay = options.replay ?? createReplayService({ pool: c.pool, queue: c.queues.replay, projections: c.projections, defaultChunk: c.config.REPLAY_CHUNK_SIZE });
  const app = Fastify({
    // pino's Logger and fastify's FastifyBaseLogger differ only in typing details.
    loggerInstance: c.logger.child({ component: 'http' }) as unknown as FastifyBaseLogger,
    bodyLimit: c.config.HTTP_BODY_LIMIT_BYTES,
    // Long enough that an over-long stream id reaches validation and gets a 400 naming the field, not a 404.
    routerOptions: { maxParamLength: 12_000 },
    // Fastify's own per-request lines include the raw URL; ours (onResponse below) log the route pattern only.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
  });
  // Only JSON bodies: a text/plain POST gets 415 instead of being read as a JSON string.
  app.removeContentTypeParser('text/plain');
  useStrictJsonParser(app);

  // Requests answered 503 because Postgres or Redis is down: the monitor logs the outage at a bounded
  // rate, so neither the error nor the response line is written once per request.
  const unavailable = new WeakSet<object>();
  app.setErrorHandler((error, req, reply) => {
    if (c.faults.report(error, 'request')) {
      unavailable.add(req);
      void reply
        .code(503)
        .header('retry-after', '5')
        .type('application/json; charset=utf-8')
        .send({ success: false, error: { code: 'service_unavailable', message: 'a backing service (PostgreSQL or Redis) is unavailable; retry later, with the same event ids (re-sending stored events is idempotent)' } });
      return;
    }
    const { status, body, headers, internal } = toErrorResponse(error);
    // The error's class, codes and frames only: a driver's message can quote the request body.
    if (internal) req.log.error({ error: errorSummary(error), method: req.method, url: req.routeOptions.url }, 'request failed');
    else req.log.debug({ status, code: body.error.code }, 'request refused');
    if (headers) void reply.headers(headers);
    void reply.code(status).type('application/json; charset=utf-8').send(body);
  });
  app.setNotFoundHandler((req) => {
    throw new HttpError(404, 'not_found', `no route ${req.method} ${req.url.split('?')[0]!.slice(0, 200)}`);
  });
  // Method, route pattern and status only: no headers, no query string, so no credentials in logs.
  app.addHook('onResponse', async (req, reply) => {
    const level = unavailable.has(req) ? 'debug' : reply.statusCode >= 500 ? 'error' : reply.statusCode >= 400 ? 'info' : 'debug';
    req.log[level]({ method: req.method, route: req.routeOptions.url ?? 'unmatched', status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });

  let doc: object | null = null;
  const routes: RouteDef[] = [];
  routes.push(...systemRoutes(c, () => (doc ??= buildOpenApi(routes, { version: VERSION, bodyLimitBytes: c.config.HTTP_BODY_LIMIT_BYTES }))));
  // Owed work per consumer over the last hour, for the dashboard's lag chart.
  const lag = startLagHistory({
    sample: async () => Object.fromEntries((await owedSummary(c.pool)).map((o) => [o.consumer, o.events])),
    onError: (error) => {
      if (!c.faults.report(error, 'lag sample')) c.logger.warn({ error: errorSummary(error) }, 'dashboard lag sample failed');
    },
    intervalMs: options.lagSampleMs,
  });
  app.addHook('onClose', async () => lag.stop());
  const tail = new LiveTail(c.pool, c.upcast, c.logger.child({ component: 'live-stream' }), {
    pollMs: c.config.STREAM_POLL_MS,
    heartbeatMs: c.config.STREAM_HEARTBEAT_MS,
    bufferBytes: c.config.STREAM_CLIENT_BUFFER_BYTES,
  });
  // Open event streams would hold the server's close until the grace period ends.
  app.addHook('preClose', async () => tail.close());
  routes.push(...ingestRoutes(c), ...monitoringRoutes(c, replay), ...operationsRoutes(c, replay), ...consoleRoutes(c, tail), ...dashboardRoutes(c, lag));
  mountRoutes(app, routes, auth);
  await mountOpenApiUi(app, (doc ??= buildOpenApi(routes, { version: VERSION, bodyLimitBytes: c.config.HTTP_BODY_LIMIT_BYTES })));
  // The shared queues, the replay queue and each known consumer's own queue (retries, hand-overs, redeliveries).
  await mountBullBoard(app, [...Object.values(c.queues), ...c.routes.map((r) => c.consumerQueues.own(r.name))], auth);
  await mountDashboard(app, auth);
  app.get('/', async () => ({ success: true, data: { name: 'hd-tickets-events', version: VERSION, docs: '/api/docs', queues: BULL_BOARD_PATH, dashboard: DASHBOARD_PATH } }));
  return app;
}

export interface WebServer {
  app: FastifyInstance;
  url: string;
  /** Stops accepting connections and waits for in-flight requests (bounded by SHUTDOWN_GRACE_MS). */
  close(): Promise<void>;
}

export async function startWebServer(c: Container, options: ServerOptions & { port?: number; host?: string } = {}): Promise<WebServer> {
  const app = await buildServer(c, options);
  const address = await app.listen({ port: options.port ?? c.config.PORT, host: options.host ?? c.config.HOST });
  c.logger.info({ url: address, auth: c.config.API_TOKEN ? 'token' : 'none', publicRead: c.config.PUBLIC_READ, bodyLimit: c.config.HTTP_BODY_LIMIT_BYTES }, 'web server listening');
  let closing: Promise<void> | null = null;
  return {
    app,
    url: address,
    close: () =>
      (closing ??= Promise.race([
        app.close(),
        new Promise<void>((resolve) => setTimeout(resolve, c.config.SHUTDOWN_GRACE_MS).unref()),
      ]).then(() => undefined)),
  };
}
