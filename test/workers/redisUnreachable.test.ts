import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';
import { spawnTs, stopAll, type Spawned } from '../support/processes.js';
import { freePort, PrivateRedis } from '../support/redisServer.js';

// The trap: a process that cannot reach Redis either exited (and a platform restarted it in a loop) or
// spun on reconnects writing a line per attempt. It must wait quietly and start when Redis comes.
let db: TestDb;
let redis: PrivateRedis | undefined;
const procs: Spawned[] = [];

beforeAll(async () => {
  db = await createTestDb('redis_unreachable');
});
afterAll(async () => {
  await stopAll(procs);
  await redis?.destroy();
  await db?.drop();
});

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime are fields 14 and 15 of stat; index 11 and 12 after the command name.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

describe('Redis unreachable at start', () => {
  it('redis-unreachable-no-log-storm: web, worker and replay pointed at a closed Redis port for 30 s each write < 200 lines and use < 20 % of a core, stay up, start by themselves when Redis appears, and are as quiet when it goes away for 30 s while they run', async () => {
    const port = await freePort();
    const webPort = await freePort();
    const env = { DATABASE_URL: db.url, REDIS_URL: `redis://127.0.0.1:${port}`, QUEUE_PREFIX: testPrefix('redis-closed'), LOG_LEVEL: 'info' };
    const started = Date.now();
    procs.push(spawnTs('workers/web.ts', { ...env, PORT: String(webPort) }), spawnTs('workers/worker.ts', env), spawnTs('workers/replay.ts', env));
    // The web answers health checks while it waits: alive, not ready.
    const health = await waitFor(async () => (await fetch(`http://127.0.0.1:${webPort}/health`).catch(() => null))?.status, { timeoutMs: 20_000, intervalMs: 200, what: 'the waiting web process to answer /health' });
    expect(health).toBe(200);
    expect((await fetch(`http://127.0.0.1:${webPort}/ready`)).status).toBe(503);
    await new Promise((r) => setTimeout(r, Math.max(0, 30_000 - (Date.now() - started))));
    const seconds = (Date.now() - started) / 1000;
    for (const p of procs) {
      expect(p.child.exitCode, p.output().slice(-2000)).toBeNull();
      const lines = p.output().split('\n').filter(Boolean).length;
      const cpu = cpuSeconds(p.child.pid!) / seconds;
      console.info(`${p.child.spawnargs.at(-1)}: ${lines} lines, ${(cpu * 100).toFixed(1)} % of a core over ${seconds.toFixed(0)} s`);
      expect(lines).toBeLessThan(200);
      expect(cpu).toBeLessThan(0.2);
    }
    // Redis appears on that port: every process starts without a restart.
    redis = new PrivateRedis(port);
    await redis.start();
    await waitFor(() => procs[0]!.output().includes('web server listening') && procs[1]!.output().includes('worker started') && procs[2]!.output().includes('replay worker started'), {
      timeoutMs: 30_000,
      intervalMs: 200,
      what: 'the processes to start once Redis is there',
    });
    await waitFor(async () => (await fetch(`http://127.0.0.1:${webPort}/ready`).catch(() => null))?.status === 200, { timeoutMs: 20_000, intervalMs: 200, what: '/ready 200' });

    // And once running: Redis goes away for 30 s. Reconnects back off and warnings are rate-limited.
    const linesBefore = procs.map((p) => p.output().split('\n').filter(Boolean).length);
    const cpuBefore = procs.map((p) => cpuSeconds(p.child.pid!));
    await redis.kill();
    const down = Date.now();
    await new Promise((r) => setTimeout(r, 30_000));
    const downSeconds = (Date.now() - down) / 1000;
    procs.forEach((p, i) => {
      expect(p.child.exitCode, p.output().slice(-2000)).toBeNull();
      const lines = p.output().split('\n').filter(Boolean).length - linesBefore[i]!;
      const cpu = (cpuSeconds(p.child.pid!) - cpuBefore[i]!) / downSeconds;
      console.info(`${p.child.spawnargs.at(-1)} while Redis was down: ${lines} lines, ${(cpu * 100).toFixed(1)} % of a core over ${downSeconds.toFixed(0)} s`);
      if (lines >= 200) console.error(p.output().slice(-3000));
      expect(lines).toBeLessThan(200);
      expect(cpu).toBeLessThan(0.2);
    });
    await redis.start();
    await waitFor(async () => (await fetch(`http://127.0.0.1:${webPort}/ready`).catch(() => null))?.status === 200, { timeoutMs: 20_000, intervalMs: 200, what: '/ready 200 after Redis came back' });
  }, 150_000);
});
