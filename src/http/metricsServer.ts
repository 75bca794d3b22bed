import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Container } from '../app/container.js';
import { EXIT, ExitError } from '../exitCodes.js';
import { ConfigError } from '../config.js';
import { registry } from '../metrics/metrics.js';
import { identify, presentedToken, requiresToken, type AuthSettings } from './auth.js';

export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/**
 * `/metrics` and `/health` of a worker or replay process on METRICS_PORT (0 = none: returns null).
 * It serves this process's own registry: the jobs it ran and failed, their durations, infrastructure
 * faults, replay runs, Node's process metrics. The fleet-wide gauges (owed work, projection lag, queue
 * depths, open failures) are not refreshed here: they are the same numbers from every process, read
 * from PostgreSQL and Redis, and the web process's /metrics already serves them; N copies would
 * multiply under sum() and cost every scrape a round of queries. `/metrics` takes the same
 * credentials as the web's (API_TOKEN unless PUBLIC_READ; a producer token gets 403).
 */
export async function startMetricsServer(c: Container, processName: 'worker' | 'replay'): Promise<MetricsServer | null> {
  const port = c.config.METRICS_PORT;
  if (port === 0) return null;
  const auth: AuthSettings = { token: c.config.API_TOKEN, publicRead: c.config.PUBLIC_READ, producers: c.config.INGEST_TOKENS ?? [] };
  const server = createServer((req, res) => {
    answer(req, res, processName, auth).catch(() => send(res, 500, { success: false, error: { code: 'internal_error', message: 'could not collect the metrics' } }));
  });
  const host = c.config.HOST;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      const why = code === 'EADDRINUSE' ? 'is already in use (another worker or replay on this host?)' : code === 'EACCES' ? 'may not be used by this user' : `is not an address of this host (HOST=${host})`;
      const message = `METRICS_PORT: port ${port} on ${host} ${why}. Give each process on one host its own METRICS_PORT, or set 0 to serve no metrics.`;
      // The exit code table: a port in use is 4, a setting that cannot work here is 2.
      if (code === 'EADDRINUSE') throw new ExitError(message, EXIT.PORT_IN_USE);
      throw new ConfigError([message]);
    }
    throw error;
  }
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  c.logger.info({ url: `${url}/metrics`, process: processName }, 'metrics served');
  return {
    url,
    async close() {
      if (!server.listening) return;
      server.closeAllConnections();
      await new Promise((r) => server.close(() => r(undefined)));
    },
  };
}

async function answer(req: IncomingMessage, res: ServerResponse, processName: string, auth: AuthSettings): Promise<void> {
  const path = (req.url ?? '').split('?')[0];
  if (path !== '/health' && path !== '/metrics') return send(res, 404, { success: false, error: { code: 'not_found', message: `no route ${req.method} ${path?.slice(0, 200)}: this port serves /metrics and /health` } });
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { success: false, error: { code: 'method_not_allowed', message: `${path} answers GET only` } }, { allow: 'GET, HEAD' });
  if (path === '/health') return send(res, 200, { success: true, data: { status: 'ok', process: processName, uptimeSeconds: Math.round(process.uptime()) } });
  // The same rule as the web process's /metrics; the header is never logged.
  const presented = presentedToken(req.headers.authorization);
  const actor = presented === null ? null : identify(auth, presented);
  if (actor?.kind === 'producer') return send(res, 403, { success: false, error: { code: 'forbidden', message: `producer token "${actor.name}" (INGEST_TOKENS) may only POST /api/events` } });
  if (requiresToken('read', auth) && !actor) {
    return send(res, 401, { success: false, error: { code: 'unauthorized', message: presented === null ? 'missing credentials: send Authorization: Bearer <API_TOKEN>' : 'invalid credentials' } }, { 'www-authenticate': 'Bearer realm="hd-tickets"' });
  }
  const body = await registry.metrics();
  res.writeHead(200, { 'content-type': registry.contentType });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function send(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
  if (res.headersSent) return void res.end();
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify(body));
}
