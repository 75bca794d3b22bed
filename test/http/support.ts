import { Writable } from 'node:stream';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { createContainer, type Container, type ContainerOptions } from '../../src/app/container.js';
import { loadConfig } from '../../src/config.js';
import { TEST_QUEUE_BACKEND } from '../support/backend.js';
import { startWebServer, type WebServer } from '../../src/http/server.js';
import { createLogger } from '../../src/logger.js';
import { createTestDb, testPrefix, type TestDb } from '../support/db.js';

export const TOKEN = 'http-test-token-7f3a9c1e5b2d4e6f';

/** Everything the process logged, as one string (JSON lines). */
export class LogCapture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

export interface Harness {
  db: TestDb;
  c: Container;
  server: WebServer;
  url: string;
  logs: LogCapture;
  api(method: string, path: string, init?: { body?: unknown; raw?: string; headers?: Record<string, string>; token?: string | null }): Promise<{ status: number; headers: Headers; body: any; text: string }>;
  close(): Promise<void>;
}

/** Builds a container the way a process does, but with the log stream captured. */
export async function captureContainer(env: Record<string, string>, logs: LogCapture, options: ContainerOptions = {}): Promise<Container> {
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'trace', QUEUE_BACKEND: TEST_QUEUE_BACKEND, ...env });
  return createContainer(config, createLogger(config.LOG_LEVEL, logs), options);
}

export async function startHarness(label: string, env: Record<string, string> = {}, options: ContainerOptions = {}): Promise<Harness> {
  const db = await createTestDb(label);
  const logs = new LogCapture();
  const c = await captureContainer({ DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix(label), API_TOKEN: TOKEN, ...env }, logs, options);
  const server = await startWebServer(c, { port: 0, host: '127.0.0.1' });
  const url = server.url;
  return {
    db,
    c,
    server,
    url,
    logs,
    async api(method, path, init = {}) {
      const headers: Record<string, string> = { ...(init.headers ?? {}) };
      const token = init.token === undefined ? TOKEN : init.token;
      if (token !== null) headers.authorization ??= `Bearer ${token}`;
      let body: string | undefined = init.raw;
      if (init.body !== undefined) {
        body = JSON.stringify(init.body);
        headers['content-type'] ??= 'application/json';
      }
      const res = await fetch(url + path, { method, headers, body });
      const text = await res.text();
      let parsed: unknown = undefined;
      try {
        parsed = JSON.parse(text);
      } catch {
        /* not JSON */
      }
      return { status: res.status, headers: res.headers, body: parsed, text };
    },
    async close() {
      await server.close();
      await Promise.all([...Object.values(c.queues), ...c.routes.map((r) => c.consumerQueues.own(r.name))].map((q) => q.obliterate({ force: true }).catch(() => {})));
      await c.close();
      await db.drop();
    },
  };
}

type Doc = { paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema?: object }> }> }>> };

/** Validates response bodies against the served OpenAPI document (the contract clients see). */
export class OpenApiChecker {
  private readonly ajv = new Ajv({ strict: false, allErrors: true });
  private readonly cache = new Map<string, ReturnType<Ajv['compile']>>();
  constructor(private readonly doc: Doc) {
    (addFormatsModule as unknown as (a: Ajv) => void)(this.ajv);
  }

  /** Throws unless the path+method is documented with this status and the body matches its schema. */
  check(method: string, path: string, status: number, body: unknown): void {
    // A literal path (`/failures/retry`) wins over a template that also matches it (`/failures/{id}`).
    const bare = path.split('?')[0]!;
    const matching = Object.keys(this.doc.paths).filter((t) => new RegExp(`^${t.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(bare));
    const template = matching.find((t) => t === bare) ?? matching.find((t) => this.doc.paths[t]![method.toLowerCase()]) ?? matching[0];
    if (!template) throw new Error(`${path} is not in the OpenAPI document`);
    const op = this.doc.paths[template]![method.toLowerCase()];
    if (!op) throw new Error(`${method} ${template} is not in the OpenAPI document`);
    const response = op.responses[String(status)];
    if (!response) throw new Error(`${method} ${template} does not document status ${status} (documented: ${Object.keys(op.responses).join(', ')})`);
    const schema = response.content?.['application/json']?.schema;
    if (!schema) return;
    const key = `${method} ${template} ${status}`;
    let validate = this.cache.get(key);
    if (!validate) this.cache.set(key, (validate = this.ajv.compile(schema)));
    if (!validate(body)) throw new Error(`${key}: response does not match the document: ${this.ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 500)}`);
  }
}

/** A strict reading of the Prometheus text format: every line is a comment, blank, or `name{labels} value`. */
export function parsePrometheus(text: string): Map<string, number> {
  const out = new Map<string, number>();
  const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})?\s+(-?(?:[0-9.eE+-]+|NaN|\+?Inf))(\s+-?\d+)?$/;
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const m = sample.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${JSON.stringify(line)}`);
    out.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return out;
}

export function sumMetric(metrics: Map<string, number>, name: string, labelFilter = ''): number {
  let n = 0;
  for (const [k, v] of metrics) if ((k === name || k.startsWith(`${name}{`)) && k.includes(labelFilter)) n += v;
  return n;
}
