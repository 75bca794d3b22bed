import { z } from 'zod';

// Every knob the processes read, validated once at start-up so a typo fails loudly and early
// instead of surfacing as a confusing runtime error later.
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'])
  .transform((v) => ['true', '1', 'yes', 'on'].includes(v));

// Messages in the operator's words ("must be a whole number"), not the library's ("Expected number, received nan").
const int = (def: number, min = 0, max = Number.MAX_SAFE_INTEGER) =>
  z.coerce
    .number({ invalid_type_error: 'must be a whole number' })
    .int('must be a whole number')
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`)
    .default(def);

const urlWithScheme = (schemes: string[]) =>
  z
    .string()
    .url()
    .refine((u) => schemes.some((s) => u.startsWith(`${s}://`)), {
      message: `must start with ${schemes.map((s) => `${s}://`).join(' or ')}`,
    });

export const ConfigSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  DATABASE_URL: urlWithScheme(['postgres', 'postgresql']).default('postgres://postgres@127.0.0.1:5432/hdtickets'),
  DATABASE_POOL_SIZE: int(10, 1, 200),
  REDIS_URL: urlWithScheme(['redis', 'rediss']).default('redis://127.0.0.1:6379'),
  // Where the BullMQ queues live: Redis (REDIS_URL / REDIS_CLUSTER_NODES), or PostgreSQL itself
  // (DATABASE_URL, schema `bullmq`): one service fewer, at a lower job throughput (README, Queue backends).
  // `npm start` picks postgres by itself when this is unset and no Redis answers.
  QUEUE_BACKEND: z.enum(['redis', 'postgres']).default('redis'),
  // `npm start` only: with `auto`, an unreachable PostgreSQL is replaced by an embedded one (data in
  // .data/postgres) and an unreachable Redis by the postgres queue backend; `off` exits 3 instead.
  EMBEDDED_SERVICES: z.enum(['auto', 'off']).default('auto'),
  // Where an embedded PostgreSQL keeps its data (relative paths from the project folder).
  EMBEDDED_DATA_DIR: z.string().min(1).default('.data'),
  // A hash tag keeps every key of one queue in one Redis Cluster slot.
  QUEUE_PREFIX: z
    .string()
    .min(1)
    .max(64)
    .regex(/^[A-Za-z0-9_{}-]+$/, 'letters, digits, _ - { } only')
    .default('{hdt}'),
  // Redis Cluster: the seed nodes (host:port,…); credentials and TLS still come from REDIS_URL.
  REDIS_CLUSTER_NODES: z
    .string()
    .optional()
    .transform((s, ctx) => {
      if (s === undefined) return undefined;
      const nodes = s.split(',').map((x) => x.trim()).filter(Boolean).map(parseHostPort);
      if (nodes.length === 0 || nodes.some((n) => n === null)) {
        ctx.addIssue({ code: z.ZodIssueCode.custom, message: 'must be host:port,host:port,… (e.g. 10.0.0.1:7000,10.0.0.2:7000)' });
        return z.NEVER;
      }
      return nodes as { host: string; port: number }[];
    }),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PORT: int(3000, 0, 65535),
  HOST: z.string().default('127.0.0.1'),
  API_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  PUBLIC_READ: bool.default('false'),
  // Producer tokens, `name:token,…`: each may only POST /api/events (its name becomes the events'
  // default metadata.source); API_TOKEN stays the operator token. Checked against API_TOKEN in loadConfig.
  INGEST_TOKENS: z
    .string()
    .optional()
    .transform((s, ctx) => (s === undefined ? undefined : parseIngestTokens(s, ctx))),
  // worker and replay serve /metrics and /health on this port; 0 = off. Off by default because the
  // processes of one host (npm start, a Procfile under foreman) would otherwise collide on one port.
  METRICS_PORT: int(0, 0, 65535),
  // 5 MiB holds a full 1,000-event batch of ordinary payloads with room to spare; larger bodies get 413.
  HTTP_BODY_LIMIT_BYTES: int(5 * 1024 * 1024, 1024, 100 * 1024 * 1024),
  // The live event stream (GET /api/events/stream): one poll of the store per web process, shared by its clients.
  STREAM_POLL_MS: int(250, 10, 10_000),
  STREAM_HEARTBEAT_MS: int(15_000, 100, 600_000),
  STREAM_CLIENT_BUFFER_BYTES: int(1024 * 1024, 1024, 256 * 1024 * 1024),
  WORKER_ROLES: z
    .string()
    .default('handlers,projections,relay')
    .transform((s) => s.split(',').map((r) => r.trim()).filter(Boolean))
    .pipe(z.array(z.enum(['handlers', 'projections', 'relay', 'replay'])).min(1)),
  // Optional allow-list of handler/projection names this deployment runs (producers route only to them).
  CONSUMERS: z
    .string()
    .optional()
    .transform((s) => (s ? s.split(',').map((x) => x.trim()).filter(Boolean) : undefined)),
  // Jobs are batches bound by PostgreSQL and CPU: on 2 cores, 2 per queue beat 4 and 8 in throughput and
  // lag (npm run bench:e2e). Raise it for handlers that mostly wait on external calls.
  WORKER_CONCURRENCY: int(2, 1, 256),
  JOB_ATTEMPTS: int(5, 1, 100),
  JOB_BACKOFF_MS: int(1000, 1, 3_600_000),
  RELAY_BATCH_SIZE: int(500, 1, 10_000),
  RELAY_POLL_MS: int(1000, 10, 60_000),
  JOB_BATCH_SIZE: int(500, 1, 1000),
  // Owed work whose job has not settled it within this horizon is checked against Redis by the
  // reconciler (relay role) and redelivered if its job is gone (Redis lost it, an operator deleted it).
  OWED_REDELIVER_AFTER_MS: int(30_000, 100, 24 * 3_600_000),
  SHUTDOWN_GRACE_MS: int(25_000, 0, 600_000),
  // web, worker and replay started while Postgres or Redis is unreachable wait for it (web answers
  // /health 200, /ready 503 meanwhile); after this long they exit with code 2. 0 = wait as long as it takes.
  STARTUP_WAIT_MS: int(0, 0, 24 * 3_600_000),
  // How long a worker may hold a job without renewing its lock before another worker takes it over.
  JOB_LOCK_MS: int(30_000, 1000, 600_000),
  CACHE_TTL_SECONDS: int(86_400, 1, 30 * 86_400),
  ALERT_WEBHOOK_URL: urlWithScheme(['http', 'https']).optional(),
  ALERT_WEBHOOK_SECRET: z.string().optional(),
  ALERT_WEBHOOK_TIMEOUT_MS: int(5000, 1, 120_000),
  REPLAY_CHUNK_SIZE: int(1000, 1, 100_000),
  DEMO: z.enum(['on', 'off']).default('on'),
  DEMO_RATE: z.coerce.number().min(0).max(10_000).default(5),
});

