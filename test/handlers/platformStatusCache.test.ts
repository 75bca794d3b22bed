import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleEvent } from '../../src/domain/index.js';
import type { VersionedCache } from '../../src/handlers/cache.js';
import type { HandledEvent, HandlerContext } from '../../src/handlers/Handler.js';
import { postgresCache } from '../../src/handlers/postgresCache.js';
import { redisCache } from '../../src/handlers/redisCache.js';
import { SystemEventsHandler } from '../../src/handlers/systemEventsHandler.js';
import { platformStatusKey } from '../../src/handlers/ticketCache.js';
import { createLogger } from '../../src/logger.js';
import { createTestDb, testPrefix, type TestDb } from '../support/db.js';

const redis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: 1 });
const prefix = `${testPrefix('platform-cache')}:cache:`;
let db: TestDb;
beforeAll(async () => {
  db = await createTestDb('platform_cache');
});
afterAll(async () => {
  await redis.del(platformStatusKey(prefix));
  await redis.quit();
  await db?.drop();
});

// The same handler over both caches: Redis (its Lua guard) and PostgreSQL's UNLOGGED handler_cache
// (QUEUE_BACKEND=postgres), which must keep the same version guard.
const caches: [string, () => VersionedCache][] = [
  ['redis', () => redisCache(redis)],
  ['postgres', () => postgresCache(db.pool)],
];

describe.each(caches)('platform status cache (%s)', (_kind, makeCache) => {
  /** Runs the handler on one event the way the runner does: its cache writes batched, sent at the end in the transaction. */
  async function handle(cache: VersionedCache, version: number, newStatus: 'online' | 'offline' | 'degraded'): Promise<void> {
    const sample = sampleEvent('PlatformStatusChanged', { platform: 'stubhub', newStatus, oldStatus: newStatus === 'online' ? 'offline' : 'online' });
    const event = { ...sample, id: crypto.randomUUID(), streamId: 'platform-stubhub', version, occurredAt: new Date(Date.UTC(2030, 0, 1, 0, version)).toISOString(), metadata: {} } as unknown as HandledEvent;
    const batch = cache.batch();
    const ctx = { cache: batch, settings: { cachePrefix: prefix }, logger: createLogger('silent') } as unknown as HandlerContext;
    await SystemEventsHandler.handle(event, ctx);
    await db.pool.transaction((tx) => batch.flush(tx));
  }

  it('platform-status-out-of-order: v5 offline delivered after v6 online leaves the cache online', async () => {
    const cache = makeCache();
    await handle(cache, 6, 'online');
    await handle(cache, 5, 'offline');
    const cached = JSON.parse((await cache.read(platformStatusKey(prefix)))!.stubhub!);
    expect(cached).toMatchObject({ status: 'online', version: 6 });
    // A newer one still goes through.
    await handle(cache, 7, 'degraded');
    expect(JSON.parse((await cache.read(platformStatusKey(prefix)))!.stubhub!)).toMatchObject({ status: 'degraded', version: 7 });
  });
});

it('platform-status-never-expires: the platform key keeps no TTL (a quiet platform keeps its status), in Redis and in handler_cache', async () => {
  expect(await redis.ttl(platformStatusKey(prefix))).toBe(-1);
  const { sql } = await import('slonik');
  expect(await db.pool.oneFirst(sql.unsafe`SELECT count(*)::int FROM handler_cache WHERE key = ${platformStatusKey(prefix)} AND expires_at IS NOT NULL`)).toBe(0);
});
