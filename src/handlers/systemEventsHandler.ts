import type { EventHandler } from './Handler.js';
import { cacheVersionedFields, platformStatusKey } from './ticketCache.js';

/** Platform health into the cache the scrapers consult; critical errors paged to operators. */
export const SystemEventsHandler: EventHandler = {
  name: 'SystemEventsHandler',
  handledTypes: ['PlatformStatusChanged', 'ErrorOccurred'],
  async handle(e, ctx) {
    if (e.type === 'PlatformStatusChanged') {
      // Guarded by the platform stream's version: a late "offline" (v5) never overwrites a newer "online" (v6).
      cacheVersionedFields(ctx.cache, platformStatusKey(ctx.settings.cachePrefix), e.version, 0, {
        [e.payload.platform]: JSON.stringify({ status: e.payload.newStatus, at: e.occurredAt, version: e.version }),
      });
      // A scraped platform's state, not a fault of this system: info, not a warning.
      if (e.payload.newStatus === 'offline') ctx.logger.info({ platform: e.payload.platform, reason: e.payload.reason }, 'platform went offline');
      return;
    }
    if (e.type === 'ErrorOccurred' && e.payload.severity === 'critical') {
      ctx.logger.error({ component: e.payload.component, errorId: e.payload.errorId }, `critical error reported: ${e.payload.message}`);
      ctx.notify({ userId: 'ops', kind: 'critical_error', eventId: e.id, title: `Critical error in ${e.payload.component}`, body: { message: e.payload.message, errorId: e.payload.errorId } });
    }
  },
};
