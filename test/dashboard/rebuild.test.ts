import type { Browser } from 'playwright-core';
import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReplayWorker } from '../../src/app/replayWorker.js';
import { startWorkerHost, type WorkerHost } from '../../src/app/workerHost.js';
import { createEventGenerator } from '../../src/demo/eventGenerator.js';
import { TicketReadModelProjection } from '../../src/projections/index.js';
import { idle, owedEvents, queueCounts } from '../support/app.js';
import { waitFor } from '../support/db.js';
import { launchChromium, openDashboard, OPERATOR, screenshot, startDashboardHarness, waitForPage, type DashboardHarness } from './support.js';

let h: DashboardHarness;
let browser: Browser;
let host: WorkerHost;
let replay: ReturnType<typeof startReplayWorker>;
const NAME = TicketReadModelProjection.name;

beforeAll(async () => {
  // Tiny chunks, so the rebuild (a few hundred chunks) runs across several of the page's 500 ms polls:
  // with 50-event chunks the one-pass rebuild finished between two polls.
  h = await startDashboardHarness('dash_rebuild', { REPLAY_CHUNK_SIZE: '5' });
  host = await startWorkerHost(h.c, ['handlers', 'projections', 'relay']);
  replay = startReplayWorker(h.c);
  const gen = createEventGenerator({ seed: 11, streams: 300, runId: 'dash-rb' });
  for (let i = 0; i < 3000; i += 500) await h.c.bus.dispatchMany(gen.batch(500));
  await waitFor(async () => idle(await queueCounts(h.c)) && (await owedEvents(h.c)) === 0, { timeoutMs: 90_000, intervalMs: 200, what: 'live processing' });
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
  await replay?.close(5000);
  await host?.close(5000);
  await h?.close();
});

describe('projections page in a real browser', () => {
  it('dashboard-rebuild-progress: a rebuild started from the page (with confirmation) shows its progress up to completion, and the table then shows the finished rebuild', async () => {
    const s = await openDashboard(browser, h, 'projections');
    try {
      const row = s.page.getByTestId(`projection-${NAME}`);
      await row.waitFor({ timeout: 20_000 });
      const api = (await h.api('/api/events/projections')).projections.find((p: { name: string }) => p.name === NAME);
      expect(Number((await row.locator('td[data-col="rows"]').textContent())!.replace(/,/g, ''))).toBe(api.rows);
      expect(Number((await row.locator('td[data-col="checkpoint"]').textContent())!.replace(/,/g, ''))).toBe(api.checkpointPosition);
      expect(api.lastRebuild?.finishedAt ?? null).toBeNull();
      await screenshot(s.page, 'projections');

      // Nothing is enqueued until the operator confirms.
      await s.page.getByTestId(`rebuild-button-${NAME}`).click();
      expect(await h.c.queues.replay.count()).toBe(0);
      // Every progress text the page shows, recorded as it changes (a rebuild of 3,000 events is quick).
      await s.page.evaluate(() => {
        const seen: string[] = ((window as any).__rebuildTexts = []);
        new MutationObserver(() => {
          const t = document.querySelector('[data-testid^="rebuild-count-"]')?.textContent;
          if (t && seen[seen.length - 1] !== t) seen.push(t);
        }).observe(document.body, { subtree: true, childList: true, characterData: true });
      });
      await s.page.getByTestId(`rebuild-confirm-${NAME}`).click();

      const state = s.page.getByTestId(`rebuild-state-${NAME}`);
      await waitForPage(() => state.getAttribute('data-state'), (v) => v === 'completed' || v === 'failed', 'the rebuild to finish on the page', 90_000);
      expect(await state.getAttribute('data-state')).toBe('completed');
      const handled = await h.db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`
        SELECT count(*) AS n FROM event_store WHERE event_type = ANY(${sql.array([...TicketReadModelProjection.handledTypes], 'text')})`);
      const finalText = await s.page.getByTestId(`rebuild-count-${NAME}`).textContent();
      const [done, total] = finalText!.split('/').map((x) => Number(x.replace(/[^0-9]/g, '')));
      expect(total).toBeGreaterThan(0);
      expect(done).toBe(total);
      const texts: string[] = await s.page.evaluate(() => (window as any).__rebuildTexts);
      // Progress was shown on the way, not only the end state: a count between none and all came first.
      const counts = texts.map((t) => Number(t.split('/')[0]!.replace(/[^0-9]/g, '')));
      expect(counts.some((n) => n > 0 && n < total!), JSON.stringify(texts)).toBe(true);
      expect(counts).toEqual([...counts].sort((a, b) => a - b));
      expect(await s.page.locator(`[data-testid="rebuild-${NAME}"] progress`).evaluate((p: HTMLProgressElement) => p.value === p.max)).toBe(true);
      await screenshot(s.page, 'projections-rebuilt');

      const after = (await h.api('/api/events/projections')).projections.find((p: { name: string }) => p.name === NAME);
      expect(after.lastRebuild?.finishedAt).toBeTruthy();
      expect(after.status).toBe('live');
      expect(handled).toBeGreaterThan(0);
      // The operator's action is in the audit log, under the user name the browser logged in with.
      const [entry] = (await h.api('/api/events/audit?limit=1')).entries;
      expect(entry).toMatchObject({ action: 'rebuild', actor: OPERATOR, filter: { projection: NAME } });
      await waitForPage(() => row.locator('td').nth(9).textContent(), (t) => !!t && t !== '–', 'the table to show the last rebuild');
      expect(s.errors).toEqual([]);
    } finally {
      await screenshot(s.page, 'projections-last-seen').catch(() => {});
      await s.context.close();
    }
  });
});
