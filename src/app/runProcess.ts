import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { ConfigError, loadConfig } from '../config.js';
import { pendingMessage, pendingMigrationsAt } from '../db/migrate.js';
import { EXIT, ExitError } from '../exitCodes.js';
import { backoffMs } from '../faults.js';
import { createLogger } from '../logger.js';
import { createContainer, type Container } from './container.js';
import { checkServices, PreflightError } from './preflight.js';
import { onShutdownSignal } from './process.js';
import { startTracingFromEnv } from './tracingSdk.js';

export interface ProcessOptions {
  /**
   * While waiting for Postgres and Redis, answer HTTP on PORT: /health 200, /ready and the rest 503
   * with Retry-After (the web process: a platform's health check must see the process alive).
   */
  holdingServer?: boolean;
}

/**
 * The life of a process (web, worker, replay): validated config, reachable Postgres and Redis, the
 * container, then `start`; SIGTERM/SIGINT run the returned stop function and close the container.
 * A bad setting is one plain message and exit code 2; an unmigrated database exits 3. An unreachable service is waited for (a
 * warning every 10 s, retries with capped backoff) so that a fleet started before its database, or
 * restarted during an outage, comes up by itself when the database does; STARTUP_WAIT_MS bounds it.
 */
export async function runProcess(start: (c: Container) => Promise<() => Promise<void>>, env: NodeJS.ProcessEnv = process.env, options: ProcessOptions = {}): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(EXIT.CONFIG);
    }
    throw error;
  }
  const logger = createLogger(config.LOG_LEVEL);
  // OTEL_EXPORTER_OTLP_ENDPOINT et al.: off (and free) when unset (README, Tracing).
  const tracing = await startTracingFromEnv(logger, env);
  const holding = options.holdingServer ? await holdingServer(config, logger) : null;
  let stopWaiting = false;
  const unsubscribe = onShutdownSignal(logger, async () => {
    stopWaiting = true;
    await closeServer(holding);
  });
  const ok = await waitForServices(config, logger, () => stopWaiting);
  unsubscribe();
  await closeServer(holding);
  if (!ok) {
    if (stopWaiting) process.exit(EXIT.OK);
    process.exit(EXIT.NOT_READY);
  }
  // A database without the schema would serve 500s or crash on the first job: say what to run instead.
  const pending = await pendingMigrationsAt(config.DATABASE_URL);
  if (pending.length) {
    console.error(pendingMessage(pending));
    process.exit(EXIT.NOT_READY);
  }
  const container = await createContainer(config, logger);
  let stop: () => Promise<void>;
  try {
    stop = await start(container);
  } catch (error) {
    await container.close();
    // e.g. the web server refusing production without API_TOKEN: a setting to fix, not a crash.
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(EXIT.CONFIG);
    }
    if (error instanceof ExitError) {
      console.error(error.message);
      process.exit(error.exitCode);
    }
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      console.error(`Port ${config.PORT} on ${config.HOST} is already in use. Stop the process holding it or set PORT.`);
      process.exit(EXIT.PORT_IN_USE);
    }
    throw error;
  }
  onShutdownSignal(logger, async () => {
    await stop();
    await container.close();
    await tracing?.shutdown();
  });
}

/** True once both answer; false when STARTUP_WAIT_MS ran out (the reason printed) or the process is told to stop. */
async function waitForServices(config: Config, logger: Logger, stopped: () => boolean): Promise<boolean> {
  const since = Date.now();
  let lastWarn = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      await checkServices(config);
      if (attempt > 0) logger.info({ waitedMs: Date.now() - since }, 'PostgreSQL and Redis reachable; starting');
      return true;
    } catch (error) {
      if (!(error instanceof PreflightError)) throw error;
      const waited = Date.now() - since;
      if (config.STARTUP_WAIT_MS > 0 && waited >= config.STARTUP_WAIT_MS) {
        console.error(`${error.message}\nGave up after STARTUP_WAIT_MS=${config.STARTUP_WAIT_MS}.`);
        return false;
      }
      if (Date.now() - lastWarn >= 10_000) {
        lastWarn = Date.now();
        logger.warn({ waitedMs: waited, startupWaitMs: config.STARTUP_WAIT_MS || 'unlimited' }, `${error.message.split('\n')[0]} Waiting for it (set STARTUP_WAIT_MS to give up after a while).`);
      }
      const pause = backoffMs(attempt, 250, 5000);
      for (const until = Date.now() + pause; Date.now() < until; ) {
        if (stopped()) return false;
        await new Promise((r) => setTimeout(r, Math.min(200, until - Date.now())));
      }
    }
  }
}

/** /health 200 (the process is alive), everything else 503 with Retry-After, until the real server starts. */
async function holdingServer(config: Config, logger: Logger): Promise<Server | null> {
  const server = createServer((req, res) => {
    const alive = (req.url ?? '').split('?')[0] === '/health';
    const body = alive
      ? { success: true, data: { status: 'starting', waitingFor: 'PostgreSQL and Redis' } }
      : { success: false, error: { code: 'service_unavailable', message: 'starting: waiting for PostgreSQL and Redis to be reachable' } };
    res.writeHead(alive ? 200 : 503, { 'content-type': 'application/json; charset=utf-8', ...(alive ? {} : { 'retry-after': '5' }) });
    res.end(JSON.stringify(body));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.PORT, config.HOST, () => resolve());
    });
    return server;
  } catch (error) {
    logger.warn({ err: (error as Error).message }, 'could not answer health checks while waiting');
    return null;
  }
}

async function closeServer(server: Server | null): Promise<void> {
  if (!server?.listening) return;
  server.closeAllConnections();
  await new Promise((r) => server.close(() => r(undefined)));
}
