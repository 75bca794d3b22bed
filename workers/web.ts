// The `web` process: REST API, ingest endpoint, bull-board, /metrics, /health, /ready, /api/docs.
import { createContainer } from '../src/app/container.js';
import { checkPostgres, checkRedis, PreflightError } from '../src/app/preflight.js';
import { onShutdownSignal } from '../src/app/process.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { startWebServer } from '../src/http/server.js';
import { createLogger } from '../src/logger.js';

try {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL);
  await checkPostgres(config.DATABASE_URL);
  await checkRedis(config.REDIS_URL);
  const container = await createContainer(config, logger);
  let server;
  try {
    server = await startWebServer(container);
  } catch (error) {
    await container.close();
    throw error;
  }
  const web = server;
  onShutdownSignal(logger, async () => {
    // Stop accepting, let in-flight requests finish (bounded by SHUTDOWN_GRACE_MS), then close connections.
    await web.close();
    await container.close();
  });
} catch (error) {
  if (error instanceof ConfigError || error instanceof PreflightError) {
    console.error(error.message);
    process.exit(2);
  }
  throw error;
}
