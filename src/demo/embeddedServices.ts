import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { redactUrl, type Config } from '../config.js';
import { checkPostgres, checkRedisOf, PreflightError } from '../app/preflight.js';
import { startEmbeddedPostgres, type EmbeddedPostgres } from './embeddedPostgres.js';

// The project folder (the one with package.json): two levels up from src/demo (tsx), three from
// dist/src/demo (compiled), so a compiled start keeps its data in the same `.data/` as `npm start`.
const PROJECT_DIR = ['../..', '../../..'].map((rel) => fileURLToPath(new URL(rel, import.meta.url))).find((dir) => existsSync(join(dir, 'package.json')))!;

export interface ServicesChoice {
  config: Config;
  /** The embedded PostgreSQL this start runs (or took over), when none answered at DATABASE_URL. */
  postgres: EmbeddedPostgres | null;
  /** The URL that did not answer, when PostgreSQL is embedded. */
  postgresInsteadOf: string | null;
  /** The Redis that did not answer, when the queues fell back to PostgreSQL. */
  queuesInsteadOf: string | null;
}

/**
 * `npm start` on a machine without the services: when nothing answers at DATABASE_URL, an embedded
 * PostgreSQL takes its place; when QUEUE_BACKEND is unset and no Redis answers, the queues run on
 * BullMQ's PostgreSQL backend. Only "nothing answers" counts: a server that refuses the login, or a
 * Redis Cluster node without REDIS_CLUSTER_NODES, is a setting to fix and is reported as before.
 * EMBEDDED_SERVICES=off (or an explicit QUEUE_BACKEND for the queues) keeps the old behaviour.
 */
export async function chooseServices(config: Config, env: NodeJS.ProcessEnv, timeoutMs: number, say: (line: string) => void): Promise<ServicesChoice> {
  const none: ServicesChoice = { config, postgres: null, postgresInsteadOf: null, queuesInsteadOf: null };
  if (config.EMBEDDED_SERVICES === 'off') return none;
  const unreachable = (prefix: string) => (error: unknown) => {
    if (error instanceof PreflightError && error.message.startsWith(prefix)) return true;
    if (error instanceof PreflightError) return false;
    throw error;
  };
  const queueChoiceOpen = !env.QUEUE_BACKEND && config.QUEUE_BACKEND === 'redis';
  const [pgDown, redisDown] = await Promise.all([
    checkPostgres(config.DATABASE_URL, timeoutMs).then(() => false, unreachable('Cannot reach PostgreSQL')),
    queueChoiceOpen ? checkRedisOf(config, timeoutMs).then(() => false, unreachable('Cannot')) : false,
  ]);
  let next = config;
  let postgres: EmbeddedPostgres | null = null;
  if (pgDown) {
    // Default `.data/` in the project (git-ignored), kept between runs.
    const baseDir = resolve(PROJECT_DIR, config.EMBEDDED_DATA_DIR);
    say(`No PostgreSQL answers at ${redactUrl(config.DATABASE_URL)}: starting an embedded one (data in ${baseDir}/postgres)…`);
    postgres = await startEmbeddedPostgres({ baseDir });
    const database = decodeURIComponent(new URL(config.DATABASE_URL).pathname.slice(1)) || 'hdtickets';
    next = { ...next, DATABASE_URL: postgres.url(database) };
  }
  if (redisDown) next = { ...next, QUEUE_BACKEND: 'postgres' };
  return { config: next, postgres, postgresInsteadOf: pgDown ? config.DATABASE_URL : null, queuesInsteadOf: redisDown ? (config.REDIS_CLUSTER_NODES ? `the Redis Cluster ${config.REDIS_CLUSTER_NODES.map((n) => `${n.host}:${n.port}`).join(',')}` : redactUrl(config.REDIS_URL)) : null };
}
