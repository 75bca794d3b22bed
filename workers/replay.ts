// The `replay` process: runs replay (rebuild) jobs from the replay queue.
import { runProcess } from '../src/app/runProcess.js';
import { startReplayWorker } from '../src/app/replayWorker.js';

await runProcess(async (container) => {
  const replay = startReplayWorker(container);
  container.logger.info({ prefix: container.config.QUEUE_PREFIX }, 'replay worker started');
  return () => replay.close();
});
