import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { waitFor } from './db.js';
import { freePort } from './redisServer.js';

export interface ClusterNode {
  port: number;
  busPort: number;
  proc: ChildProcess;
  client: Redis;
  id: string;
}

/**
 * A private Redis Cluster of `size` masters (no replicas) on free ports, started by the test:
 * `redis-server --cluster-enabled yes` per node, then `redis-cli --cluster create … --cluster-yes`.
 * It never touches the shared Redis on 6379.
 */
export class PrivateRedisCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'hdt-cluster-'));
  nodes: ClusterNode[] = [];

  constructor(private readonly size = 3) {}

  /** REDIS_CLUSTER_NODES for the processes under test. */
  get nodesSetting(): string {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',');
  }

  async start(): Promise<void> {
    for (let i = 0; i < this.size; i++) {
      const port = await freePort();
      const busPort = await freePort();
      const proc = spawn(
        'redis-server',
        ['--port', String(port), '--cluster-port', String(busPort), '--bind', '127.0.0.1', '--cluster-enabled', 'yes', '--cluster-config-file', join(this.dir, `nodes-${port}.conf`),
          '--cluster-node-timeout', '5000', '--save', '', '--appendonly', 'no', '--dir', this.dir, '--maxmemory-policy', 'noeviction'],
        { stdio: 'ignore' },
      );
      const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: (n) => (n > 50 ? null : 100) });
      client.on('error', () => {});
      this.nodes.push({ port, busPort, proc, client, id: '' });
    }
    for (const n of this.nodes) {
      await waitFor(
        async () => {
          const probe = new Redis({ port: n.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
          probe.on('error', () => {});
          try {
            await probe.connect();
            return (await probe.ping()) === 'PONG';
          } catch {
            return false;
          } finally {
            probe.disconnect();
          }
        },
        { timeoutMs: 10_000, intervalMs: 100, what: `cluster node ${n.port} to start` },
      );
      await n.client.connect();
      n.id = (await n.client.call('CLUSTER', 'MYID')) as string;
    }
    const create = spawn('redis-cli', ['--cluster', 'create', ...this.nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    create.stdout.on('data', (d) => (out += d));
    create.stderr.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((r) => create.on('exit', r));
    if (code !== 0) throw new Error(`redis-cli --cluster create failed (${code}):\n${out}`);
    await waitFor(async () => (await Promise.all(this.nodes.map(async (n) => /cluster_state:ok/.test((await n.client.call('CLUSTER', 'INFO')) as string)))).every(Boolean), {
      timeoutMs: 20_000,
      intervalMs: 100,
      what: 'every node to report cluster_state:ok',
    });
  }

  async slotOf(key: string): Promise<number> {
    return Number(await this.nodes[0]!.client.call('CLUSTER', 'KEYSLOT', key));
  }

  /** The node that owns `slot`, as node 0 sees it. */
  async ownerOf(slot: number): Promise<ClusterNode> {
    const slots = (await this.nodes[0]!.client.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
    const range = slots.find(([from, to]) => slot >= from && slot <= to);
    if (!range) throw new Error(`slot ${slot} is not served`);
    return this.nodes.find((n) => n.port === range[2][1])!;
  }

  /**
   * Moves one slot, live, from its owner to `target` the way `redis-cli --cluster reshard` does:
   * IMPORTING/MIGRATING, MIGRATE its keys a few at a time (clients meanwhile get ASK and TRYAGAIN),
   * then SETSLOT NODE on every node (clients then get MOVED). `between` runs after each step, so the
   * slot stays half-moved while the caller works. Returns how many keys moved.
   */
  async migrateSlot(slot: number, target: ClusterNode, keysPerStep = 5, between: () => Promise<unknown> = async () => {}): Promise<number> {
    const source = await this.ownerOf(slot);
    if (source === target) throw new Error(`slot ${slot} is already on ${target.port}`);
    await target.client.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', source.id);
    await source.client.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', target.id);
    let moved = 0;
    for (;;) {
      const keys = (await source.client.call('CLUSTER', 'GETKEYSINSLOT', slot, keysPerStep)) as string[];
      if (keys.length === 0) break;
      await source.client.call('MIGRATE', '127.0.0.1', target.port, '', 0, 10_000, 'REPLACE', 'KEYS', ...keys);
      moved += keys.length;
      await between();
    }
    await target.client.call('CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
    await source.client.call('CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
    for (const n of this.nodes) if (n !== source && n !== target) await n.client.call('CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
    return moved;
  }

  /** Keys matching `pattern` on each node (SCAN), in node order. */
  async keysPerNode(pattern: string): Promise<number[]> {
    return Promise.all(
      this.nodes.map(async (n) => {
        let cursor = '0';
        let count = 0;
        do {
          const [next, keys] = (await n.client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)) as [string, string[]];
          cursor = next;
          count += keys.length;
        } while (cursor !== '0');
        return count;
      }),
    );
  }

  async destroy(): Promise<void> {
    for (const n of this.nodes) n.client.disconnect();
    await Promise.all(
      this.nodes.map((n) => {
        if (n.proc.exitCode !== null || n.proc.signalCode !== null) return null;
        const exited = new Promise((r) => n.proc.on('exit', r));
        n.proc.kill('SIGKILL');
        return exited;
      }),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }
}
