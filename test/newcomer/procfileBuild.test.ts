// `npm run build`, then the Procfile's processes as production runs them: compiled JavaScript under
// NODE_ENV=production, the release step first, then web + worker + replay side by side.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { sql } from 'slonik';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createEventGenerator } from '../../src/demo/eventGenerator.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';
import { ROOT } from '../support/processes.js';

const procfile = Object.fromEntries(
  readFileSync(join(ROOT, 'Procfile'), 'utf8')
    .split('\n')
    .filter((l) => l.includes(':'))
    .map((l) => [l.slice(0, l.indexOf(':')).trim(), l.slice(l.indexOf(':') + 1).trim()]),
);

// Inside the repository so compiled files resolve node_modules as dist/ does; scratch/ is git-ignored.
const outDir = join(ROOT, 'scratch', `newcomer-build-${randomBytes(4).toString('hex')}`);

interface Proc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** Runs a Procfile command with `dist/` pointing at this test's build. */
function run(command: string, env: Record<string, string>): Proc {
  const [bin, ...args] = command.split(' ');
  const resolved = args.map((a) => a.replace(/^dist\//, `${outDir}/`));
  const child = spawn(bin === 'node' ? process.execPath : bin!, resolved, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return { child, output: () => out, exited: new Promise((r) => child.on('exit', (code) => r(code))) };
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

let db: TestDb;
const procs: Proc[] = [];

beforeAll(async () => {
  const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', outDir], { cwd: ROOT, encoding: 'utf8' });
  expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0);
  // dist/ sits beside migrations/ in a real build; give this build the same neighbour.
  mkdirSync(outDir, { recursive: true });
  symlinkSync(join(ROOT, 'migrations'), join(outDir, 'migrations'));
  db = await createTestDb('procfile', { migrate: false });
});
afterAll(async () => {
  for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await Promise.all(procs.map((p) => p.exited));
  await db?.drop();
  rmSync(outDir, { recursive: true, force: true });
});

describe('npm run build and the Procfile', () => {
  it('compiles every Procfile entry point', () => {
    for (const command of Object.values(procfile)) {
      const target = /^node dist\/(\S+\.js)$/.exec(command)?.[1];
      if (target) expect(existsSync(join(outDir, target)), `${command} after build`).toBe(true);
    }
  });

  it('the compiled start explains an unreachable Postgres', async () => {
    const url = 'postgres://postgres@127.0.0.1:1/hdtickets';
    // EMBEDDED_SERVICES=off: without it npm start would run an embedded PostgreSQL instead (startEmbedded.test.ts).
    const p = run(`node dist/scripts/start.js`, { DATABASE_URL: url, EMBEDDED_SERVICES: 'off' });
    procs.push(p);
    expect(await p.exited).not.toBe(0);
    expect(p.output()).toContain(`Cannot reach PostgreSQL at ${url}`);
  });

  it('release, then web + worker + replay in production mode: events posted to the API reach the read models; SIGTERM exits 0', async () => {
    const port = await freePort();
    const token = randomBytes(24).toString('hex');
    const env = { NODE_ENV: 'production', DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix('procfile'), API_TOKEN: token, PORT: String(port), LOG_LEVEL: 'warn', SHUTDOWN_GRACE_MS: '10000' };

    const release = run(procfile.release!, env);
    procs.push(release);
    expect(await release.exited, release.output()).toBe(0);

    const fleet = ['web', 'worker', 'replay'].map((name) => run(procfile[name]!, env));
    procs.push(...fleet);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await fetch(`${base}/ready`).catch(() => null))?.status === 200, { timeoutMs: 30_000, intervalMs: 200, what: 'web /ready' });

    const events = createEventGenerator({ seed: 11, streams: 50, runId: 'procfile' }).batch(300);
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    expect((await fetch(`${base}/api/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ events }) })).status).toBe(401);
    const posted = await fetch(`${base}/api/events`, { method: 'POST', headers: auth, body: JSON.stringify({ events }) });
    expect(posted.status, await posted.clone().text()).toBe(201);

    const n = z.object({ n: z.number() });
    await waitFor(
      async () => {
        const lag = await db.pool.oneFirst(sql.type(n)`
          SELECT coalesce(sum(s.version - coalesce(c.version, 0)), 0)::int8 AS n
          FROM event_streams s LEFT JOIN projection_checkpoints c ON c.stream_id = s.stream_id
          WHERE s.stream_type IN ('ticket', 'purchase')`);
        const rows = await db.pool.oneFirst(sql.type(n)`SELECT (SELECT count(*) FROM ticket_read_models) + (SELECT count(*) FROM purchase_read_models) AS n`);
        return lag === 0 && rows > 0;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the worker to project every posted event' },
    );

    for (const p of fleet) p.child.kill('SIGTERM');
    const codes = await Promise.all(fleet.map((p) => p.exited));
    expect(codes, fleet.map((p) => p.output()).join('\n---\n')).toEqual([0, 0, 0]);
  });
});
