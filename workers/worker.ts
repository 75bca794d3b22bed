// The `worker` process: handler and projection workers plus the outbox relay (roles via --roles or WORKER_ROLES).
import { createContainer } from '../src/app/container.js';
import { checkPostgres, checkRedis, PreflightError } from '../src/app/preflight.js';
import { onShutdownSignal } from '../src/app/process.js';
import { startWorkerHost, type WorkerRole } from '../src/app/workerHost.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';

const rolesArg = process.argv.find((a) => a.startsWith('--roles='))?.slice('--roles='.length);
try {
  const config = loadConfig(rolesArg ? { ...process.env, WORKER_ROLES: rolesArg } : process.env);
  const logger = createLogger(config.LOG_LEVEL);
  await checkPostgres(config.DATABASE_URL);
  await checkRedis(config.REDIS_URL);
  const container = await createContainer(config, logger);
  const roles = config.WORKER_ROLES.filter((r): r is WorkerRole => r !== 'replay');
  const host = await startWorkerHost(container, roles);
  logger.info({ roles, concurrency: config.WORKER_CONCURRENCY, prefix: config.QUEUE_PREFIX }, 'worker started');
  onShutdownSignal(logger, async () => {
    const { timedOut } = await host.close();
    await container.close();
    if (timedOut) logger.warn('some jobs were cut short; they will run again elsewhere');
  });
} catch (error) {
  if (error instanceof ConfigError || error instanceof PreflightError) {
    console.error(error.message);
    process.exit(2);
  }
  throw error;
}
