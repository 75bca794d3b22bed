import type { Config } from '../config.js';
import { ConfigError, loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { createContainer, type Container } from './container.js';
import { checkPostgres, checkRedisOf, PreflightError } from './preflight.js';
import { onShutdownSignal } from './process.js';

/**
 * The life of a process (web, worker, replay): validated config, reachable Postgres and Redis, the
 * container, then `start`; SIGTERM/SIGINT run the returned stop function and close the container.
 * A bad setting or an unreachable service is one plain message and exit code 2.
 */
export async function runProcess(start: (c: Container) => Promise<() => Promise<void>>, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(env);
    await checkPostgres(config.DATABASE_URL);
    await checkRedisOf(config);
  } catch (error) {
    if (error instanceof ConfigError || error instanceof PreflightError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.LOG_LEVEL);
  const container = await createContainer(config, logger);
  let stop: () => Promise<void>;
  try {
    stop = await start(container);
  } catch (error) {
    await container.close();
    // e.g. the web server refusing production without API_TOKEN: a setting to fix, not a crash.
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  onShutdownSignal(logger, async () => {
    await stop();
    await container.close();
  });
}
