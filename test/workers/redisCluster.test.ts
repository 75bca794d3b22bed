import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkRedisOf, PreflightError } from '../../src/app/preflight.js';
import { bareQueuePrefix, clusterOptions, clusterQueuePrefix, keySlot, SlotPipelineCluster } from '../../src/app/redisTopology.js';
import { loadConfig } from '../../src/config.js';
import { createEventGenerator } from '../../src/demo/eventGenerator.js';
import { defaultHandlers } from '../../src/handlers/index.js';
import { defaultProjections } from '../../src/projections/index.js';
import { createTestDb, testPrefix, waitFor, type TestDb } from '../support/db.js';
import { handlerEffectGaps, readModelDiffs } from '../support/effects.js';
import { spawnTs, stopAll, type Spawned } from '../support/processes.js';
import { PrivateRedisCluster } from '../support/redisCluster.js';

// The trap: without a cluster client a worker pointed at a node that did not own the `{hdt}` slot spun
// on MOVED (541,231 log lines in 30 s), a live slot migration stopped all processing until a restart,
// and every key of every queue and the cache sat in one slot, so a cluster spread no load.
const TOKEN = 'cluster-test-token-5e1d9a7c3b';
let cluster: PrivateRedisCluster;
let db: TestDb;
let env: Record<string, string>;
let web: Spawned;
let url: string;
const workers: Spawned[] = [];
const n = z.object({ n: z.number() });

beforeAll(async () => {
  cluster = new PrivateRedisCluster(3);
  db = await createTestDb('redis_cluster', { poolSize: 6 });
  await cluster.start();
  env = {
    DATABASE_URL: db.url,
    // Only the scheme and credentials are used in cluster mode; the nodes come from REDIS_CLUSTER_NODES.
    REDIS_URL: `redis://127.0.0.1:${cluster.nodes[0]!.port}`,
    REDIS_CLUSTER_NODES: cluster.nodesSetting,
    QUEUE_PREFIX: testPrefix('cluster'),
    API_TOKEN: TOKEN,
    JOB_LOCK_MS: '5000',
    RELAY_POLL_MS: '200',
    DATABASE_POOL_SIZE: '5',
    LOG_LEVEL: 'info',
  };
  web = spawnTs('workers/web.ts', { ...env, PORT: '0' });
  for (let i = 0; i < 2; i++) workers.push(spawnTs('workers/worker.ts', env));
  url = await waitFor(() => /"url":"(http:\/\/[^"]+)"/.exec(web.output())?.[1] ?? '', { timeoutMs: 60_000, intervalMs: 100, what: 'the web process to listen' }).catch((e: unknown): never => {
    console.error(web.output().slice(-3000));
    throw e;
  });
  await waitFor(() => workers.every((w) => w.output().includes('worker started')), { timeoutMs: 60_000, intervalMs: 100, what: 'the workers to start' }).catch((e) => {
    console.error(workers.map((w) => w.output().slice(-3000)).join('\n---\n'));
    throw e;
  });
});

afterAll(async () => {
  await stopAll([web, ...workers].filter(Boolean));
  await cluster?.destroy();
  await db?.drop();
});

async function post(events: unknown[]): Promise<void> {
  const res = await fetch(`${url}/api/events`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ events }),
  });
  if (res.status !== 201) throw new Error(`POST /api/events answered ${res.status}: ${await res.text()}`);
}

