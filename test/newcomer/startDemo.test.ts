import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ADMIN_URL, dbUrl, testPrefix, waitFor } from '../support/db.js';
import { ROOT, spawnTs, stopAll, type Spawned } from '../support/processes.js';

const GRACE_MS = 10_000;
// Not created here: `npm start` must create it, as it does on a newcomer's machine.
const dbName = `hdt_t_start_${randomBytes(4).toString('hex')}`;
const url = dbUrl(dbName);
const started: Spawned[] = [];
let client: pg.Client | null = null;

afterAll(async () => {
  await stopAll(started);
  await client?.end();
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
});

async function counts() {
  const r = await client!.query<{ events: string; rows: string; alerts: string; types: string[]; failures: string }>(`
    SELECT (SELECT count(*) FROM event_store) AS events,
           (SELECT count(*) FROM ticket_read_models) + (SELECT count(*) FROM purchase_read_models) + (SELECT count(*) FROM monitoring_read_models) AS rows,
           (SELECT count(*) FROM event_store WHERE event_type = 'AlertTriggered') AS alerts,
           (SELECT array_agg(DISTINCT event_type) FROM event_store) AS types,
           (SELECT count(*) FROM event_processing_failures WHERE status <> 'resolved' AND consumer <> 'AlertNotificationHandler') AS failures`);
  const row = r.rows[0]!;
  return { events: Number(row.events), rows: Number(row.rows), alerts: Number(row.alerts), types: row.types ?? [], failures: Number(row.failures) };
}

describe('npm start on real Postgres and Redis', () => {
  it('creates its database, shows the demo flowing within 30 s, and exits 0 on Ctrl-C within the grace period', async () => {
    const t0 = Date.now();
    const app = spawnTs('scripts/start.ts', {
      DATABASE_URL: url,
      QUEUE_PREFIX: testPrefix('start'),
      PORT: '0',
      DEMO_RATE: '50',
      SHUTDOWN_GRACE_MS: String(GRACE_MS),
      LOG_LEVEL: 'info',
      // Production-like: the script must generate its own token, not reuse one from the environment.
      API_TOKEN: '',
    });
    started.push(app);

    await waitFor(() => app.output().includes('Press Ctrl-C to stop') || app.child.exitCode !== null, { timeoutMs: 30_000, what: 'the banner' });
    expect(app.child.exitCode, app.output()).toBeNull();
    expect(app.output()).toContain('(created just now)');
    client = new pg.Client({ connectionString: url });
    await client.connect();

    const flowing = (await waitFor(
      async () => {
        const c = await counts();
        return c.events >= 200 && c.rows >= 50 && c.alerts > 0 ? c : null;
      },
      { timeoutMs: Math.max(1000, 30_000 - (Date.now() - t0)), intervalMs: 500, what: 'events, read-model rows and alerts' },
    ))!;
    // Still rising: the demo keeps producing and the workers keep projecting.
    await waitFor(async () => {
      const c = await counts();
      return c.events > flowing.events && c.rows > flowing.rows;
    }, { timeoutMs: 15_000, intervalMs: 500, what: 'counts to keep rising' });

    const final = await counts();
    expect(final.types).toEqual(expect.arrayContaining(['TicketDiscovered', 'TicketPriceChanged', 'PurchaseInitiated', 'PaymentProcessed', 'ScrapingJobStarted', 'ScrapingJobCompleted', 'MonitoringStarted', 'AlertTriggered']));
    expect(final.failures).toBe(0);

    await waitFor(() => /events [\d,]+ \(\+[\d.]+\/s\)/.test(app.output()), { timeoutMs: 12_000, what: 'a status line' });

    const out = app.output();
    const token = /^\s+API token\s+(\S+)/m.exec(out)?.[1];
    const api = /API\s+(http:\/\/\S+)\/api\/events\/overview/.exec(out)?.[1];
    if (api) {
      // Only once the HTTP API (issue 5) is in the checkout.
      expect(token).toBeDefined();
      expect((await fetch(`${api}/health`)).status).toBe(200);
      expect((await fetch(`${api}/api/events/overview`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
      // bull-board with the credentials the banner gives (user admin, the token as password).
      const basic = `Basic ${Buffer.from(`admin:${token}`).toString('base64')}`;
      expect((await fetch(`${api}/admin/queues`, { headers: { authorization: basic } })).status).toBe(200);
      expect((await fetch(`${api}/admin/queues`)).status).toBe(401);
      // The dashboard the banner links, with the same credentials.
      const dashboard = /^\s+dashboard\s+(http:\/\/\S+)\s+\(user: admin, password: the API token below\)/m.exec(out)?.[1];
      expect(dashboard).toBe(`${api}/dashboard`);
      expect((await fetch(dashboard!, { headers: { authorization: basic } })).status).toBe(200);
      expect((await fetch(dashboard!)).status).toBe(401);
      // The printed export line, pasted into a shell, makes README's curl lines (`T=$API_TOKEN`) work.
      const exportLine = /^\s+shell\s+(export API_TOKEN=\S+)/m.exec(out)?.[1];
      expect(exportLine).toBe(`export API_TOKEN=${token}`);
      const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
      const firstLine = /```bash\n(T=\$API_TOKEN; U=http:\/\/127\.0\.0\.1:3000)\n/.exec(readme)?.[1];
      expect(firstLine).toBeDefined();
      const curl = `${exportLine}\n${firstLine!.replace('http://127.0.0.1:3000', api)}\ncurl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $T" $U/api/events/overview`;
      const { API_TOKEN: _drop, ...clean } = process.env;
      expect(execFileSync('bash', ['-c', curl], { env: clean, encoding: 'utf8' })).toBe('200');
    } else {
      expect(out).toContain('API          not available yet');
    }
    // The token goes to the banner only, never into a log line.
    if (token) for (const line of out.split('\n').filter((l) => l.startsWith('{'))) expect(line).not.toContain(token);

    const stopAt = Date.now();
    app.child.kill('SIGINT');
    const { code } = await app.exited;
    expect(code, app.output().slice(-3000)).toBe(0);
    expect(Date.now() - stopAt).toBeLessThan(GRACE_MS);
  });
});
