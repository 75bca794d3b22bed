import { sql } from 'slonik';
import type { EventHandler } from './Handler.js';

/** Platform health into the cache the scrapers consult; critical errors paged to operators. */
export const SystemEventsHandler: EventHandler = {
  name: 'SystemEventsHandler',
  handledTypes: ['PlatformStatusChanged', 'ErrorOccurred'],
  async handle(e, ctx) {
    if (e.type === 'PlatformStatusChanged') {
      await ctx.redis.hset(`${ctx.settings.cachePrefix}platform-status`, e.payload.platform, JSON.stringify({ status: e.payload.newStatus, at: e.occurredAt, version: e.version }));
      if (e.payload.newStatus === 'offline') ctx.logger.warn({ platform: e.payload.platform, reason: e.payload.reason }, 'platform went offline');
      return;
    }
    if (e.type === 'ErrorOccurred' && e.payload.severity === 'critical') {
      ctx.logger.error({ component: e.payload.component, errorId: e.payload.errorId }, `critical error reported: ${e.payload.message}`);
      await ctx.tx.query(sql.unsafe`
        INSERT INTO user_notifications (user_id, kind, event_id, title, body)
        VALUES ('ops', 'critical_error', ${e.id}, ${`Critical error in ${e.payload.component}`}, ${sql.jsonb({ message: e.payload.message, errorId: e.payload.errorId })})
        ON CONFLICT (kind, event_id) DO NOTHING`);
    }
  },
};