export type Config = z.infer<typeof ConfigSchema>;

export class ConfigError extends Error {
  constructor(readonly issues: string[]) {
    super(`Invalid configuration:\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** zod's defaults read like library internals; a setting's error should say what the value must be. */
const operatorWords: z.ZodErrorMap = (issue, ctx) => {
  if (issue.code === z.ZodIssueCode.invalid_type && issue.expected === 'number') return { message: 'must be a number' };
  if (issue.code === z.ZodIssueCode.invalid_enum_value) return { message: `must be one of ${issue.options.join(', ')}` };
  if (issue.code === z.ZodIssueCode.invalid_string && issue.validation === 'url') return { message: 'must be a URL such as scheme://host:port/…' };
  return { message: ctx.defaultError };
};

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  // Empty strings mean "unset" so `FOO= npm start` behaves like no FOO at all.
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const result = ConfigSchema.safeParse(cleaned, { errorMap: operatorWords });
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((i) => {
        const key = String(i.path[0] ?? '?');
        // Never echo the value of a secret back into a log line.
        const secret = /TOKEN|SECRET|PASSWORD/.test(key);
        const shown = secret || cleaned[key] === undefined ? '' : ` (got ${JSON.stringify(redactUrl(String(cleaned[key])))})`;
        return `${key}: ${i.message}${shown}`;
      }),
    );
  }
  const sameAsOperator = result.data.INGEST_TOKENS?.findIndex((p) => p.token === result.data.API_TOKEN) ?? -1;
  if (sameAsOperator >= 0) throw new ConfigError([`INGEST_TOKENS: entry ${sameAsOperator + 1} ("${result.data.INGEST_TOKENS![sameAsOperator]!.name}") uses the same token as API_TOKEN; a producer token must differ from the operator token`]);
  // Redis Cluster has one database only: a /db in REDIS_URL would be silently ignored.
  const db = result.data.REDIS_CLUSTER_NODES ? new URL(result.data.REDIS_URL).pathname.replace(/^\//, '') : '';
  if (db !== '' && db !== '0') throw new ConfigError([`REDIS_URL: a database number (/${db}) cannot be used with REDIS_CLUSTER_NODES (a cluster has database 0 only)`]);
  return result.data;
}

export interface IngestToken {
  name: string;
  token: string;
}

/**
 * `name:token,name2:token2`. Messages name the entry by position (and its name once that is valid),
 * never the token: a misplaced colon could make part of a token look like a name.
 */
function parseIngestTokens(s: string, ctx: z.RefinementCtx): IngestToken[] {
  const fail = (message: string) => {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message });
    return z.NEVER;
  };
  const entries = s.split(',').map((x) => x.trim()).filter(Boolean);
  if (entries.length === 0) return fail('must be name:token,name2:token2,… (or unset)');
  const out: IngestToken[] = [];
  for (const [i, entry] of entries.entries()) {
    const colon = entry.indexOf(':');
    const name = colon < 0 ? '' : entry.slice(0, colon).trim();
    const token = colon < 0 ? '' : entry.slice(colon + 1).trim();
    if (!/^[a-z0-9_-]{1,64}$/.test(name)) return fail(`entry ${i + 1} must be name:token, the name of 1-64 characters a-z, 0-9, _ or -`);
    if (token.length < 16 || /\s/.test(token)) return fail(`entry ${i + 1} ("${name}"): the token must be at least 16 characters, without spaces`);
    const twin = out.findIndex((p) => p.name === name || p.token === token);
    if (twin >= 0) return fail(out[twin]!.name === name ? `the name "${name}" is used by entries ${twin + 1} and ${i + 1}` : `entries ${twin + 1} and ${i + 1} have the same token`);
    out.push({ name, token });
  }
  return out;
}

/** `host:port` or `[ipv6]:port` with a port in 1..65535, else null. */
function parseHostPort(s: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9_.-]+)):(\d{1,5})$/.exec(s);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: (m[1] ?? m[2])!, port };
}

// Query parameters whose values are credentials (a webhook's `?token=`, a signed URL's `sig=`).
const SECRET_PARAM = /token|key|secret|passw(or)?d|pwd|sig(nature)?|auth|credential/i;

/**
 * Hides the credentials of a URL for logs and messages: the password of `user:pass@`, `:pass@`
 * (Redis's empty user) and percent-encoded forms, a bare `token@` on http(s) (a user name that is a
 * token), and the values of query parameters named like secrets. Works on strings that are not
 * valid URLs too, since a malformed value is exactly what a config error message echoes.
 */
export function redactUrl(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)(.*)$/is.exec(url);
  if (!m) return url;
  const [, scheme, rest] = m as unknown as [string, string, string];
  const queryAt = rest.search(/[?#]/);
  const beforeQuery = queryAt < 0 ? rest : rest.slice(0, queryAt);
  // The userinfo ends at the last '@' before the query: an unencoded password may itself hold '@' or
  // '/', and over-masking a path that holds an '@' is the safe mistake.
  const at = beforeQuery.lastIndexOf('@');
  let out = rest;
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    const colon = userinfo.indexOf(':');
    const shown = colon >= 0 ? `${userinfo.slice(0, colon)}:***` : /^https?:/i.test(scheme) ? '***' : userinfo;
    out = `${shown}${rest.slice(at)}`;
  }
  out = out.replace(/([?&;])([^=&#;]*)=([^&#;]*)/g, (all, sep: string, key: string) => (SECRET_PARAM.test(safeDecode(key)) ? `${sep}${key}=***` : all));
  return `${scheme}${out}`;
}

/** The secret parts of a URL (raw and decoded), to scrub from messages that a driver built around it. */
export function secretsOf(url: string): string[] {
  const out = new Set<string>();
  const m = /^[a-z][a-z0-9+.-]*:\/\/(.*)$/is.exec(url);
  if (!m) return [];
  const rest = m[1]!;
  const beforeQuery = rest.split(/[?#]/)[0]!;
  const at = beforeQuery.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = beforeQuery.slice(0, at);
    const colon = userinfo.indexOf(':');
    if (colon >= 0) out.add(userinfo.slice(colon + 1));
    else if (/^https?:/i.test(url)) out.add(userinfo);
  }
  for (const q of rest.matchAll(/[?&;]([^=&#;]*)=([^&#;]*)/g)) if (SECRET_PARAM.test(safeDecode(q[1]!))) out.add(q[2]!);
  for (const v of [...out]) out.add(safeDecode(v));
  return [...out].filter((v) => v.length >= 3);
}

/** `text` with every secret of `url` replaced, for driver messages that may quote the URL or its parts. */
export function scrubSecrets(text: string, url: string): string {
  let out = text.split(url).join(redactUrl(url));
  for (const s of secretsOf(url)) out = out.split(s).join('***');
  return out;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
