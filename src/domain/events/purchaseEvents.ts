import { z } from 'zod';
import { defineEvent } from '../defineEvent.js';
import { oneOf } from '../oneOf.js';
import { IdSchema } from '../valueObjects/Id.js';
import { IsoDateTimeSchema } from '../valueObjects/IsoDateTime.js';
import { PriceSchema } from '../valueObjects/Price.js';
import { TicketIdSchema } from '../valueObjects/TicketId.js';

const purchaseStream = (p: { purchaseId: string }) => `purchase-${p.purchaseId}`;

export const PAYMENT_METHODS = ['card', 'paypal', 'apple_pay', 'google_pay', 'bank_transfer'] as const;
export const PaymentMethodSchema = oneOf('payment method', PAYMENT_METHODS);
export type PaymentMethod = z.infer<typeof PaymentMethodSchema>;

export const PAYMENT_STATUSES = ['succeeded', 'failed', 'refunded'] as const;
export const PaymentStatusSchema = oneOf('payment status', PAYMENT_STATUSES);
export type PaymentStatus = z.infer<typeof PaymentStatusSchema>;

export const PurchaseInitiatedPayloadSchema = z
  .object({
    purchaseId: IdSchema,
    ticketId: TicketIdSchema,
    userId: IdSchema,
    quantity: z.number().int().min(1).max(100),
    totalPrice: PriceSchema,
  })
  .strict();
export type PurchaseInitiatedPayload = z.infer<typeof PurchaseInitiatedPayloadSchema>;

export const PurchaseInitiated = defineEvent({
  type: 'PurchaseInitiated',
  schemaVersion: 1,
  streamType: 'purchase',
  streamId: purchaseStream,
  payload: PurchaseInitiatedPayloadSchema,
});

export const PurchaseCompletedPayloadSchema = z
  .object({
    purchaseId: IdSchema,
    confirmationCode: z.string().min(1).max(64),
    completedAt: IsoDateTimeSchema,
  })
  .strict();
export type PurchaseCompletedPayload = z.infer<typeof PurchaseCompletedPayloadSchema>;

export const PurchaseCompleted = defineEvent({
  type: 'PurchaseCompleted',
  schemaVersion: 1,
  streamType: 'purchase',
  streamId: purchaseStream,
  payload: PurchaseCompletedPayloadSchema,
});

export const PurchaseFailedPayloadSchema = z
  .object({
    purchaseId: IdSchema,
    reason: z.string().min(1).max(500),
    errorCode: z.string().max(64).optional(),
  })
  .strict();
export type PurchaseFailedPayload = z.infer<typeof PurchaseFailedPayloadSchema>;

export const PurchaseFailed = defineEvent({
  type: 'PurchaseFailed',
  schemaVersion: 1,
  streamType: 'purchase',
  streamId: purchaseStream,
  payload: PurchaseFailedPayloadSchema,
});

export const PaymentProcessedPayloadSchema = z
  .object({
    purchaseId: IdSchema,
    paymentId: IdSchema,
    amount: PriceSchema,
    method: PaymentMethodSchema,
    status: PaymentStatusSchema,
  })
  .strict();
export type PaymentProcessedPayload = z.infer<typeof PaymentProcessedPayloadSchema>;

/** Lives on the purchase stream so a purchase's payments are ordered with its lifecycle. */
export const PaymentProcessed = defineEvent({
  type: 'PaymentProcessed',
  schemaVersion: 1,
  streamType: 'purchase',
  streamId: purchaseStream,
  payload: PaymentProcessedPayloadSchema,
});
