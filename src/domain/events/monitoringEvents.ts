import { z } from 'zod';
import { defineEvent } from '../defineEvent.js';
import { oneOf } from '../oneOf.js';
import { IdSchema } from '../valueObjects/Id.js';
import { PlatformSourceSchema } from '../valueObjects/PlatformSource.js';
import { PriceSchema } from '../valueObjects/Price.js';
import { TicketIdSchema } from '../valueObjects/TicketId.js';

const monitorStream = (p: { monitorId: string }) => `monitor-${p.monitorId}`;

/** Duplicates are rejected (not silently collapsed) so the stored list is exactly what was asked for. */
const PlatformListSchema = z
  .array(PlatformSourceSchema)
  .min(1)
  .max(20)
  .superRefine((platforms, ctx) => {
    const seen = new Set<string>();
    platforms.forEach((p, i) => {
      if (seen.has(p)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [i], message: `duplicate platform ${p}` });
      seen.add(p);
    });
  });

export const MonitoringStartedPayloadSchema = z
  .object({
    monitorId: IdSchema,
    userId: IdSchema,
    eventName: z.string().min(1).max(200),
    platforms: PlatformListSchema,
    maxPrice: PriceSchema.optional(),
    // Required, with no default: a silently assumed quantity would change which alerts fire.
    minQuantity: z.number().int().min(1).max(100),
  })
  .strict();
export type MonitoringStartedPayload = z.infer<typeof MonitoringStartedPayloadSchema>;

export const MonitoringStarted = defineEvent({
  type: 'MonitoringStarted',
  schemaVersion: 1,
  streamType: 'monitor',
  streamId: monitorStream,
  payload: MonitoringStartedPayloadSchema,
});

export const MonitoringStoppedPayloadSchema = z
  .object({
    monitorId: IdSchema,
    userId: IdSchema,
    reason: z.string().max(500).optional(),
  })
  .strict();
export type MonitoringStoppedPayload = z.infer<typeof MonitoringStoppedPayloadSchema>;

export const MonitoringStopped = defineEvent({
  type: 'MonitoringStopped',
  schemaVersion: 1,
  streamType: 'monitor',
  streamId: monitorStream,
  payload: MonitoringStoppedPayloadSchema,
});

export const ALERT_REASONS = ['ticket_discovered', 'price_drop'] as const;
export const AlertReasonSchema = oneOf('alert reason', ALERT_REASONS);
export type AlertReason = z.infer<typeof AlertReasonSchema>;

export const AlertTriggeredPayloadSchema = z
  .object({
    alertId: IdSchema,
    monitorId: IdSchema,
    userId: IdSchema,
    ticketId: TicketIdSchema,
    platform: PlatformSourceSchema,
    eventName: z.string().min(1).max(200),
    price: PriceSchema,
    reason: AlertReasonSchema,
    quantity: z.number().int().nonnegative().max(100_000),
  })
  .strict();
export type AlertTriggeredPayload = z.infer<typeof AlertTriggeredPayloadSchema>;

/** On the monitor stream: an alert is an outcome of the monitor, and its history reads per monitor. */
export const AlertTriggered = defineEvent({
  type: 'AlertTriggered',
  schemaVersion: 1,
  streamType: 'monitor',
  streamId: monitorStream,
  payload: AlertTriggeredPayloadSchema,
});
