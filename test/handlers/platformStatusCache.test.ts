import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { sampleEvent } from '../../src/domain/index.js';
import type { HandledEvent, HandlerContext } from '../../src/handlers/Handler.js';
import { SystemEventsHandler } from '../../src/handlers/systemEventsHandler.js';
import { defineTicketCacheCommand, platformStatusKey } from '../../src/handlers/ticketCache.js';
import { createLogger } from '../../src/logger.js';
import { testPrefix } from '../support/db.js';

const redis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: 1 });
const prefix = `${testPrefix('platform-cache')}:cache:`;
afterAll(async () => {
  await redis.del(platformStatusKey(prefix));
  await redis.quit();
});

/** Runs the handler on one event the way the runner does: its Redis writes queued on a pipeline, sent at the end. */
async function handle(version: number, newStatus: 'online' | 'offline' | 'degraded'): Promise<void> {
  const sample = sampleEvent('PlatformStatusChanged', { platform: 'stubhub', newStatus, oldStatus: newStatus === 'online' ? 'offline' : 'online' });
  const event = { ...sample, id: crypto.randomUUID(), streamId: 'platform-stubhub', version, occurredAt: new Date(Date.UTC(2030, 0, 1, 0, version)).toISOString(), metadata: {} } as unknown as HandledEvent;
  defineTicketCacheCommand(redis);
  const redisBatch = redis.pipeline();
  const ctx = { redisBatch, settings: { cachePrefix: prefix }, logger: createLogger('silent') } as unknown as HandlerContext;
  await SystemEventsHandler.handle(event, ctx);
  const results = (await redisBatch.exec()) ?? [];
  for (const [err] of results) if (err) throw err;
}

describe('platform status cache', () => {
  it('platform-status-out-of-order: v5 offline delivered after v6 online leaves the cache online', async () => {
    await handle(6, 'online');
    await handle(5, 'offline');
    const cached = JSON.parse((await redis.hget(platformStatusKey(prefix), 'stubhub'))!);
    expect(cached).toMatchObject({ status: 'online', version: 6 });
    // A newer one still goes through, and the key has no expiry (a quiet platform keeps its status).
    await handle(7, 'degraded');
    expect(JSON.parse((await redis.hget(platformStatusKey(prefix), 'stubhub'))!)).toMatchObject({ status: 'degraded', version: 7 });
    expect(await redis.ttl(platformStatusKey(prefix))).toBe(-1);
  });
});
