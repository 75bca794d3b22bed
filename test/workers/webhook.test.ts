import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { startWorkerHost, type WorkerHost } from '../../src/app/workerHost.js';
import { sampleEvent } from '../../src/domain/index.js';
import { signBody } from '../../src/handlers/alertNotificationHandler.js';
import { ownQueueName } from '../../src/consumers/jobs.js';
import { BULL_BOARD_PATH } from '../../src/http/bullBoard.js';
import { buildServer } from '../../src/http/server.js';
import { AlertNotificationHandler } from '../../src/handlers/index.js';
import { disposeTestContainer, idle, owedEvents, queueCounts, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';

const SECRET = 'webhook-secret-for-tests';
let db: TestDb;
let c: Container;
let host: WorkerHost;
let server: Server;
let failNext = 0;
let alwaysFail = false;
/** 1-based number of the call (counted from the reset) that fails once; 0 = none. */
let failCallNo = 0;
let callNo = 0;
let delayMs = 0;
const calls: { at: number; status: number; body: string; headers: Record<string, string | string[] | undefined> }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      callNo++;
      const status = alwaysFail || failNext-- > 0 || callNo === failCallNo ? 500 : 200;
      setTimeout(() => {
        calls.push({ at: Date.now(), status, body, headers: req.headers });
        res.writeHead(status).end();
      }, delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  db = await createTestDb('webhook');
  c = await testContainer(
    { DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix('hook'), ALERT_WEBHOOK_URL: `http://127.0.0.1:${port}/alerts`, ALERT_WEBHOOK_SECRET: SECRET, JOB_ATTEMPTS: '4', JOB_BACKOFF_MS: '500' },
    { handlers: [AlertNotificationHandler], projections: [] },
  );
  host = await startWorkerHost(c, ['handlers', 'relay']);
});
afterAll(async () => {
  await host?.close(5000);
  await disposeTestContainer(c);
  await db?.drop();
  server?.close();
});

const alert = (alertId: string) => ({ type: 'AlertTriggered', payload: sampleEvent('AlertTriggered', { alertId, monitorId: `m-${alertId}` }).payload });

