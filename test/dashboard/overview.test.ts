import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventGenerator } from '../../src/demo/eventGenerator.js';
import { sampleEvent } from '../../src/domain/index.js';
import { launchChromium, numberIn, openDashboard, screenshot, startDashboardHarness, TOKEN, waitForPage, type DashboardHarness } from './support.js';

let h: DashboardHarness;
let browser: Browser;
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

// No workers run here: what was dispatched stays owed, so the numbers hold still while page and API are compared.
beforeAll(async () => {
  h = await startDashboardHarness('dash_overview', { INGEST_TOKENS: 'scraper-a:producer-token-0123456789abcdef' });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await h?.close();
});

describe('dashboard access', () => {
  it('dashboard-without-credentials: 401 with a Basic challenge on the page and on its assets; a producer token gets 403; the operator token (Basic or Bearer) gets in', async () => {
    for (const path of ['/dashboard', '/dashboard/assets/main.js', '/dashboard/assets/uPlot.iife.min.js']) {
      const none = await fetch(h.url + path);
      expect(none.status, path).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Basic /);
      expect((await fetch(h.url + path, { headers: { authorization: basic('admin', 'wrong-token-000000000') } })).status, path).toBe(401);
      expect((await fetch(h.url + path, { headers: { authorization: 'Bearer producer-token-0123456789abcdef' } })).status, path).toBe(403);
    }
    const page = await fetch(`${h.url}/dashboard`, { headers: { authorization: basic('admin', TOKEN) } });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain('/dashboard/assets/uPlot.iife.min.js');
    const lib = await fetch(`${h.url}/dashboard/assets/uPlot.iife.min.js`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(lib.status).toBe(200);
    expect(await lib.text()).toMatch(/uPlot/);
  });

  it('dashboard-asset-path-traversal: only the listed files are served', async () => {
    for (const path of ['/dashboard/assets/..%2F..%2F..%2Fpackage.json', '/dashboard/assets/assets.ts', '/dashboard/assets/%2e%2e%2fmount.ts']) {
      const res = await fetch(h.url + path, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(res.status, path).toBe(404);
    }
  });

  it('the banner and the API root name the dashboard', async () => {
    const root = await h.api('/');
    expect(root.dashboard).toBe('/dashboard');
  });
});

describe('overview page in a real browser', () => {
  it('dashboard-overview-equals-api: after events flow, the overview shows the API’s numbers and both charts have points; nothing is fetched from outside the server', async () => {
    const gen = createEventGenerator({ seed: 7, streams: 40, runId: 'dash-ov' });
    await h.c.bus.dispatchMany(gen.batch(300));
    await h.c.bus.dispatchMany(gen.batch(120));
    const s = await openDashboard(browser, h);
    try {
      const api = await h.api('/api/events/overview');
      expect(api.total_events).toBe(420);
      expect(api.owed.events).toBeGreaterThan(0);
      // The page refreshes every 5 s; wait until it shows what the API says (nothing changes meanwhile).
      await waitForPage(() => numberIn(s.page, 'overview-total-events'), (n) => n === api.total_events, 'total events on the page');
      expect(await numberIn(s.page, 'overview-events-today')).toBe(api.events_today);
      expect(await numberIn(s.page, 'overview-open-failures')).toBe(api.failed_processing);
      expect(await numberIn(s.page, 'overview-outbox')).toBe(api.outbox.backlog);
      expect(await numberIn(s.page, 'overview-owed')).toBe(api.owed.events);
      for (const o of api.owed.consumers as { consumer: string; events: number }[]) {
        const cell = s.page.getByTestId(`owed-${o.consumer}`).locator('td[data-col="events"]');
        expect(Number((await cell.textContent())!.replace(/,/g, '')), o.consumer).toBe(o.events);
      }
      for (const [queue, depth] of Object.entries(api.queues as Record<string, Record<string, number>>)) {
        const cell = s.page.getByTestId(`queue-${queue}`).locator('td[data-col="waiting"]');
        expect(Number((await cell.textContent())!.replace(/,/g, '')), queue).toBe(depth.waiting);
      }
      expect(await s.page.getByTestId('overview-xmin-age').textContent()).toMatch(/\d/);
      expect(await numberIn(s.page, 'overview-rate')).toBeGreaterThan(0);

      // Events chart: one series per stored type, with points; lag chart: a series per consumer owing work.
      const types = (api.event_types as { type: string }[]).map((t) => t.type).sort();
      const events = s.page.getByTestId('chart-events');
      await waitForPage(async () => Number(await events.getAttribute('data-points')), (n) => n > 0, 'points in the events chart');
      expect(JSON.parse((await events.getAttribute('data-series'))!).sort()).toEqual(types);
      await events.locator('canvas').first().waitFor();
      const lag = s.page.getByTestId('chart-lag');
      await waitForPage(async () => Number(await lag.getAttribute('data-points')), (n) => n > 0, 'points in the lag chart');
      const owing = (api.owed.consumers as { consumer: string; events: number }[]).filter((o) => o.events > 0).map((o) => o.consumer);
      expect(JSON.parse((await lag.getAttribute('data-series'))!)).toEqual(expect.arrayContaining(owing));
      await screenshot(s.page, 'overview');

      expect(s.offsite).toEqual([]);
      expect(s.errors).toEqual([]);
    } finally {
      await s.context.close();
    }
  });
});

describe('live tail in a real browser', () => {
  it('dashboard-live-tail: events appended while the page is open appear in the list, newest first, each once; a type filter shows only that type', async () => {
    const s = await openDashboard(browser, h, 'tail');
    try {
      const state = s.page.getByTestId('tail-state');
      await waitForPage(() => state.textContent(), (t) => t === 'connected', 'the stream to connect');
      const stored = await h.c.bus.dispatchMany([sampleEvent('TicketSoldOut'), sampleEvent('PlatformStatusChanged'), sampleEvent('TicketSoldOut')]);
      const items = s.page.getByTestId('tail-list').locator('li');
      await waitForPage(() => items.count(), (n) => n >= 3, 'three events in the tail');
      const shown = await items.evaluateAll((lis) => lis.map((li) => [Number(li.getAttribute('data-position')), li.getAttribute('data-type')]));
      // Newest (highest global position) first.
      expect(shown).toEqual(stored.map((e) => [e.position, e.type]).sort((a, b) => (b[0] as number) - (a[0] as number)));
      await screenshot(s.page, 'tail');

      await s.page.getByTestId('tail-type').fill('PlatformStatusChanged');
      await s.page.getByTestId('tail-type').press('Enter');
      await waitForPage(() => state.textContent(), (t) => t === 'connected', 'the filtered stream to connect');
      const more = await h.c.bus.dispatchMany([sampleEvent('TicketSoldOut'), sampleEvent('PlatformStatusChanged')]);
      await waitForPage(() => items.count(), (n) => n >= 1, 'the filtered event');
      // The unfiltered TicketSoldOut came first; had the filter not held, it would be listed too.
      const last = more.find((e) => e.type === 'PlatformStatusChanged')!;
      await waitForPage(() => items.first().getAttribute('data-position'), (p) => p === String(last.position), 'the PlatformStatusChanged event');
      expect(await items.evaluateAll((lis) => lis.map((li) => li.getAttribute('data-type')))).toEqual(['PlatformStatusChanged']);
      expect(s.errors).toEqual([]);
    } finally {
      await s.context.close();
    }
  });
});

