import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { createContainer } from '../src/app/container.js';
import { loadConfig } from '../src/config.js';
import { startWebServer } from '../src/http/server.js';
import { createLogger } from '../src/logger.js';
import { freshDatabase, median, printTable, type Row } from './support.js';

/**
 * Ingest throughput (POST /api/events, 4 concurrent producers, 10 events per request) with no live
 * stream client, against the same with BENCH_SSE_CLIENTS clients connected to GET /api/events/stream:
 * idle (a `type` filter nothing matches: connected, waiting, heartbeats only) and receiving (every
 * event is written to every client). The clients run in a child process, as remote browsers would, so their
 * parsing does not share the web process's CPU; the web process keeps one poller for all of them.
 * Rounds alternate between the two, and the ratio of medians is reported.
 */
const TOTAL = Number(process.env.BENCH_SSE_EVENTS ?? 5_000);
const CLIENTS = Number(process.env.BENCH_SSE_CLIENTS ?? 100);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const PRODUCERS = 4;
const PER_REQUEST = 10;
const TOKEN = `bench-${randomBytes(12).toString('hex')}`;

const event = (i: number) => ({
  id: randomUUID(),
  type: 'TicketDiscovered',
  payload: { ticketId: `sse-${i}-${randomBytes(3).toString('hex')}`, platform: 'ticketmaster', eventName: 'Arsenal vs Chelsea', venue: 'Emirates', eventDate: '2030-05-18T15:00:00Z', quantity: 2, price: { amountMinor: 8500, currency: 'GBP' } },
});

async function ingest(url: string, total: number): Promise<number> {
  const perProducer = Math.ceil(total / PRODUCERS / PER_REQUEST);
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: PRODUCERS }, async (_, p) => {
      for (let r = 0; r < perProducer; r++) {
        const res = await fetch(`${url}/api/events`, {
          method: 'POST',
          headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
          body: JSON.stringify({ events: Array.from({ length: PER_REQUEST }, (_, i) => event(p * 1_000_000 + r * PER_REQUEST + i)) }),
        });
        if (res.status !== 201) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
        await res.arrayBuffer();
      }
    }),
  );
  return (perProducer * PRODUCERS * PER_REQUEST) / ((performance.now() - t0) / 1000);
}

/** Starts the clients in a child process; resolves once every one of them is connected. */
function startClients(url: string, n: number, query: string): Promise<() => Promise<void>> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--clients', url, String(n), query], { env: { ...process.env, BENCH_SSE_TOKEN: TOKEN }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('connected')) resolve(() => new Promise<void>((done) => (child.once('exit', () => done()), child.kill('SIGTERM'))));
    });
    child.once('exit', (code) => reject(new Error(`SSE clients exited with ${code}`)));
  });
}

export async function runSseBench(): Promise<Row[]> {
  const db = await freshDatabase('sse');
  const config = loadConfig({ ...process.env, DATABASE_URL: db.url, QUEUE_PREFIX: `{hdt-bench-sse-${randomBytes(3).toString('hex')}}`, API_TOKEN: TOKEN, LOG_LEVEL: 'warn', DEMO: 'off' });
  const c = await createContainer(config, createLogger('warn'));
  const server = await startWebServer(c, { port: 0, host: '127.0.0.1' });
  try {
    await ingest(server.url, 500); // warm-up: plans, connections, JIT
    const without: number[] = [];
    const idle: number[] = [];
    const receiving: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      without.push(await ingest(server.url, TOTAL));
      for (const [into, query] of [
        [idle, '?type=SystemMaintenanceNever'],
        [receiving, ''],
      ] as const) {
        const stop = await startClients(server.url, CLIENTS, query);
        into.push(await ingest(server.url, TOTAL));
        await stop();
      }
    }
    const name = (what: string) => `ingest (HTTP, ${PRODUCERS} producers × ${PER_REQUEST} events/request), ${CLIENTS} ${what} live-stream clients`;
    return [
      { benchmark: name('idle'), value: median(idle), unit: 'events/s', baseline: 'same ingest, no live-stream client', baselineValue: median(without) },
      { benchmark: name('receiving (every event)'), value: median(receiving), unit: 'events/s', baseline: 'same ingest, no live-stream client', baselineValue: median(without) },
    ];
  } finally {
    await server.close();
    await Promise.all([...Object.values(c.queues)].map((q) => q.obliterate({ force: true }).catch(() => {})));
    await c.close();
    await db.drop();
  }
}

/** The child: n SSE clients reading (and discarding) every event until SIGTERM. */
async function runClients(url: string, n: number, query: string): Promise<void> {
  let connected = 0;
  const requests: http.ClientRequest[] = [];
  for (let i = 0; i < n; i++) {
    const req = http.get(`${url}/api/events/stream${query}`, { headers: { authorization: `Bearer ${process.env.BENCH_SSE_TOKEN}` }, agent: false }, (res) => {
      if (res.statusCode !== 200) throw new Error(`stream answered ${res.statusCode}`);
      res.on('data', () => {});
      if (++connected === n) process.stdout.write('connected\n');
    });
    req.on('error', () => {});
    requests.push(req);
  }
  process.once('SIGTERM', () => {
    for (const r of requests) r.destroy();
    process.exit(0);
  });
}

if (process.argv[2] === '--clients') {
  await runClients(process.argv[3]!, Number(process.argv[4]), process.argv[5] ?? '');
} else if (import.meta.url === `file://${process.argv[1]}`) {
  printTable('Ingest with live-stream clients', await runSseBench());
  process.exit(0);
}
