import { AlertNotificationHandler } from './alertNotificationHandler.js';
import type { EventHandler } from './Handler.js';
import { PriceChangeHandler } from './priceChangeHandler.js';
import { PurchaseNotificationHandler } from './purchaseNotificationHandler.js';
import { SystemEventsHandler } from './systemEventsHandler.js';
import { TicketDiscoveredHandler } from './ticketDiscoveredHandler.js';

export * from './Handler.js';
export { TicketDiscoveredHandler, PriceChangeHandler, AlertNotificationHandler, PurchaseNotificationHandler, SystemEventsHandler };

export const defaultHandlers: readonly EventHandler[] = [TicketDiscoveredHandler, PriceChangeHandler, AlertNotificationHandler, PurchaseNotificationHandler, SystemEventsHandler];
