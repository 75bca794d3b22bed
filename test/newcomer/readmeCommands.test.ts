import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Container } from '../../src/app/container.js';
import { startWorkerHost, type WorkerHost } from '../../src/app/workerHost.js';
import { createEventGenerator } from '../../src/demo/eventGenerator.js';
import { startWebServer } from '../../src/http/server.js';
import { startReplayWorker } from '../../src/app/replayWorker.js';
import { disposeTestContainer, idle, queueCounts, testContainer } from '../support/app.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';
import { ROOT } from '../support/processes.js';

const run = promisify(execFile);
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const TOKEN = 'readme-test-token-0123456789';

/** The command lines of the bash blocks of one README section (continuations joined). */
function commands(section: string): string[] {
  const start = README.indexOf(`## ${section}`);
  const end = README.indexOf('\n## ', start + 4);
  const body = README.slice(start, end === -1 ? undefined : end);
  const lines: string[] = [];
  for (const block of body.matchAll(/```bash\n([\s\S]*?)```/g)) {
    const joined = block[1]!.replace(/\\\n\s*/g, ' ');
    for (const l of joined.split('\n')) if (l.trim() && !l.trim().startsWith('#')) lines.push(l.trim());
  }
  return lines;
}

let db: TestDb;
let c: Container;
let host: WorkerHost;
let web: Awaited<ReturnType<typeof startWebServer>>;
let replay: ReturnType<typeof startReplayWorker>;
let env: Record<string, string>;

beforeAll(async () => {
  db = await createTestDb('readme_cmds');
  env = { DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix('readme'), API_TOKEN: TOKEN, LOG_LEVEL: 'silent' };
  c = await testContainer(env);
  host = await startWorkerHost(c, ['handlers', 'projections', 'relay']);
  web = await startWebServer(c, { port: 0, host: '127.0.0.1' });
  replay = startReplayWorker(c);
  const gen = createEventGenerator({ seed: 77, streams: 200, runId: 'readme' });
  for (let i = 0; i < 3; i++) await c.bus.dispatchMany(gen.batch(200));
  await c.bus.dispatchMany([{ type: 'TicketDiscovered', payload: { ticketId: 'tm-1', platform: 'ticketmaster', eventName: 'Arsenal vs Chelsea', venue: 'Emirates', eventDate: '2030-05-18T15:00:00Z', quantity: 2, price: { amountMinor: 8500, currency: 'GBP' } } }]);
  await waitFor(async () => idle(await queueCounts(c)), { what: 'seed processing' });
  // The README's examples retry and resolve failures 10 to 13: make failures 1..13 exist.
  await db.pool.query(sql.unsafe`
    INSERT INTO event_processing_failures (consumer, consumer_kind, event_id, stream_id, event_type, global_position, attempts, error_message)
    SELECT 'AlertNotificationHandler', 'handler', e.id, e.stream_id, e.event_type, e.global_position, 5, 'alert webhook answered HTTP 500'
    FROM event_store e ORDER BY e.global_position LIMIT 13`);
});
afterAll(async () => {
  await web?.close();
  await replay?.close(5000);
  await host?.close(5000);
  await disposeTestContainer(c);
  await db?.drop();
});

describe('README commands run as written', () => {
  it('every curl of "HTTP API" answers (and only the placeholder job id is not found)', async () => {
    const lines = commands('HTTP API');
    expect(lines.filter((l) => l.includes('curl')).length).toBeGreaterThanOrEqual(12);
    const shellEnv = { ...process.env, API_TOKEN: TOKEN };
    const prelude: string[] = [];
    for (const line of lines) {
      if (!line.includes('curl')) {
        prelude.push(line.replace('U=http://127.0.0.1:3000', `U=${web.url}`));
        continue;
      }
      const script = [...prelude, line].join('\n');
      const { stdout } = await run('bash', ['-c', script], { env: shellEnv, cwd: ROOT });
      if (line.includes('JOB_ID')) expect(stdout).toMatch(/"success":false/);
      else expect({ line, failed: stdout.includes('"success":false') ? stdout.slice(0, 300) : null }).toEqual({ line, failed: null });
    }
  });

  it('every npm run events:* line of "Replay and monitoring CLI" exits 0', async () => {
    // The rebuild the curl examples started must be done first: one rebuild per projection at a time.
    await waitFor(async () => Object.values(await c.queues.replay.getJobCounts('waiting', 'active')).every((v) => v === 0), { timeoutMs: 60_000, what: 'the API-started rebuild' });
    const lines = commands('Replay and monitoring CLI');
    expect(lines.length).toBeGreaterThanOrEqual(10);
    for (const line of lines) {
      const cmd = line.replace(/^npm run /, 'npm run -s ');
      if (line.includes('--watch')) {
        // Ctrl-C in a terminal signals the whole foreground process group (npm, sh, tsx, node): do the same.
        const child = spawn('bash', ['-c', `exec ${cmd}`], { cwd: ROOT, env: { ...process.env, ...env }, detached: true });
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        await waitFor(() => out.length > 0, { timeoutMs: 30_000, what: 'watch output' });
        process.kill(-child.pid!, 'SIGINT');
        // npm itself re-raises the SIGINT it got (as it does on Ctrl-C in a terminal); the command inside exits cleanly.
        const ended = await new Promise<{ code: number | null; signal: string | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
        expect({ line, ok: ended.code === 0 || ended.signal === 'SIGINT' }).toEqual({ line, ok: true });
        continue;
      }
      const result = await run('bash', ['-c', cmd], { cwd: ROOT, env: { ...process.env, ...env }, timeout: 120_000 }).then(
        () => 0,
        (e: { code?: number; stderr?: string }) => ({ code: e.code, stderr: e.stderr?.slice(0, 500) }),
      );
      expect({ line, result }).toEqual({ line, result: 0 });
    }
  });
});
