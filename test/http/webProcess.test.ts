import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnTs, stopAll, type Spawned } from '../support/processes.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';
import { TOKEN } from './support.js';

let db: TestDb;
const spawned: Spawned[] = [];

beforeAll(async () => {
  db = await createTestDb('http_proc');
});
afterAll(async () => {
  await stopAll(spawned);
  await db?.drop();
});

describe('workers/web.ts as a process', () => {
  it('serves, then on SIGTERM finishes and exits 0; the token is not in its output', async () => {
    const p = spawnTs('workers/web.ts', { DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix('proc'), PORT: '0', API_TOKEN: TOKEN, LOG_LEVEL: 'debug' });
    spawned.push(p);
    const url = await waitFor(() => /"url":"(http:\/\/[^"]+)"/.exec(p.output())?.[1], { timeoutMs: 30_000, what: 'listening line' });
    expect((await fetch(`${url}/health`)).status).toBe(200);
    expect((await fetch(`${url}/api/events/overview`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    p.child.kill('SIGTERM');
    const { code } = await p.exited;
    expect(code).toBe(0);
    expect(p.output()).toMatch(/shutdown complete/);
    expect(p.output()).not.toContain(TOKEN);
  });

  it('refuses to start in production without API_TOKEN (exit 2, plain message)', async () => {
    const env: Record<string, string> = { DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix('proc'), PORT: '0', NODE_ENV: 'production', API_TOKEN: '' };
    const p = spawnTs('workers/web.ts', env);
    spawned.push(p);
    const { code } = await p.exited;
    expect(code).toBe(2);
    expect(p.output()).toMatch(/API_TOKEN: required when NODE_ENV=production/);
  });
});
