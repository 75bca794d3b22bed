import type { MonitoringStartedPayload, MonitoringStoppedPayload, AlertTriggeredPayload } from './monitoringEvents.js';
import type { PaymentProcessedPayload, PurchaseCompletedPayload, PurchaseFailedPayload, PurchaseInitiatedPayload } from './purchaseEvents.js';
import type { ErrorOccurredPayload, PlatformStatusChangedPayload, ScrapingJobCompletedPayload, ScrapingJobStartedPayload } from './systemEvents.js';
import type { TicketAvailabilityChangedPayload, TicketDiscoveredPayload, TicketPriceChangedPayload, TicketSoldOutPayload } from './ticketEvents.js';

/** Every event at its current schema version; switch on `type` to narrow `payload`. */
export type DomainEvent =
  | { type: 'TicketDiscovered'; payload: TicketDiscoveredPayload }
  | { type: 'TicketPriceChanged'; payload: TicketPriceChangedPayload }
  | { type: 'TicketAvailabilityChanged'; payload: TicketAvailabilityChangedPayload }
  | { type: 'TicketSoldOut'; payload: TicketSoldOutPayload }
  | { type: 'PurchaseInitiated'; payload: PurchaseInitiatedPayload }
  | { type: 'PurchaseCompleted'; payload: PurchaseCompletedPayload }
  | { type: 'PurchaseFailed'; payload: PurchaseFailedPayload }
  | { type: 'PaymentProcessed'; payload: PaymentProcessedPayload }
  | { type: 'MonitoringStarted'; payload: MonitoringStartedPayload }
  | { type: 'MonitoringStopped'; payload: MonitoringStoppedPayload }
  | { type: 'AlertTriggered'; payload: AlertTriggeredPayload }
  | { type: 'ScrapingJobStarted'; payload: ScrapingJobStartedPayload }
  | { type: 'ScrapingJobCompleted'; payload: ScrapingJobCompletedPayload }
  | { type: 'PlatformStatusChanged'; payload: PlatformStatusChangedPayload }
  | { type: 'ErrorOccurred'; payload: ErrorOccurredPayload };

export type DomainEventType = DomainEvent['type'];
export type EventOf<T extends DomainEventType> = Extract<DomainEvent, { type: T }>;
export type PayloadOf<T extends DomainEventType> = EventOf<T>['payload'];
