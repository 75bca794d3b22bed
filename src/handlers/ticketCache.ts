import type { ChainableCommander, Cluster, Redis } from 'ioredis';

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

export function ticketCacheKey(prefix: string, ticketId: string): string {
  return `${prefix}ticket:${ticketId}`;
}

const COMMAND = 'hdtCacheTicketFields';

/** Registers the script once per connection, so pipelines send EVALSHA (a hash) instead of the script text. */
export function defineTicketCacheCommand(redis: Redis | Cluster): void {
  if (!(COMMAND in redis)) redis.defineCommand(COMMAND, { numberOfKeys: 1, lua: SCRIPT });
}

/** Queues the guarded write on a pipeline; the handler runner sends the whole batch in one round trip. */
export function cacheTicketFields(redis: ChainableCommander, prefix: string, ticketId: string, version: number, ttlSeconds: number, fields: Record<string, string | number>): void {
  cacheVersionedFields(redis, ticketCacheKey(prefix, ticketId), version, ttlSeconds, fields);
}

export function platformStatusKey(prefix: string): string {
  return `${prefix}platform-status`;
}

/**
 * Version-guarded fields of one hash: each field (with `<field>@v` beside it) is written only if the
 * stored one is older than `version`, the stream version of the event that carries the value.
 */
export function cacheVersionedFields(redis: ChainableCommander, key: string, version: number, ttlSeconds: number, fields: Record<string, string | number>): void {
  const args: (string | number)[] = [version, ttlSeconds];
  for (const [k, v] of Object.entries(fields)) args.push(k, v);
  const pipeline = redis as ChainableCommander & Record<string, (...a: (string | number)[]) => unknown>;
  if (typeof pipeline[COMMAND] === 'function') pipeline[COMMAND](key, ...args);
  else redis.eval(SCRIPT, 1, key, ...args);
}
