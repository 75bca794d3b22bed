import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { Container, ContainerOptions } from '../../src/app/container.js';
import { startWebServer, type WebServer } from '../../src/http/server.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';
import { ROOT } from '../support/processes.js';
import { captureContainer, LogCapture, TOKEN } from '../http/support.js';

export { TOKEN };
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Screenshots of each page, kept as test artifacts (git-ignored). */
export const ARTIFACTS = join(ROOT, 'test-artifacts', 'dashboard');
/** The Basic-auth user name the browser logs in with: the API records it as the actor. */
export const OPERATOR = 'ops-alice';

export interface DashboardHarness {
  db: TestDb;
  c: Container;
  server: WebServer;
  url: string;
  logs: LogCapture;
  /** GET/POST with the operator token, returning the envelope's data (throws on an error envelope). */
  api<T = any>(path: string, init?: { method?: string; body?: unknown }): Promise<T>;
  close(): Promise<void>;
}

/** A web process like `npm run web` (lag sampled every 300 ms instead of 10 s), on its own database and queue prefix. */
export async function startDashboardHarness(label: string, env: Record<string, string> = {}, options: ContainerOptions = {}): Promise<DashboardHarness> {
  const db = await createTestDb(label);
  const logs = new LogCapture();
  const c = await captureContainer({ DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix(label), API_TOKEN: TOKEN, ...env }, logs, options);
  const server = await startWebServer(c, { port: 0, host: '127.0.0.1', lagSampleMs: 300 });
  return {
    db,
    c,
    server,
    url: server.url,
    logs,
    async api(path, init = {}) {
      const res = await fetch(server.url + path, {
        method: init.method ?? 'GET',
        headers: { authorization: `Bearer ${TOKEN}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: init.body !== undefined ? JSON.stringify(init.body) : undefined,
      });
      const body = (await res.json()) as { success: boolean; data: any; error?: unknown };
      if (!body.success) throw new Error(`${path}: HTTP ${res.status} ${JSON.stringify(body.error)}`);
      return body.data;
    },
    async close() {
      await server.close();
      await Promise.all([...Object.values(c.queues), ...c.routes.map((r) => c.consumerQueues.own(r.name))].map((q) => q.obliterate({ force: true }).catch(() => {})));
      await c.close();
      await db.drop();
    },
  };
}

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium); .ci/run does this`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

export interface OperatorSession {
  context: BrowserContext;
  page: Page;
  /** Requests the page made to anywhere but the server under test (must stay empty: the dashboard works offline). */
  offsite: string[];
  /** Console errors and uncaught exceptions (a CSP violation or a script error shows up here). */
  errors: string[];
}

/** A browser context logged in as an operator (Basic auth, the token as password), with /dashboard open. */
export async function openDashboard(browser: Browser, h: DashboardHarness, hash = 'overview'): Promise<OperatorSession> {
  const context = await browser.newContext({ httpCredentials: { username: OPERATOR, password: TOKEN }, viewport: { width: 1400, height: 1000 }, timezoneId: 'UTC' });
  const page = await context.newPage();
  const offsite: string[] = [];
  const errors: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith(h.url) && !r.url().startsWith('data:')) offsite.push(r.url());
  });
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  const res = await page.goto(`${h.url}/dashboard#${hash}`);
  if (res?.status() !== 200) throw new Error(`/dashboard answered ${res?.status()}`);
  return { context, page, offsite, errors };
}

/** Text of an element, digits only (thousands separators dropped), as a number. */
export async function numberIn(page: Page, testid: string): Promise<number> {
  const text = (await page.getByTestId(testid).textContent({ timeout: 20_000 })) ?? '';
  return Number(text.replace(/[^0-9.-]/g, ''));
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Polls a value shown in the page until `ok` holds (the page refreshes on its own timers). */
export async function waitForPage<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string, timeoutMs = 30_000): Promise<T> {
  let last: T | undefined;
  await waitFor(async () => ok((last = await read())), { timeoutMs, intervalMs: 200, what: `${what} (last: ${JSON.stringify(last)})` });
  return last!;
}
