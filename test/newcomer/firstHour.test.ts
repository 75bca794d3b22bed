import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, testPrefix, type TestDb } from '../support/db.js';
import { ROOT, spawnTs, stopAll, type Spawned } from '../support/processes.js';
import { freePort } from '../support/redisServer.js';

// What a newcomer met on a clean clone: warnings at install, processes that served 500s or crashed on
// an unmigrated database, README samples that did not match the real output.
const require = createRequire(import.meta.url);
const semver = require('semver') as { satisfies(v: string, range: string): boolean };
const procs: Spawned[] = [];
let db: TestDb;

beforeAll(async () => {
  db = await createTestDb('first_hour', { migrate: false });
});
afterAll(async () => {
  await stopAll(procs);
  await db?.drop();
});

describe('the first hour', () => {
  it('npm-ci-without-ebadengine: every package in the lockfile admits this Node version (npm ci would print EBADENGINE otherwise)', () => {
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { engines?: { node?: string } | string[]; dev?: boolean; optional?: boolean }> };
    const refusing = Object.entries(lock.packages)
      .filter(([, p]) => p.engines && !Array.isArray(p.engines) && p.engines.node && !semver.satisfies(process.version, p.engines.node))
      .map(([name, p]) => `${name} wants node ${(p.engines as { node: string }).node}`);
    expect(refusing).toEqual([]);
  });

  it('unmigrated-database-exits-3: web, worker and replay against a database without the schema exit 3 naming the pending migrations and the command to run', async () => {
    const migrations = readdirSync(join(ROOT, 'migrations')).filter((f) => f.endsWith('.sql')).length;
    const env = { DATABASE_URL: db.url, QUEUE_PREFIX: testPrefix('unmigrated'), PORT: String(await freePort()) };
    const started = ['workers/web.ts', 'workers/worker.ts', 'workers/replay.ts'].map((s) => spawnTs(s, env));
    procs.push(...started);
    for (const p of started) {
      const { code } = await p.exited;
      expect({ script: p.child.spawnargs.at(-1), code }).toEqual({ script: p.child.spawnargs.at(-1), code: 3 });
      expect(p.output()).toContain(`${migrations} migrations pending: run \`npm run migrate\``);
      expect(p.output()).not.toMatch(/^\s+at /m);
    }
  });

  it("readme-banner-sample-matches: README's npm start sample names today's number of migrations and the default demo rate", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const migrations = readdirSync(join(ROOT, 'migrations')).filter((f) => f.endsWith('.sql')).length;
    expect(readme).toMatch(new RegExp(`\\(created just now\\), ${migrations} migration\\(s\\) applied`));
    expect(readme).toContain('~5 events/s from simulated platforms');
    expect(readme).toContain('export API_TOKEN=');
  });

  it('both-services-down-both-reported: with PostgreSQL and Redis both unreachable and EMBEDDED_SERVICES=off, npm start names both and exits 3', async () => {
    const p = spawnTs('scripts/start.ts', { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/hdtickets', REDIS_URL: 'redis://127.0.0.1:1', API_TOKEN: '', EMBEDDED_SERVICES: 'off' });
    procs.push(p);
    expect((await p.exited).code).toBe(3);
    expect(p.output()).toContain('Cannot reach PostgreSQL at postgres://postgres@127.0.0.1:1/hdtickets');
    expect(p.output()).toContain('Cannot reach Redis at redis://127.0.0.1:1');
  });

  it('wrong-role-is-not-unreachable: a role the server refuses is reported as a refused login, without the createdb or start-the-server advice', async () => {
    const url = new URL(db.url);
    url.username = 'no_such_role_hdt';
    const p = spawnTs('workers/worker.ts', { DATABASE_URL: url.toString(), QUEUE_PREFIX: testPrefix('role'), STARTUP_WAIT_MS: '1' });
    procs.push(p);
    expect((await p.exited).code).toBe(3);
    expect(p.output()).toContain('refused the login of role "no_such_role_hdt"');
    expect(p.output()).not.toContain('Cannot reach PostgreSQL');
    expect(p.output()).not.toContain('createdb');
  });
});
