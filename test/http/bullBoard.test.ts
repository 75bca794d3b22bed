import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHarness, TOKEN, type Harness } from './support.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let h: Harness;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium); .ci/run does this`);
  h = await startHarness('http_board');
  await h.c.queues.handlers.add('TicketDiscoveredHandler', { consumer: 'TicketDiscoveredHandler', eventIds: [] }, { jobId: 'board-visible-job' });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});
afterAll(async () => {
  await browser?.close();
  await h?.close();
});

describe('bull-board in a real browser', () => {
  it('with credentials (basic auth, token as password) the page lists every queue', async () => {
    const context = await browser.newContext({ httpCredentials: { username: 'admin', password: TOKEN } });
    try {
      const page = await context.newPage();
      const res = await page.goto(`${h.url}/admin/queues`);
      expect(res?.status()).toBe(200);
      for (const name of ['handlers', 'projections', 'replay']) {
        await page.getByText(name, { exact: true }).first().waitFor({ timeout: 20_000 });
      }
      expect(await page.title()).toContain('HD Tickets queues');
    } finally {
      await context.close();
    }
  });

  it('without or with wrong credentials the browser is refused (the Basic challenge is not satisfied)', async () => {
    for (const httpCredentials of [undefined, { username: 'admin', password: 'not-the-token-0000' }]) {
      const context = await browser.newContext(httpCredentials ? { httpCredentials } : {});
      try {
        const page = await context.newPage();
        // Headless Chromium turns an unanswerable Basic challenge into a navigation error rather than showing the 401 page.
        const outcome = await page.goto(`${h.url}/admin/queues`).then((r) => `status ${r?.status()}`, (e: Error) => e.message);
        expect(outcome).toMatch(/ERR_INVALID_AUTH_CREDENTIALS|status 401/);
      } finally {
        await context.close();
      }
    }
  });
});
