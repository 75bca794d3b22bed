import type { ConnectionOptions } from 'bullmq';
import { Cluster, type ChainableCommander, type ClusterOptions, type Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../config.js';
import { createRedis, producerConnectionOptions, redisOptionsFromUrl, workerConnectionOptions } from './redis.js';

/**
 * Where the project's Redis lives and how its keys are laid out: one standalone server (REDIS_URL), or
 * a Redis Cluster (REDIS_CLUSTER_NODES, with credentials and TLS from REDIS_URL). Every BullMQ queue,
 * worker and cache client is built from here, so producers, workers, bull-board and the CLIs agree on
 * the connection and on each queue's prefix.
 *
 * Standalone: every queue uses QUEUE_PREFIX as it is (`{hdt}`), exactly as before.
 * Cluster: each queue gets its own hash tag, `{hdt:<queue>}`, so its keys (which BullMQ's scripts use
 * together) share one slot while different queues land on different slots and nodes; the ticket cache
 * has no hash tag at all (`hdt:cache:ticket:<id>`), so it spreads over every slot.
 */
export interface RedisTopology {
  readonly cluster: boolean;
  /** Connection of the producers' queues (fails fast when Redis is down: the outbox covers it). */
  producerConnection(): ConnectionOptions;
  /** Connection of BullMQ Workers (blocking commands wait for Redis, never give up). */
  workerConnection(): ConnectionOptions;
  /** The BullMQ prefix of one queue. */
  queuePrefix(queue: string): string;
  /** Prefix of the ticket cache keys. */
  readonly cachePrefix: string;
  /** A plain client for caches; in cluster mode its pipelines are split by slot (see SlotPipelineCluster). */
  createCache(options?: RedisOptions): Redis | Cluster;
  /** Closes the cluster clients this topology created (standalone: nothing to close). */
  close(): Promise<void>;
}

export type RedisTopologyConfig = Pick<Config, 'REDIS_URL' | 'REDIS_CLUSTER_NODES' | 'QUEUE_PREFIX'>;

/** QUEUE_PREFIX without its hash-tag braces: `{hdt}` → `hdt`. */
export function bareQueuePrefix(prefix: string): string {
  return prefix.replace(/[{}]/g, '');
}

/** The per-queue hash-tagged prefix used on a cluster: `{hdt}` and `handlers` → `{hdt:handlers}`. */
export function clusterQueuePrefix(prefix: string, queue: string): string {
  return `{${bareQueuePrefix(prefix)}:${queue}}`;
}

export function redisTopology(config: RedisTopologyConfig): RedisTopology {
  const nodes = config.REDIS_CLUSTER_NODES;
  if (!nodes?.length) {
    let producer: ConnectionOptions | null = null;
    return {
      cluster: false,
      producerConnection: () => (producer ??= producerConnectionOptions(config.REDIS_URL)),
      workerConnection: () => workerConnectionOptions(config.REDIS_URL),
      queuePrefix: () => config.QUEUE_PREFIX,
      cachePrefix: `${config.QUEUE_PREFIX}:cache:`,
      createCache: (options = {}) => createRedis(config.REDIS_URL, options),
      close: async () => {},
    };
  }

  const created: Cluster[] = [];
  const track = <T extends Cluster>(c: T): T => {
    // Without a listener an 'error' event would be thrown; BullMQ and the callers report what matters.
    c.on('error', () => {});
    created.push(c);
    return c;
  };
  let producer: Cluster | null = null;
  let workerTemplate: Cluster | null = null;
  return {
    cluster: true,
    // One cluster client shared by every queue of the process (BullMQ leaves a passed client open;
    // close() below quits it).
    producerConnection: () =>
      (producer ??= track(
        new Cluster(nodes, clusterOptions(config.REDIS_URL, {
          enableOfflineQueue: false,
          redisOptions: { maxRetriesPerRequest: 1, connectTimeout: 2000 },
        })),
      )) as unknown as ConnectionOptions,
    // A template BullMQ duplicates for each Worker's own connections (main and blocking); it never
    // connects itself unless BullMQ uses it for a side queue, and close() ends it either way.
    workerConnection: () =>
      (workerTemplate ??= track(
        new Cluster(nodes, clusterOptions(config.REDIS_URL, { lazyConnect: true, redisOptions: { maxRetriesPerRequest: null } })),
      )) as unknown as ConnectionOptions,
    queuePrefix: (queue) => clusterQueuePrefix(config.QUEUE_PREFIX, queue),
    cachePrefix: `${bareQueuePrefix(config.QUEUE_PREFIX)}:cache:`,
    createCache: (options = {}) => track(new SlotPipelineCluster(nodes, clusterOptions(config.REDIS_URL, { redisOptions: options }))),
    async close() {
      await Promise.allSettled(created.splice(0).map((c) => (c.status === 'wait' || c.status === 'end' ? c.disconnect() : c.quit().catch(() => c.disconnect()))));
    },
  };
}

/**
 * ioredis Cluster options: credentials and TLS of REDIS_URL for every node, and redirections absorbed
 * quietly. A MOVED updates the slot map and retries (with a short pause so a map that is being
 * rewritten is not hammered); ASK follows the migrating slot; TRYAGAIN (a multi-key script while
 * its slot's keys are half moved) waits and retries, with room for a slot of many keys to move.
 */
export function clusterOptions(url: string, extra: Omit<ClusterOptions, 'redisOptions'> & { redisOptions?: RedisOptions } = {}): ClusterOptions {
  const { username, password, tls } = redisOptionsFromUrl(url);
  const { redisOptions, ...rest } = extra;
  return {
    redisOptions: { username, password, tls, ...redisOptions },
    // TLS certificates name hosts: keep the configured names instead of resolving them to IPs.
    ...(tls ? { dnsLookup: (address: string, callback: (err: Error | null, address: string) => void) => callback(null, address) } : {}),
    retryDelayOnMoved: 50,
    retryDelayOnTryAgain: 100,
    retryDelayOnClusterDown: 300,
    maxRedirections: 100,
    slotsRefreshTimeout: 2000,
    slotsRefreshInterval: 5000,
    // Reconnecting the whole cluster: capped backoff, never giving up.
    clusterRetryStrategy: (times: number) => Math.min(100 + times * 200, 2000),
    ...rest,
  };
}

/** The Redis Cluster slot of a key (CRC16 of the key or of its `{hash tag}`, mod 16384), as CLUSTER KEYSLOT computes it. */
export function keySlot(key: string | Buffer): number {
  let buf = typeof key === 'string' ? Buffer.from(key) : key;
  const open = buf.indexOf(0x7b);
  if (open >= 0) {
    const close = buf.indexOf(0x7d, open + 1);
    if (close > open + 1) buf = buf.subarray(open + 1, close);
  }
  let crc = 0;
  for (const byte of buf) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}

type Reply = [Error | null, unknown];
const REDIRECTED = /^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN)\b/;

