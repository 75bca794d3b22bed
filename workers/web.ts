// The `web` process: REST API, ingest endpoint, bull-board, /metrics, /health, /ready, /api/docs.
import { runProcess } from '../src/app/runProcess.js';
import { startWebServer } from '../src/http/server.js';

await runProcess(async (container) => {
  const web = await startWebServer(container);
  // Stop accepting, let in-flight requests finish (bounded by SHUTDOWN_GRACE_MS), then close connections.
  return () => web.close();
}, process.env, { holdingServer: true });
