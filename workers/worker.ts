// The `worker` process: handler and projection workers plus the outbox relay (roles via --roles or WORKER_ROLES).
import { runProcess } from '../src/app/runProcess.js';
import { startWorkerHost, type WorkerRole } from '../src/app/workerHost.js';
import { startMetricsServer } from '../src/http/metricsServer.js';

const rolesArg = process.argv.find((a) => a.startsWith('--roles='))?.slice('--roles='.length);

await runProcess(
  async (container) => {
    const { config, logger } = container;
    const roles = config.WORKER_ROLES.filter((r): r is WorkerRole => r !== 'replay');
    const host = await startWorkerHost(container, roles);
    // METRICS_PORT (0 = off): this process's /metrics and /health. A port in use stops the start (exit 4).
    const metrics = await startMetricsServer(container, 'worker').catch(async (error: unknown) => {
      await host.close();
      throw error;
    });
    logger.info({ roles, concurrency: config.WORKER_CONCURRENCY, prefix: config.QUEUE_PREFIX }, 'worker started');
    return async () => {
      const { timedOut } = await host.close();
      if (timedOut) logger.warn('some jobs were cut short; they will run again elsewhere');
      await metrics?.close();
    };
  },
  rolesArg ? { ...process.env, WORKER_ROLES: rolesArg } : process.env,
);