/**
 * A cluster client whose `pipeline()` never spans slots: commands queued on it are routed by their
 * first key into one ioredis pipeline per slot, sent together on exec, and the replies come back in
 * the order the commands were queued (as one pipeline's would). A command a slot migration bounced
 * (MOVED, ASK or TRYAGAIN left in a partly applied pipeline, which ioredis does not resend) is sent
 * again on its own through the cluster, which follows the redirection. Meant for idempotent writes
 * such as the handlers' cache batch.
 */
export class SlotPipelineCluster extends Cluster {
  override pipeline(commands?: unknown[][]): ChainableCommander {
    if (commands?.length) return super.pipeline(commands);
    return slotPipeline(this, () => super.pipeline());
  }
}

function slotPipeline(cluster: Cluster, create: () => ChainableCommander): ChainableCommander {
  const template = create() as unknown as Record<string | symbol, unknown>;
  const groups = new Map<number, ChainableCommander>();
  const calls: { slot: number; index: number; method: string; args: unknown[] }[] = [];
  const scripts = (cluster as unknown as { scriptsSet: Record<string, { numberOfKeys: number | null }> }).scriptsSet;

  const firstKey = (method: string, args: unknown[]): unknown => {
    const script = scripts[method.replace(/Buffer$/, '')];
    if (script) return script.numberOfKeys ? args[0] : undefined;
    if (/^(eval|evalsha|eval_ro|evalsha_ro|fcall|fcall_ro)$/i.test(method)) return Number(args[1]) > 0 ? args[2] : undefined;
    return args[0];
  };

  const exec = async (): Promise<Reply[]> => {
    const replies = new Map<number, Reply[]>();
    await Promise.all([...groups].map(async ([slot, p]) => replies.set(slot, ((await p.exec()) ?? []) as Reply[])));
    const out = calls.map((c): Reply => replies.get(c.slot)?.[c.index] ?? [new Error('no reply'), null]);
    await Promise.all(
      out.map(async (reply, i) => {
        if (!reply[0] || !REDIRECTED.test(reply[0].message)) return;
        const c = calls[i]!;
        const commander = cluster as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
        out[i] = await commander[c.method]!(...c.args).then(
          (v): Reply => [null, v],
          (e: Error): Reply => [e, null],
        );
      }),
    );
    return out;
  };

  const proxy: ChainableCommander = new Proxy(template, {
    get(target, prop) {
      if (prop === 'length') return calls.length;
      if (prop === 'exec') return exec;
      if (prop === 'multi' || prop === 'execBuffer') throw new Error(`${String(prop)} is not supported on a slot-split cluster pipeline`);
      const value = target[prop];
      if (typeof prop !== 'string' || typeof value !== 'function' || prop === 'constructor') return value;
      return (...args: unknown[]) => {
        const key = firstKey(prop, args);
        const slot = typeof key === 'string' || Buffer.isBuffer(key) ? keySlot(key) : -1;
        let p = groups.get(slot);
        if (!p) groups.set(slot, (p = create()));
        (p as unknown as Record<string, (...a: unknown[]) => unknown>)[prop]!(...args);
        calls.push({ slot, index: p.length - 1, method: prop, args });
        return proxy;
      };
    },
  }) as unknown as ChainableCommander;
  return proxy;
}
