// The `replay` process: runs replay (rebuild) jobs from the replay queue.
import { createContainer } from '../src/app/container.js';
import { checkPostgres, checkRedis, PreflightError } from '../src/app/preflight.js';
import { onShutdownSignal } from '../src/app/process.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { startReplayWorker } from '../src/replay/replayWorker.js';

try {
  const config = loadConfig();
  const logger = createLogger(config.LOG_LEVEL);
  await checkPostgres(config.DATABASE_URL);
  await checkRedis(config.REDIS_URL);
  const container = await createContainer(config, logger);
  const replay = startReplayWorker(container);
  logger.info({ prefix: config.QUEUE_PREFIX }, 'replay worker started');
  onShutdownSignal(logger, async () => {
    await replay.close();
    await container.close();
  });
} catch (error) {
  if (error instanceof ConfigError || error instanceof PreflightError) {
    console.error(error.message);
    process.exit(2);
  }
  throw error;
}
