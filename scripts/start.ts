// `npm start`: the whole platform in one process for development (web + workers + relay + replay + demo).
import { randomBytes } from 'node:crypto';
import { checkServices, PreflightError } from '../src/app/preflight.js';
import { EXIT } from '../src/exitCodes.js';
import { ConfigError, loadConfig, redactUrl, type Config } from '../src/config.js';
import { ensureDatabase } from '../src/demo/ensureDatabase.js';
import { EmbeddedPostgresError } from '../src/demo/embeddedPostgres.js';
import { chooseServices, type ServicesChoice } from '../src/demo/embeddedServices.js';
import type { DemoStatus } from '../src/demo/status.js';
import type { Logger } from '../src/logger.js';

const EXIT_CONFIG = EXIT.CONFIG;
const EXIT_UNREACHABLE = EXIT.NOT_READY;
const STATUS_EVERY_MS = 5000;
const LOG_DIR = '.logs';
const LOG_FILE = `${LOG_DIR}/npm-start.log`;

let config: Config;
try {
  config = loadConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  console.error(error.message);
  process.exit(EXIT_CONFIG);
}

// A dev run should still exercise auth: without a configured token, make one up for this run only.
let generatedToken: string | null = null;
if (!config.API_TOKEN && config.NODE_ENV !== 'production') {
  // Hex: no character a shell or a header could trip over.
  generatedToken = randomBytes(24).toString('hex');
  config = { ...config, API_TOKEN: generatedToken };
}

// No PostgreSQL answering: an embedded one; no Redis answering: the queues on PostgreSQL (README,
// Quick start). EMBEDDED_SERVICES=off reports the missing service and exits 3 instead.
let services: ServicesChoice;
try {
  services = await chooseServices(config, process.env, 3000, (line) => console.log(line));
} catch (error) {
  if (!(error instanceof EmbeddedPostgresError)) throw error;
  console.error(`\nCould not start an embedded PostgreSQL: ${error.message}\nStart PostgreSQL yourself (docker compose up -d postgres) or point DATABASE_URL at one.\n`);
  process.exit(EXIT_UNREACHABLE);
}
config = services.config;

// Each check has a short timeout so an unreachable service is reported well within 10 s.
let databaseCreated = false;
try {
  databaseCreated = (await ensureDatabase(config.DATABASE_URL, 3000)) === 'created';
  await checkServices(config, 3000);
} catch (error) {
  if (!(error instanceof PreflightError)) throw error;
  console.error(`\n${error.message}\n`);
  process.exit(EXIT_UNREACHABLE);
}

// Loaded only now: the whole application takes a while to import, and a missing service should be
// reported at once.
const [{ onShutdownSignal }, { runMigrations }, { startAllInOne }, { formatBanner }, { formatStatusLine, readDemoStatus }, { createLogger }] = await Promise.all([
  import('../src/app/process.js'),
  import('../src/db/migrate.js'),
  import('../src/demo/allInOne.js'),
  import('../src/demo/banner.js'),
  import('../src/demo/status.js'),
  import('../src/logger.js'),
]);
const logger = await startLogger(config);
// OTEL_EXPORTER_OTLP_ENDPOINT et al.: off (and free) when unset (README, Tracing).
const tracing = await (await import('../src/app/tracingSdk.js')).startTracingFromEnv(logger);

let migrationsApplied: number;
try {
  migrationsApplied = (await runMigrations(config.DATABASE_URL)).length;
} catch (error) {
  console.error(`Migrating ${redactUrl(config.DATABASE_URL)} failed: ${(error as Error).message}`);
  process.exit(1);
}

const app = await startAllInOne(config, logger).catch((error: NodeJS.ErrnoException) => {
  // The web server refuses some settings itself (e.g. production without API_TOKEN).
  if (error instanceof ConfigError) {
    console.error(error.message);
    process.exit(EXIT_CONFIG);
  }
  if (error.code !== 'EADDRINUSE') throw error;
  console.error(`\nPort ${config.PORT} on ${config.HOST} is already in use (another npm start?). Stop that process or choose another port, e.g. PORT=3001 npm start.\n`);
  process.exit(EXIT.PORT_IN_USE);
});
console.log(
  formatBanner({
    config, apiUrl: app.web?.url ?? null, generatedToken, databaseCreated, migrationsApplied, replay: app.replay, demo: app.demo !== null, logFile: config.NODE_ENV === 'production' ? undefined : LOG_FILE, demoWebhook: app.receiver?.url,
    embedded: { postgres: services.postgres ? { dataDir: `${config.EMBEDDED_DATA_DIR}/postgres`, initialised: services.postgres.initialised, insteadOf: services.postgresInsteadOf! } : null, queuesInsteadOf: services.queuesInsteadOf },
  }),
);

let previous: DemoStatus | undefined;
let reporting = false;
const statusTimer = setInterval(() => {
  if (reporting) return;
  reporting = true;
  readDemoStatus(app.container.pool, app.container.projections)
    .then((s) => {
      console.log(formatStatusLine(s, previous));
      previous = s;
    })
    .catch((e: Error) => console.log(`status unavailable: ${e.message}`))
    .finally(() => (reporting = false));
}, STATUS_EVERY_MS);

onShutdownSignal(logger, async () => {
  clearInterval(statusTimer);
  // Past the grace period plus a margin something is stuck: leave rather than hang the terminal.
  setTimeout(() => {
    console.error('shutdown is taking too long; exiting');
    process.exit(1);
  }, config.SHUTDOWN_GRACE_MS + 5000).unref();
  const { timedOut } = await app.close();
  if (timedOut) logger.warn('some jobs were cut short; they will run again on the next start');
  await tracing?.shutdown();
  // Last, once every connection is closed: the embedded server's fast shutdown then has nothing to cut.
  await services.postgres?.stop();
});

/**
 * The terminal is for the banner and the status lines: the log goes to a file (JSON lines, readable
 * with `npx pino-pretty < .logs/npm-start.log`), and only errors also reach the terminal, readable
 * (pino-pretty, a dev dependency) when it is there. Production keeps JSON on stdout for the platform.
 */
async function startLogger(c: Config): Promise<Logger> {
  if (c.NODE_ENV === 'production') return createLogger(c.LOG_LEVEL);
  const { mkdirSync } = await import('node:fs');
  const { pino } = await import('pino');
  mkdirSync(LOG_DIR, { recursive: true });
  const file = pino.destination({ dest: LOG_FILE, sync: false, mkdir: true });
  let terminal: NodeJS.WritableStream = process.stderr;
  try {
    const { default: pretty } = await import('pino-pretty');
    terminal = pretty({ colorize: process.stderr.isTTY, translateTime: 'HH:MM:ss', ignore: 'pid,hostname', sync: true, destination: 2 });
  } catch {
    // JSON on stderr then.
  }
  return createLogger(c.LOG_LEVEL, pino.multistream([{ level: c.LOG_LEVEL as 'info', stream: file }, { level: 'error', stream: terminal }]));
}
