import { redactUrl, type Config } from '../config.js';

export interface BannerInput {
  config: Config;
  /** Base URL of the web server, or null when the HTTP API module is not there yet. */
  apiUrl: string | null;
  /** Set only when this run generated the token: it is then shown once, here. */
  generatedToken: string | null;
  databaseCreated: boolean;
  migrationsApplied: number;
  replay: boolean;
  demo: boolean;
  /** Where the log goes when not to the terminal. */
  logFile?: string;
  /** URL of the demo's flaky local webhook receiver, when it runs. */
  demoWebhook?: string;
  /** What `npm start` runs in place of services that did not answer (README, Quick start). */
  embedded?: {
    postgres: { dataDir: string; initialised: boolean; insteadOf: string } | null;
    /** The Redis that did not answer, when the queues run on PostgreSQL because of it. */
    queuesInsteadOf: string | null;
  };
}

/**
 * What a newcomer needs after `npm start`: where to look and how to authenticate. Printed to stdout
 * once, never through the logger, because it may carry a freshly generated dev token.
 */
export function formatBanner(b: BannerInput): string {
  const { config } = b;
  const token = b.generatedToken ?? '$API_TOKEN';
  const parts = [...(b.apiUrl ? ['web'] : []), 'workers', 'relay', ...(b.replay ? ['replay'] : []), ...(b.demo ? ['demo scraper'] : [])];
  const lines = ['', `HD Tickets event platform is running (${config.NODE_ENV}; one process: ${parts.join(' + ')})`, ''];
  if (b.apiUrl) {
    lines.push(
      `  dashboard    ${b.apiUrl}/dashboard   (user: admin, password: ${b.generatedToken ? 'the API token below' : 'your API_TOKEN'})`,
      `  API          ${b.apiUrl}/api/events/overview`,
      `  bull-board   ${b.apiUrl}/admin/queues   (user: admin, password: ${b.generatedToken ? 'the API token below' : 'your API_TOKEN'})`,
      `  metrics      ${b.apiUrl}/metrics   health ${b.apiUrl}/health`,
    );
    if (b.generatedToken) {
      lines.push(`  API token    ${b.generatedToken}   (generated for this run; set API_TOKEN to choose your own)`);
      // For README's curl examples (`T=$API_TOKEN`), which otherwise meet 401 in a new shell.
      lines.push(`  shell        export API_TOKEN=${b.generatedToken}   (paste in your shell; then README's curl lines work)`);
    }
    else if (!config.API_TOKEN) lines.push('  API token    none set: the API is open (set API_TOKEN to require one)');
    lines.push(`  try          curl -H "Authorization: Bearer ${token}" ${b.apiUrl}/api/events/overview`);
  } else {
    lines.push('  API          not available yet (src/http/server.ts is not in this checkout); workers and demo run without it');
  }
  const pgEmbedded = b.embedded?.postgres;
  const queuesInsteadOf = b.embedded?.queuesInsteadOf;
  lines.push(
    `  database     ${redactUrl(config.DATABASE_URL)}${b.databaseCreated ? ' (created just now)' : ''}, ${b.migrationsApplied ? `${b.migrationsApplied} migration(s) applied` : 'schema up to date'}`,
    ...(pgEmbedded
      ? [`  embedded     PostgreSQL 18 started by npm start (nothing answered at ${redactUrl(pgEmbedded.insteadOf)}); data in ${pgEmbedded.dataDir}${pgEmbedded.initialised ? ', created just now' : ', kept from the last run'}; stopped on Ctrl-C`]
      : []),
    config.QUEUE_BACKEND === 'postgres'
      ? `  queues       on PostgreSQL (BullMQ's Postgres backend, schema bullmq)${queuesInsteadOf ? `: no Redis answered at ${queuesInsteadOf}` : ' (QUEUE_BACKEND=postgres)'}; the handlers' cache in the table handler_cache`
      : config.REDIS_CLUSTER_NODES
        ? `  redis        cluster ${config.REDIS_CLUSTER_NODES.map((n) => `${n.host}:${n.port}`).join(',')}, a hash tag per queue from ${config.QUEUE_PREFIX}`
        : `  redis        ${redactUrl(config.REDIS_URL)}, queue prefix ${config.QUEUE_PREFIX}`,
    ...(pgEmbedded || queuesInsteadOf
      ? [`  switch       to real services: start them (docker compose up -d postgres redis) or point DATABASE_URL / REDIS_URL at them; EMBEDDED_SERVICES=off never embeds (README, Quick start)`]
      : []),
    b.demo
      ? `  demo         ~${config.DEMO_RATE} events/s from simulated platforms (DEMO_RATE=… to change, DEMO=off to disable)`
      : '  demo         off (DEMO=on to simulate scrapers)',
    ...(b.demoWebhook ? [`  webhook      ${b.demoWebhook}   (demo receiver: down 30 s every 5 min from the first minute, so some alerts fail: see open failures)`] : []),
    ...(b.logFile ? [`  logs         ${b.logFile}   (errors also here; read it with npx pino-pretty < ${b.logFile})`] : []),
    '',
    'A status line follows every 5 s. Press Ctrl-C to stop.',
    '',
  );
  return lines.join('\n');
}
