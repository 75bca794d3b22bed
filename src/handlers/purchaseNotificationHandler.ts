import { sql } from 'slonik';
import { z } from 'zod';
import type { EventHandler } from './Handler.js';

/** Tells the buyer how their purchase went (one notification per lifecycle event). */
export const PurchaseNotificationHandler: EventHandler = {
  name: 'PurchaseNotificationHandler',
  handledTypes: ['PurchaseInitiated', 'PurchaseCompleted', 'PurchaseFailed', 'PaymentProcessed'],
  async handle(e, ctx) {
    let userId: string | null;
    if (e.type === 'PurchaseInitiated') userId = e.payload.userId;
    else {
      userId = await ctx.tx.maybeOneFirst(sql.type(z.object({ user_id: z.string() }))`
        SELECT payload->>'userId' AS user_id FROM event_store WHERE stream_id = ${e.streamId} AND event_type = 'PurchaseInitiated' ORDER BY version LIMIT 1`);
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
    await ctx.tx.query(sql.unsafe`
      INSERT INTO user_notifications (user_id, kind, event_id, title, body) VALUES (${userId}, ${kind}, ${e.id}, ${title}, ${sql.jsonb(body as never)})
      ON CONFLICT (kind, event_id) DO NOTHING`);
  },
};
