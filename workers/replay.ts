// The `replay` process: runs replay (rebuild) jobs from the replay queue.
import { runProcess } from '../src/app/runProcess.js';
import { startReplayWorker } from '../src/app/replayWorker.js';
import { startMetricsServer } from '../src/http/metricsServer.js';

await runProcess(async (container) => {
  const replay = startReplayWorker(container);
  // METRICS_PORT (0 = off): this process's /metrics and /health. A port in use stops the start (exit 4).
  const metrics = await startMetricsServer(container, 'replay').catch(async (error: unknown) => {
    await replay.close();
    throw error;
  });
  container.logger.info({ prefix: container.config.QUEUE_PREFIX }, 'replay worker started');
  return async () => {
    await replay.close();
    await metrics?.close();
  };
});
