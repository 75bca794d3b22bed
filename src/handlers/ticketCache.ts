import type { Redis } from 'ioredis';

// Sets each field only if the stored field is older than this stream version: handler jobs may run
// out of order, and a late old event must not overwrite a newer price in the cache.
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
redis.call('EXPIRE', KEYS[1], ARGV[2])
return changed
`;

export function ticketCacheKey(prefix: string, ticketId: string): string {
  return `${prefix}ticket:${ticketId}`;
}

export async function cacheTicketFields(redis: Redis, prefix: string, ticketId: string, version: number, ttlSeconds: number, fields: Record<string, string | number>): Promise<number> {
  const args: (string | number)[] = [version, ttlSeconds];
  for (const [k, v] of Object.entries(fields)) args.push(k, v);
  return (await redis.eval(SCRIPT, 1, ticketCacheKey(prefix, ticketId), ...args)) as number;
}