describe('Redis Cluster', () => {
  it('redis-cluster-slot-migration: 3-master cluster, web + 2 workers with REDIS_CLUSTER_NODES, 2,000 events, then the handlers and projections queues\' slots migrated live while 1,000 more are posted: all 3,000 reach the read models within 60 s, keys on more than one node, < 1,000 log lines per process', async () => {
    const prefix = env.QUEUE_PREFIX!;
    // The slot function the cache batches are split by agrees with Redis.
    for (const key of [clusterQueuePrefix(prefix, 'handlers'), `${bareQueuePrefix(prefix)}:cache:ticket:abc`, 'plain', '{}x', 'a{b}c']) expect({ key, slot: keySlot(key) }).toEqual({ key, slot: await cluster.slotOf(key) });

    const gen = createEventGenerator({ seed: 1100, streams: 300, runId: 'cl' });
    const started = Date.now();
    for (let i = 0; i < 2000; i += 100) await post(gen.batch(100));
    const firstPosted = Date.now();

    // The handlers' and then the projections' queue slot moves to another node while 1,000 more events
    // are posted: one batch of 15 is posted after each key moved, so the slot stays half-moved
    // (clients get ASK and TRYAGAIN) while jobs flow, then its owner changes (MOVED).
    let toPost = 1000;
    const postSome = async () => {
      const size = Math.min(15, toPost);
      if (size <= 0) return;
      toPost -= size;
      await post(gen.batch(size));
    };
    const migrations: { queue: string; slot: number; from: number; to: number; keys: number; ms: number }[] = [];
    for (const queue of ['handlers', 'projections']) {
      const slot = await cluster.slotOf(clusterQueuePrefix(prefix, queue));
      const from = await cluster.ownerOf(slot);
      const to = cluster.nodes.find((x) => x !== from)!;
      const t = Date.now();
      const keys = await cluster.migrateSlot(slot, to, 1, postSome);
      migrations.push({ queue, slot, from: from.port, to: to.port, keys, ms: Date.now() - t });
    }
    while (toPost > 0) await postSome();
    const allPosted = Date.now();

    await waitFor(
      async () => {
        const outbox = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_outbox`);
        const owed = await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM consumer_owed`);
        if (outbox > 0 || owed > 0) return false;
        return (await readModelDiffs(db.pool, defaultProjections)).length === 0 && (await handlerEffectGaps(db.pool, defaultHandlers)).length === 0;
      },
      { timeoutMs: 60_000, intervalMs: 250, what: 'all 3,000 events to reach the read models and handlers' },
    ).catch(async (e) => {
      console.error('models', await readModelDiffs(db.pool, defaultProjections), 'handlers', await handlerEffectGaps(db.pool, defaultHandlers));
      console.error([web, ...workers].map((p) => p.output().slice(-3000)).join('\n---\n'));
      throw e;
    });
    const drained = Date.now();

    expect(await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_store WHERE NOT event_type = 'AlertTriggered'`)).toBe(3000);
    expect(await readModelDiffs(db.pool, defaultProjections)).toEqual([]);
    expect(await handlerEffectGaps(db.pool, defaultHandlers)).toEqual([]);
    expect(await db.pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_processing_failures`)).toBe(0);

    // The slots really moved, with keys in them, and the queues now live on their new nodes.
    expect(migrations.length).toBe(2);
    for (const m of migrations) {
      expect(m.keys).toBeGreaterThan(0);
      expect((await cluster.ownerOf(m.slot)).port).toBe(m.to);
      const perNode = await cluster.keysPerNode(`${clusterQueuePrefix(prefix, m.queue).replace(/[{}[\]*?]/g, (c) => `\\${c}`)}*`);
      expect(perNode.filter((k, i) => k > 0 && cluster.nodes[i]!.port !== m.to)).toEqual([]);
    }
    // The project's keys (queues and cache) are spread over the cluster, not one slot on one node.
    const bare = bareQueuePrefix(prefix);
    const perNode = await cluster.keysPerNode(`*${bare}*`);
    expect(perNode.filter((k) => k > 0).length).toBeGreaterThan(1);
    // The ticket cache in particular has no single slot: its keys are on more than one node.
    const cachePerNode = await cluster.keysPerNode(`${bare}:cache:*`);
    expect(cachePerNode.filter((k) => k > 0).length).toBeGreaterThan(1);

    // No restart, no log storm.
    const lines = [web, ...workers].map((p) => p.output().split('\n').filter(Boolean).length);
    for (const p of [web, ...workers]) expect(p.child.exitCode === null && p.child.signalCode === null).toBe(true);
    for (const l of lines) expect(l).toBeLessThan(1000);

    console.log(
      JSON.stringify({
        postFirst2000Ms: firstPosted - started,
        postLast1000WithMigrationsMs: allPosted - firstPosted,
        drainAfterLastPostMs: drained - allPosted,
        totalMs: drained - started,
        migrations,
        projectKeysPerNode: perNode,
        cacheKeysPerNode: cachePerNode,
        logLines: { web: lines[0], worker1: lines[1], worker2: lines[2] },
      }),
    );
    if (process.env.SHOW_PROCESS_LOGS) console.log([web, ...workers].map((p) => p.output()).join('\n---\n'));
  });

  it('the cache client\'s pipeline never spans slots: commands on keys of many slots go out one pipeline per slot and the replies come back in order', async () => {
    const redis = new SlotPipelineCluster(cluster.nodes.map((x) => ({ host: '127.0.0.1', port: x.port })), clusterOptions(env.REDIS_URL!));
    try {
      const base = `${bareQueuePrefix(env.QUEUE_PREFIX!)}:pipe:`;
      const keys = Array.from({ length: 40 }, (_, i) => `${base}${i}`);
      expect(new Set(keys.map(keySlot)).size).toBeGreaterThan(10);
      const batch = redis.pipeline();
      for (const [i, k] of keys.entries()) batch.set(k, String(i)).get(k);
      expect(batch.length).toBe(80);
      const replies = (await batch.exec())!;
      expect(replies).toEqual(keys.flatMap((_, i) => [[null, 'OK'], [null, String(i)]]));
      expect((await cluster.keysPerNode(`${base}*`)).filter((k) => k > 0).length).toBe(3);
    } finally {
      redis.disconnect();
    }
  });

  it('preflight: the cluster passes; a plain REDIS_URL pointed at a cluster node is refused with a message naming REDIS_CLUSTER_NODES; bad node lists name the setting', async () => {
    await checkRedisOf(loadConfig({ REDIS_URL: env.REDIS_URL, REDIS_CLUSTER_NODES: env.REDIS_CLUSTER_NODES }));
    const plain = await checkRedisOf({ REDIS_URL: `redis://127.0.0.1:${cluster.nodes[1]!.port}` }).then(() => null, (e: Error) => e);
    expect(plain).toBeInstanceOf(PreflightError);
    expect(plain!.message).toMatch(/Cluster node.*\n.*REDIS_CLUSTER_NODES=/s);
    for (const bad of ['localhost', '127.0.0.1:0', 'a:1,b', 'h:70000', 'a:1 b:2']) expect(() => loadConfig({ REDIS_CLUSTER_NODES: bad })).toThrow(/REDIS_CLUSTER_NODES: must be host:port/);
    expect(loadConfig({ REDIS_CLUSTER_NODES: ' a:7000, [::1]:7001 ' }).REDIS_CLUSTER_NODES).toEqual([{ host: 'a', port: 7000 }, { host: '::1', port: 7001 }]);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'a:7000', REDIS_URL: 'redis://h:6379/2' })).toThrow(/REDIS_URL: a database number/);
  });
});
