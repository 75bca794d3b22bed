import type { Price } from '../domain/index.js';
import { defineProjection } from './Projection.js';

export interface PurchaseDoc {
  purchaseId: string;
  ticketId: string | null;
  userId: string | null;
  quantity: number | null;
  totalPrice: Price | null;
  status: 'initiated' | 'paid' | 'payment_failed' | 'completed' | 'failed';
  payment: { paymentId: string; amount: Price; method: string; status: string } | null;
  confirmationCode: string | null;
  failureReason: string | null;
  initiatedAt: string | null;
  completedAt: string | null;
  lastEventAt: string;
  version: number;
}

/** One document per purchase: where it is in its lifecycle and how it was paid. */
export const PurchaseReadModelProjection = defineProjection<PurchaseDoc>({
  name: 'PurchaseReadModelProjection',
  version: 1,
  table: 'purchase_read_models',
  handledTypes: ['PurchaseInitiated', 'PaymentProcessed', 'PurchaseCompleted', 'PurchaseFailed'],
  keysOf: (e) => [(e.payload as { purchaseId: string }).purchaseId],
  apply(e, docs) {
    const id = (e.payload as { purchaseId: string }).purchaseId;
    const doc: PurchaseDoc = docs.get(id) ?? {
      purchaseId: id, ticketId: null, userId: null, quantity: null, totalPrice: null, status: 'initiated', payment: null,
      confirmationCode: null, failureReason: null, initiatedAt: null, completedAt: null, lastEventAt: e.occurredAt, version: 0,
    };
    switch (e.type) {
      case 'PurchaseInitiated':
        Object.assign(doc, { ticketId: e.payload.ticketId, userId: e.payload.userId, quantity: e.payload.quantity, totalPrice: e.payload.totalPrice, initiatedAt: e.occurredAt });
        break;
      case 'PaymentProcessed':
        doc.payment = { paymentId: e.payload.paymentId, amount: e.payload.amount, method: e.payload.method, status: e.payload.status };
        // A late payment event must not move a finished purchase backwards.
        if (doc.status === 'initiated' || doc.status === 'paid' || doc.status === 'payment_failed') {
          doc.status = e.payload.status === 'succeeded' ? 'paid' : e.payload.status === 'failed' ? 'payment_failed' : doc.status;
        }
        break;
      case 'PurchaseCompleted':
        doc.status = 'completed';
        doc.confirmationCode = e.payload.confirmationCode;
        doc.completedAt = e.payload.completedAt;
        break;
      case 'PurchaseFailed':
        doc.status = 'failed';
        doc.failureReason = e.payload.reason;
        break;
      default:
        return;
    }
    doc.lastEventAt = e.occurredAt;
    doc.version = e.version;
    docs.set(id, doc);
  },
});
