import { AlertInboxHandler, AlertNotificationHandler } from './alertNotificationHandler.js';
import type { EventHandler } from './Handler.js';
import { PriceChangeHandler } from './priceChangeHandler.js';
import { PurchaseNotificationHandler } from './purchaseNotificationHandler.js';
import { SystemEventsHandler } from './systemEventsHandler.js';
import { TicketDiscoveredHandler } from './ticketDiscoveredHandler.js';

export * from './Handler.js';
export { TicketDiscoveredHandler, PriceChangeHandler, AlertInboxHandler, AlertNotificationHandler, PurchaseNotificationHandler, SystemEventsHandler };

export const defaultHandlers: readonly EventHandler[] = [TicketDiscoveredHandler, PriceChangeHandler, AlertInboxHandler, AlertNotificationHandler, PurchaseNotificationHandler, SystemEventsHandler];
