import { sql } from 'slonik';
import { z } from 'zod';
import type { EventHandler } from './Handler.js';

/** Tells the buyer how their purchase went (one notification per lifecycle event). */
export const PurchaseNotificationHandler: EventHandler = {
  name: 'PurchaseNotificationHandler',
  handledTypes: ['PurchaseInitiated', 'PurchaseCompleted', 'PurchaseFailed', 'PaymentProcessed'],
  async handle(e, ctx) {
    let userId: string | null | undefined;
    if (e.type === 'PurchaseInitiated') userId = e.payload.userId;
    else {
      // One query for the whole batch: the buyer of every purchase stream in it.
      const buyers = await ctx.memo('buyers', async () => {
        const streams = [...new Set(ctx.batch.map((x) => x.streamId))];
        const rows = await ctx.tx.any(sql.type(z.object({ stream_id: z.string(), user_id: z.string() }))`
          SELECT stream_id, payload->>'userId' AS user_id FROM event_store
          WHERE stream_id = ANY(${sql.array(streams, 'text')}) AND event_type = 'PurchaseInitiated'`);
        return new Map(rows.map((r) => [r.stream_id, r.user_id]));
      });
      userId = buyers.get(e.streamId);
    }
    if (!userId) {
      ctx.logger.warn({ eventId: e.id, stream: e.streamId }, 'purchase event without a PurchaseInitiated: notifying operators');
      userId = 'ops';
    }
    const [kind, title, body] = ((): [string, string, object] => {
      switch (e.type) {
        case 'PurchaseInitiated':
          return ['purchase_started', 'We are buying your tickets', { purchaseId: e.payload.purchaseId, quantity: e.payload.quantity, totalPrice: e.payload.totalPrice }];
        case 'PaymentProcessed':
          return ['payment', `Payment ${e.payload.status}`, { purchaseId: e.payload.purchaseId, amount: e.payload.amount, method: e.payload.method }];
        case 'PurchaseCompleted':
          return ['purchase_completed', 'Your tickets are confirmed', { purchaseId: e.payload.purchaseId, confirmationCode: e.payload.confirmationCode }];
        case 'PurchaseFailed':
          return ['purchase_failed', 'Your purchase did not go through', { purchaseId: e.payload.purchaseId, reason: e.payload.reason }];
        default:
          return ['other', e.type, {}];
      }
    })();
    ctx.notify({ userId, kind, eventId: e.id, title, body });
  },
};
