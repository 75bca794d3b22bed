import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/db.js';
import { spawnTs, stopAll, type Spawned } from '../support/processes.js';

// The trap: `npm install && npm start` on a laptop with only Node. Nothing answers at DATABASE_URL or
// REDIS_URL, QUEUE_BACKEND is unset: npm start must run on an embedded PostgreSQL with the queues on
// it, stop it on Ctrl-C without leaving a postgres process behind, and find its data again next time.
const dataDir = mkdtempSync(join(tmpdir(), 'hdt-embedded-'));
const started: Spawned[] = [];
const TOKEN = 'embedded-test-token-0123456789';

afterAll(async () => {
  await stopAll(started);
  // A server a failed assertion left behind: stopped by its pid, never by name.
  for (const pid of postgresOf(dataDir)) process.kill(pid, 'SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

/** PIDs of postgres processes serving this test's data folder (from /proc, so no process is missed). */
function postgresOf(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.includes('postgres') && cmd.includes(dir)) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

function start(): Spawned {
  const p = spawnTs('scripts/start.ts', {
    // Closed ports: nothing in this test can ever listen on port 1.
    DATABASE_URL: 'postgres://postgres@127.0.0.1:1/hdtickets',
    REDIS_URL: 'redis://127.0.0.1:1',
    // Unset, even inside the test run's postgres project.
    QUEUE_BACKEND: '',
    EMBEDDED_SERVICES: 'auto',
    EMBEDDED_DATA_DIR: dataDir,
    PORT: '0',
    DEMO_RATE: '30',
    API_TOKEN: TOKEN,
    LOG_LEVEL: 'info',
  });
  started.push(p);
  return p;
}

async function overviewEvents(p: Spawned): Promise<number> {
  const api = /API\s+(http:\/\/\S+)\/api\/events\/overview/.exec(p.output())?.[1];
  if (!api) return -1;
  const res = await fetch(`${api}/api/events/overview`, { headers: { authorization: `Bearer ${TOKEN}` } }).catch(() => null);
  if (!res?.ok) return -1;
  return ((await res.json()) as { data: { total_events: number } }).data.total_events;
}

async function interrupt(p: Spawned): Promise<number | null> {
  p.child.kill('SIGINT');
  return (await p.exited).code;
}

describe('npm start with only Node installed', () => {
  it('embedded-services-fallback: closed DATABASE_URL and REDIS_URL, no QUEUE_BACKEND: events flow within 60 s on an embedded PostgreSQL with the queues on it; SIGINT exits 0 and leaves no postgres; a second start continues from the same data', { timeout: 240_000 }, async () => {
    const t0 = Date.now();
    const first = start();
    await waitFor(() => first.output().includes('Press Ctrl-C to stop') || first.child.exitCode !== null, { timeoutMs: 60_000, what: 'the banner' });
    expect(first.child.exitCode, first.output()).toBeNull();
    expect(first.output()).toMatch(/embedded\s+PostgreSQL 18 started by npm start .*created just now/);
    expect(first.output()).toMatch(/queues\s+on PostgreSQL .*no Redis answered at redis:\/\/127\.0\.0\.1:1/);
    expect(first.output()).toContain('switch       to real services');
    const flowing = await waitFor(async () => ((await overviewEvents(first)) >= 50 ? overviewEvents(first) : null), { timeoutMs: Math.max(1000, 60_000 - (Date.now() - t0)), intervalMs: 500, what: 'the overview to count events' });
    // The projections run too: the status line reports events projected.
    await waitFor(() => /events [\d,]+ .*projected [1-9]/.test(first.output()), { timeoutMs: 15_000, what: 'a status line with projected events' });
    const before = await overviewEvents(first);
    expect(before).toBeGreaterThanOrEqual(flowing!);
    expect(postgresOf(dataDir).length).toBeGreaterThan(0);

    expect(await interrupt(first), first.output()).toBe(0);
    expect(postgresOf(dataDir)).toEqual([]);

    const second = start();
    await waitFor(() => second.output().includes('Press Ctrl-C to stop') || second.child.exitCode !== null, { timeoutMs: 60_000, what: 'the second banner' });
    expect(second.child.exitCode, second.output()).toBeNull();
    expect(second.output()).toContain('kept from the last run');
    // No stale lock, the same data: the count starts where the first run stopped and grows.
    const resumed = await waitFor(async () => {
      const n = await overviewEvents(second);
      return n >= 0 ? n : null;
    }, { timeoutMs: 30_000, intervalMs: 250, what: 'the second overview' });
    expect(resumed).toBeGreaterThanOrEqual(before);
    await waitFor(async () => (await overviewEvents(second)) > before, { timeoutMs: 30_000, intervalMs: 500, what: 'the count to grow past the first run' });
    expect(await interrupt(second), second.output()).toBe(0);
    expect(postgresOf(dataDir)).toEqual([]);
  });
});