describe('alert webhook delivery', () => {
  it('receiver fails twice: delivered on attempt 3, exactly once, signed, with the event id as idempotency key', async () => {
    calls.length = 0;
    failNext = 2;
    const { id } = await c.bus.dispatch(alert('a1'));
    await waitFor(() => calls.some((x) => x.status === 200), { what: 'a successful delivery' });
    await waitFor(async () => idle(await queueCounts(c)) && (await owedEvents(c)) === 0, { what: 'job to finish' });
    expect(calls.map((x) => x.status)).toEqual([500, 500, 200]);
    const ok = calls[2]!;
    expect(ok.headers['idempotency-key']).toBe(id);
    expect(ok.headers['x-hdt-signature']).toBe(signBody(SECRET, ok.body));
    expect(JSON.parse(ok.body).alert.alertId).toBe('a1');
    const deliveries = await db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*) AS n FROM alert_deliveries WHERE event_id = ${id}`);
    expect(deliveries).toBe(1);
    expect(await c.failures.countOpen()).toBe(0);
  });

  it('receiver always fails: JOB_ATTEMPTS attempts with exponentially growing delays, one open failure; retry after recovery delivers and resolves', async () => {
    calls.length = 0;
    alwaysFail = true;
    const { id } = await c.bus.dispatch(alert('a2'));
    const failure = (await waitFor(async () => (await c.failures.list()).find((f) => f.event_id === id), { what: 'the failure row' }))!;
    expect(calls).toHaveLength(4);
    const gaps = calls.slice(1).map((x, i) => x.at - calls[i]!.at);
    // Base 500 ms doubling with up to 20 % jitter (plus scheduling noise on a loaded machine): every
    // gap longer than the one before, and the third at least twice the first.
    expect(gaps[0]).toBeGreaterThanOrEqual(400);
    expect(gaps[1]! / gaps[0]!).toBeGreaterThan(1.15);
    expect(gaps[2]! / gaps[1]!).toBeGreaterThan(1.15);
    expect(gaps[2]! / gaps[0]!).toBeGreaterThan(2);
    expect(failure).toMatchObject({ consumer: 'AlertNotificationHandler', status: 'open', attempts: 4, event_type: 'AlertTriggered' });
    expect(failure.error_message).toMatch(/HTTP 500/);
    expect((await c.failures.list({ status: 'all' })).filter((f) => f.event_id === id)).toHaveLength(1);

    alwaysFail = false;
    calls.length = 0;
    await c.failures.retry(failure.id);
    await waitFor(async () => (await c.failures.get(failure.id)).status === 'resolved', { what: 'resolved after retry' });
    expect(calls.map((x) => x.status)).toEqual([200]);
    expect(calls[0]!.headers['idempotency-key']).toBe(id);
  });

  it('resolve marks a failure resolved without running it, and refuses twice', async () => {
    alwaysFail = true;
    calls.length = 0;
    const { id } = await c.bus.dispatch(alert('a3'));
    const failure = (await waitFor(async () => (await c.failures.list()).find((f) => f.event_id === id), { what: 'the failure row' }))!;
    const attempts = calls.length;
    const resolved = await c.failures.resolve(failure.id, 'receiver decommissioned');
    expect(resolved).toMatchObject({ status: 'resolved', resolution_note: 'receiver decommissioned' });
    expect(calls.length).toBe(attempts);
    await expect(c.failures.resolve(failure.id, 'again')).rejects.toThrow(/already resolved/);
    alwaysFail = false;
  });

  it('webhook-k-th-call-fails: 5 alerts in one batch, the receiver fails the 3rd call once: each alert is received exactly once successfully', async () => {
    calls.length = 0;
    callNo = 0;
    failCallNo = 3;
    try {
      const stored = await c.bus.dispatchMany(['k1', 'k2', 'k3', 'k4', 'k5'].map(alert));
      await waitFor(async () => idle(await queueCounts(c)) && (await owedEvents(c)) === 0 && calls.filter((x) => x.status === 200).length >= 5, { what: 'every alert delivered' });
      const ok = calls.filter((x) => x.status === 200).map((x) => x.headers['idempotency-key']).sort();
      expect(ok).toEqual(stored.map((s) => s.id).sort());
      expect(calls.filter((x) => x.status === 500)).toHaveLength(1);
      expect(await c.failures.countOpen()).toBe(0);
    } finally {
      failCallNo = 0;
    }
  });

  it('webhook-slower-than-idle-timeout: a receiver taking 3 s per call holds no transaction open while it is called, and gets exactly one successful call per alert', async () => {
    calls.length = 0;
    delayMs = 3000;
    try {
      const stored = await c.bus.dispatchMany(['s1', 's2'].map(alert));
      const openTx: number[] = [];
      const deadline = Date.now() + 60_000;
      while (calls.filter((x) => x.status === 200).length < 2 && Date.now() < deadline) {
        openTx.push(await db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`
          SELECT count(*) AS n FROM pg_stat_activity
          WHERE datname = current_database() AND state LIKE 'idle in transaction%' AND xact_start < now() - interval '1 second'`));
        await new Promise((r) => setTimeout(r, 100));
      }
      await waitFor(async () => idle(await queueCounts(c)) && (await owedEvents(c)) === 0, { what: 'the job to finish' });
      expect(openTx.length).toBeGreaterThan(20);
      expect(Math.max(...openTx)).toBe(0);
      expect(calls.map((x) => [x.status, x.headers['idempotency-key']]).sort()).toEqual(stored.map((s) => [200, s.id]).sort());
    } finally {
      delayMs = 0;
    }
  });

  it('bull-board-retry-resolves-failure: a job that failed for good, retried from bull-board after the receiver recovered, delivers once and resolves its failure row', async () => {
    calls.length = 0;
    alwaysFail = true;
    const { id } = await c.bus.dispatch(alert('bb1'));
    const failure = (await waitFor(async () => (await c.failures.list()).find((f) => f.event_id === id), { what: 'the failure row' }))!;
    expect(failure.job_id).toBeTruthy();
    alwaysFail = false;
    calls.length = 0;
    const app = await buildServer(c);
    try {
      const queue = ownQueueName('AlertNotificationHandler');
      const res = await app.inject({ method: 'PUT', url: `${BULL_BOARD_PATH}/api/queues/${encodeURIComponent(queue)}/${encodeURIComponent(failure.job_id!)}/retry` });
      expect(res.statusCode, res.body).toBe(204);
      await waitFor(async () => (await c.failures.get(failure.id)).status === 'resolved', { what: 'the failure row resolved by the bull-board retry' });
      expect(calls.filter((x) => x.status === 200).map((x) => x.headers['idempotency-key'])).toEqual([id]);
      expect(await c.failures.countOpen()).toBe(0);
    } finally {
      await app.close();
    }
  });
});
