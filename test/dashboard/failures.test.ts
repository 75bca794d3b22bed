import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorkerHost, type WorkerHost } from '../../src/app/workerHost.js';
import { sampleEvent } from '../../src/domain/index.js';
import { AlertNotificationHandler } from '../../src/handlers/index.js';
import { waitFor } from '../support/db.js';
import { launchChromium, numberIn, openDashboard, OPERATOR, screenshot, startDashboardHarness, waitForPage, type DashboardHarness } from './support.js';

const HOOK = AlertNotificationHandler.name;
/** Failures of another consumer, recorded beside the webhook's: the consumer filter must leave them alone. */
const OTHER = 'AlertInboxHandler';
const ALERTS = 50;

let h: DashboardHarness;
let browser: Browser;
let host: WorkerHost;
let receiver: Server;
let failing = true;
const delivered = new Set<string>();

beforeAll(async () => {
  receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (!failing) delivered.add(String(req.headers['idempotency-key']));
      res.writeHead(failing ? 500 : 200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const port = (receiver.address() as AddressInfo).port;
  h = await startDashboardHarness(
    'dash_failures',
    { ALERT_WEBHOOK_URL: `http://127.0.0.1:${port}/alerts`, ALERT_WEBHOOK_SECRET: 'dash-secret', JOB_ATTEMPTS: '2', JOB_BACKOFF_MS: '50' },
    { handlers: [AlertNotificationHandler], projections: [] },
  );
  host = await startWorkerHost(h.c, ['handlers', 'relay']);
  const alerts = Array.from({ length: ALERTS }, (_, i) => ({ type: 'AlertTriggered' as const, payload: sampleEvent('AlertTriggered', { alertId: `dash-a${i}`, monitorId: `m-${i}` }).payload }));
  const stored = await h.c.bus.dispatchMany(alerts);
  await waitFor(async () => (await h.api(`/api/events/failures?consumer=${HOOK}&limit=1`)).total === ALERTS, { timeoutMs: 90_000, intervalMs: 200, what: `${ALERTS} webhook failures` });
  await h.c.failures.record(OTHER, 'handler', stored.slice(0, 7).map((s) => ({ eventId: s.id, message: 'inbox store unavailable' })), 3, undefined);
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await host?.close(5000);
  await h?.close();
  receiver?.close();
});

describe('failures explorer in a real browser', () => {
  it('dashboard-bulk-retry-50-webhook-failures: filter by consumer, open one, dry run (count and consumers), confirm after the receiver recovered: all 50 resolve, the other consumer’s stay open, the audit log shows the action with its counts', async () => {
    const s = await openDashboard(browser, h, 'failures');
    const page = s.page;
    try {
      // Unfiltered: 57 open failures on two pages of 50.
      await waitForPage(() => page.getByTestId('failures-total').getAttribute('data-total'), (t) => t === String(ALERTS + 7), 'the unfiltered total');
      expect(await page.getByTestId('failures-table').locator('tbody tr').count()).toBe(50);
      await page.getByTestId('page-next').click();
      await waitForPage(() => page.getByTestId('failures-table').locator('tbody tr').count(), (n) => n === 7, 'the second page');
      const pageTwo = await page.getByTestId('failures-table').locator('tbody tr td[data-col="consumer"]').allTextContents();
      await page.getByTestId('page-prev').click();
      await waitForPage(() => page.getByTestId('failures-table').locator('tbody tr').count(), (n) => n === 50, 'back on the first page');
      const pageOne = await page.getByTestId('failures-table').locator('tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-testid')));
      expect(new Set(pageOne).size).toBe(50);
      expect(pageTwo).toHaveLength(7);

      // Filter by consumer: exactly the webhook's 50.
      await page.getByTestId('filter-consumer').fill(HOOK);
      await page.getByTestId('filter-apply').click();
      await waitForPage(() => page.getByTestId('failures-total').getAttribute('data-total'), (t) => t === String(ALERTS), 'the filtered total');
      expect(new Set(await page.getByTestId('failures-table').locator('td[data-col="consumer"]').allTextContents())).toEqual(new Set([HOOK]));
      expect(await page.getByTestId('page-next').isDisabled()).toBe(true);

      // Open one: its error, stack and payload.
      await page.getByTestId('failures-table').locator('tbody tr').first().click();
      const detail = page.locator('[data-testid^="failure-detail-"]');
      await detail.waitFor({ timeout: 20_000 });
      expect(await page.getByTestId('detail-error').textContent()).toMatch(/HTTP 500/);
      expect(await page.getByTestId('detail-payload').textContent()).toMatch(/"alertId": "dash-a\d+"/);
      expect(await detail.textContent()).toMatch(/2 attempts/);
      await screenshot(page, 'failures');

      // Dry run: how many and which consumers; nothing is retried yet.
      await page.getByTestId('bulk-retry').click();
      const preview = page.getByTestId('bulk-preview');
      await preview.waitFor({ timeout: 20_000 });
      expect(await preview.getAttribute('data-matched')).toBe(String(ALERTS));
      const consumers = await page.getByTestId('bulk-preview-consumers').locator('li').evaluateAll((lis) => lis.map((li) => [li.getAttribute('data-consumer'), li.getAttribute('data-count')]));
      expect(consumers).toEqual([[HOOK, String(ALERTS)]]);
      expect((await h.api(`/api/events/failures?consumer=${HOOK}&limit=1`)).total).toBe(ALERTS);
      expect((await h.api('/api/events/audit')).entries).toEqual([]);
      await screenshot(page, 'failures-dry-run');

      // The receiver recovers; the operator confirms.
      failing = false;
      await page.getByTestId('bulk-confirm').click();
      const result = page.getByTestId('bulk-result');
      await result.waitFor({ timeout: 30_000 });
      expect(await result.getAttribute('data-done')).toBe(String(ALERTS));

      // Retried failures are `retrying` until their work succeeds, then `resolved` (in the same transaction as the work).
      await waitFor(async () => (await h.api(`/api/events/failures?consumer=${HOOK}&status=resolved&limit=1`)).total === ALERTS, { timeoutMs: 60_000, intervalMs: 200, what: 'every webhook failure resolved' });
      expect((await h.api(`/api/events/failures?consumer=${HOOK}&status=all&limit=1`)).total).toBe(ALERTS);
      expect(delivered.size).toBe(ALERTS);
      expect((await h.api(`/api/events/failures?consumer=${OTHER}&limit=1`)).total).toBe(7);
      await page.getByTestId('filter-apply').click();
      await waitForPage(() => page.getByTestId('failures-total').getAttribute('data-total'), (t) => t === '0', 'no open webhook failures on the page');
      await page.getByTestId('failures-empty').waitFor();

      // The audit log: who, what, and the counts.
      await page.goto(`${h.url}/dashboard#audit`);
      const row = page.getByTestId('audit-table').locator('tbody tr').first();
      await row.waitFor({ timeout: 20_000 });
      expect(await page.getByTestId('audit-table').locator('tbody tr').count()).toBe(1);
      expect(await row.locator('td[data-col="action"]').textContent()).toBe('bulk-retry');
      expect(await row.locator('td[data-col="actor"]').textContent()).toBe(OPERATOR);
      expect(await row.locator('td[data-col="filter"]').textContent()).toBe(`consumer: ${HOOK}`);
      const counts = (await row.locator('td[data-col="counts"]').textContent())!;
      expect(counts).toContain(`matched: ${ALERTS}`);
      expect(counts).toContain(`retried: ${ALERTS}`);
      await screenshot(page, 'audit');

      await page.goto(`${h.url}/dashboard#overview`);
      await waitForPage(() => numberIn(page, 'overview-open-failures'), (n) => n === 7, 'the overview’s open failures');
      expect(s.offsite).toEqual([]);
      expect(s.errors).toEqual([]);
    } finally {
      await screenshot(page, 'failures-last-seen').catch(() => {});
      await s.context.close();
    }
  });

  it('dashboard-bulk-resolve-needs-note: resolving the filtered set asks for a note, then resolves exactly the previewed failures', async () => {
    const s = await openDashboard(browser, h, 'failures');
    const page = s.page;
    try {
      await page.getByTestId('filter-consumer').fill(OTHER);
      await page.getByTestId('filter-q').fill('inbox store');
      await page.getByTestId('filter-apply').click();
      await waitForPage(() => page.getByTestId('failures-total').getAttribute('data-total'), (t) => t === '7', 'the other consumer’s failures');
      // A time range that ends before they failed matches none of them (the browser runs in UTC).
      const before = new Date(Date.now() - 3_600_000).toISOString().slice(0, 16);
      await page.getByTestId('filter-until').fill(before);
      await page.getByTestId('filter-apply').click();
      await waitForPage(() => page.getByTestId('failures-total').getAttribute('data-total'), (t) => t === '0', 'no failures before an hour ago');
      await page.getByTestId('filter-until').fill('');
      await page.getByTestId('filter-since').fill(before);
      await page.getByTestId('filter-apply').click();
      await waitForPage(() => page.getByTestId('failures-total').getAttribute('data-total'), (t) => t === '7', 'all of them since an hour ago');
      await page.getByTestId('bulk-resolve').click();
      await page.getByTestId('bulk-preview').waitFor({ timeout: 20_000 });
      expect(await page.getByTestId('bulk-preview').getAttribute('data-matched')).toBe('7');
      await page.getByTestId('bulk-confirm').click();
      await page.getByText('A note is required').waitFor({ timeout: 10_000 });
      expect((await h.api(`/api/events/failures?consumer=${OTHER}&limit=1`)).total).toBe(7);

      await page.getByTestId('bulk-resolve').click();
      await page.getByTestId('bulk-note').fill('inbox rebuilt from scratch');
      await page.getByTestId('bulk-confirm').click();
      await page.getByTestId('bulk-result').waitFor({ timeout: 20_000 });
      expect(await page.getByTestId('bulk-result').getAttribute('data-done')).toBe('7');
      expect((await h.api(`/api/events/failures?consumer=${OTHER}&limit=1`)).total).toBe(0);
      const [entry] = (await h.api('/api/events/audit?limit=1')).entries;
      expect(entry).toMatchObject({ action: 'bulk-resolve', actor: OPERATOR, filter: { consumer: OTHER, q: 'inbox store', since: new Date(`${before}Z`).toISOString() }, counts: { matched: 7, resolved: 7 }, details: { note: 'inbox rebuilt from scratch' } });
    } finally {
      await s.context.close();
    }
  });
});
