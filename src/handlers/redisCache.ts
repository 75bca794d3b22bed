import type { ChainableCommander, Cluster, Redis } from 'ioredis';
import type { CacheBatch, VersionedCache } from './cache.js';

// Sets each field only if the stored field is older than this stream version: handler jobs may run
// out of order, and a late old event must not overwrite a newer value in the cache. A TTL of 0 keeps
// the key without expiry.
const SCRIPT = `
local v = tonumber(ARGV[1])
local changed = 0
for i = 3, #ARGV, 2 do
  local f = ARGV[i]
  local cur = tonumber(redis.call('HGET', KEYS[1], f .. '@v') or '0')
  if cur < v then
    redis.call('HSET', KEYS[1], f, ARGV[i + 1], f .. '@v', v)
    changed = changed + 1
  end
end
if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return changed
`;

const COMMAND = 'hdtCacheTicketFields';

/** Registers the script once per connection, so pipelines send EVALSHA (a hash) instead of the script text. */
export function defineTicketCacheCommand(redis: Redis | Cluster): void {
  if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: SCRIPT });
}

/** Queues the guarded write of a hash's fields (with `<field>@v` beside each) on a pipeline. */
export function queueVersionedFields(pipeline: ChainableCommander, key: string, version: number, ttlSeconds: number, fields: Record<string, string | number>): void {
  const args: (string | number)[] = [version, ttlSeconds];
  for (const [k, v] of Object.entries(fields)) args.push(k, v);
  const p = pipeline as ChainableCommander & Record<string, (...a: (string | number)[]) => unknown>;
  if (typeof p[COMMAND] === 'function') p[COMMAND](key, ...args);
  else pipeline.eval(SCRIPT, 1, key, ...args);
}

/** The cache in Redis (standalone or Cluster): one pipeline per handler transaction. */
export function redisCache(redis: Redis | Cluster): VersionedCache {
  defineTicketCacheCommand(redis);
  return {
    kind: 'redis',
    batch(): CacheBatch {
      const pipeline = redis.pipeline();
      return {
        set: (key, version, ttl, fields) => queueVersionedFields(pipeline, key, version, ttl, fields),
        get length() {
          return pipeline.length;
        },
        async flush() {
          if (!pipeline.length) return;
          const results = (await pipeline.exec()) ?? [];
          const failed = results.find(([err]) => err);
          if (failed) throw failed[0];
        },
      };
    },
    async read(key) {
      const all = await redis.hgetall(key);
      const out = Object.fromEntries(Object.entries(all).filter(([k]) => !k.endsWith('@v')));
      return Object.keys(out).length ? out : null;
    },
  };
}
