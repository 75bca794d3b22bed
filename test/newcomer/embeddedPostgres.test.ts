import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type EmbeddedPostgres } from '../../src/demo/embeddedPostgres.js';

// What a killed `npm start` leaves behind must not break the next one: a server still running on the
// data folder (its owner was SIGKILLed) is taken over, not doubled; a lock file whose server is gone
// (machine rebooted, server SIGKILLed) is removed, not obeyed.
const base = mkdtempSync(join(tmpdir(), 'hdt-embedded-pg-'));
const servers: EmbeddedPostgres[] = [];
afterAll(async () => {
  for (const s of servers) await s.stop().catch(() => {});
  rmSync(base, { recursive: true, force: true });
});

/** A pid that certainly belongs to no process any more. */
function deadPid(): number {
  return Number(spawnSync('sh', ['-c', 'echo $$']).stdout.toString().trim());
}

async function query(url: string, text: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await c.query(text);
  } finally {
    await c.end();
  }
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('embedded PostgreSQL', () => {
  it('killed-start-leaves-a-server: the next start takes it over on the same port with the same data, and its stop leaves no postgres', async () => {
    const first = await startEmbeddedPostgres({ baseDir: base });
    servers.push(first);
    expect(first.initialised).toBe(true);
    await query(first.url('postgres'), 'CREATE TABLE kept (n int); INSERT INTO kept VALUES (42)');
    const pid = Number(readFileSync(join(first.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    // As if the npm start that owns it had been SIGKILLed: the owner file names a dead process.
    writeFileSync(join(base, 'postgres.owner'), String(deadPid()));

    const second = await startEmbeddedPostgres({ baseDir: base });
    servers.push(second);
    expect(second.adopted).toBe(true);
    expect(second.port).toBe(first.port);
    expect((await query(second.url('postgres'), 'SELECT n FROM kept')).rows).toEqual([{ n: 42 }]);
    await second.stop();
    expect(isAlive(pid)).toBe(false);
  });

  it('stale-lock-file: a postmaster.pid whose server is gone does not stop the next start, and the data is still there', async () => {
    writeFileSync(join(base, 'postgres', 'postmaster.pid'), `${deadPid()}\n${join(base, 'postgres')}\n0\n1\n`);
    const third = await startEmbeddedPostgres({ baseDir: base });
    servers.push(third);
    expect(third.initialised).toBe(false);
    expect(third.adopted).toBe(false);
    expect((await query(third.url('postgres'), 'SELECT n FROM kept')).rows).toEqual([{ n: 42 }]);
    await third.stop();
  });
});
