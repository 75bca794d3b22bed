import type { Logger } from 'pino';

/**
 * SIGTERM/SIGINT: run `shutdown` once (stop taking work, drain within the grace period, close
 * connections), then exit 0. A second signal exits at once.
 */
export function onShutdownSignal(logger: Logger, shutdown: () => Promise<void>): () => void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    shutdown()
      .then(() => {
        logger.info('shutdown complete');
        process.exit(0);
      })
      .catch((err: Error) => {
        logger.error({ err: err.message }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}
