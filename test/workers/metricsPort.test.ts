import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { createEventGenerator } from '../../src/demo/eventGenerator.js';
import { EXIT } from '../../src/exitCodes.js';
import { disposeTestContainer, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';
import { spawnTs, stopAll, type Spawned } from '../support/processes.js';
import { freePort } from '../support/redisServer.js';

const TOKEN = 'metrics-port-operator-token-5c1d';
const PRODUCER = 'metrics-port-producer-token-9e2b';

let db: TestDb;
let producer: Container;
let env: Record<string, string>;
const processes: Spawned[] = [];

/** Sum of every sample of one counter (all label sets) in a Prometheus text exposition. */
function total(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`).exec(line);
    if (m) sum += Number(m[1]);
  }
  return sum;
}

beforeAll(async () => {
  db = await createTestDb('metricsport');
  env = { DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix('metricsport'), RELAY_POLL_MS: '200', API_TOKEN: TOKEN, INGEST_TOKENS: `scraper:${PRODUCER}` };
  producer = await testContainer(env);
});

afterAll(async () => {
  await stopAll(processes);
  await disposeTestContainer(producer);
  await db?.drop();
});

describe('METRICS_PORT', () => {
  it('worker-serves-its-own-metrics: hdt_jobs_processed_total grows as events flow; /health 200; the operator token only', async () => {
    const port = await freePort();
    const worker = spawnTs('workers/worker.ts', { ...env, METRICS_PORT: String(port) });
    processes.push(worker);
    const url = `http://127.0.0.1:${port}`;
    const scrape = async (token: string | null = TOKEN) => fetch(`${url}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

    const health = await waitFor(async () => (await fetch(`${url}/health`).catch(() => null)) ?? false, { timeoutMs: 30_000, intervalMs: 100, what: `the worker's /health (output: ${worker.output()})` }) as Response;
    expect(health.status).toBe(200);
    expect(((await health.json()) as { data: { status: string; process: string } }).data).toMatchObject({ status: 'ok', process: 'worker' });

    const before = await scrape();
    expect(before.status).toBe(200);
    expect(before.headers.get('content-type')).toContain('text/plain');
    const start = total(await before.text(), 'hdt_jobs_processed_total');

    const gen = createEventGenerator({ seed: 14, streams: 5, runId: 'metrics-port' });
    await producer.bus.dispatchMany(gen.batch(20));
    const grown = await waitFor(
      async () => {
        const n = total(await (await scrape()).text(), 'hdt_jobs_processed_total');
        return n > start ? n : false;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'hdt_jobs_processed_total to grow' },
    ) as number;
    await producer.bus.dispatchMany(gen.batch(20));
    await waitFor(async () => total(await (await scrape()).text(), 'hdt_jobs_processed_total') > grown, { timeoutMs: 30_000, intervalMs: 100, what: 'hdt_jobs_processed_total to grow again' });

    // The same credentials as the web process's /metrics.
    expect((await scrape(null)).status).toBe(401);
    expect((await scrape('not-the-token-at-all-0000')).status).toBe(401);
    expect((await scrape(PRODUCER)).status).toBe(403);
    expect((await fetch(`${url}/nope`)).status).toBe(404);
    // No token in the worker's output.
    expect(worker.output()).not.toContain(TOKEN);
    expect(worker.output()).not.toContain(PRODUCER);
  }, 90_000);

  it('a port in use is a clear error naming METRICS_PORT (exit 4, the table\'s port-in-use code)', async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const worker = spawnTs('workers/worker.ts', { ...env, METRICS_PORT: String(port) });
      processes.push(worker);
      const { code } = await worker.exited;
      expect(code, worker.output()).toBe(EXIT.PORT_IN_USE);
      expect(worker.output()).toContain(`METRICS_PORT: port ${port} on 127.0.0.1 is already in use`);
    } finally {
      await new Promise((r) => blocker.close(() => r(undefined)));
    }
  }, 60_000);

  it('replay serves /metrics on METRICS_PORT too', async () => {
    const port = await freePort();
    const replay = spawnTs('workers/replay.ts', { ...env, METRICS_PORT: String(port) });
    processes.push(replay);
    const res = await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } }).catch(() => null)) ?? false, {
      timeoutMs: 30_000,
      intervalMs: 100,
      what: `the replay process's /metrics (output: ${replay.output()})`,
    }) as Response;
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('# TYPE hdt_replay_runs_total counter');
  }, 60_000);
});
