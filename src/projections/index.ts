import { MonitoringReadModelProjection } from './monitoringReadModel.js';
import type { Projection } from './Projection.js';
import { PurchaseReadModelProjection } from './purchaseReadModel.js';
import { TicketReadModelProjection } from './ticketReadModel.js';

export * from './Projection.js';
export { TicketReadModelProjection, PurchaseReadModelProjection, MonitoringReadModelProjection };

export const defaultProjections: readonly Projection<any>[] = [TicketReadModelProjection, PurchaseReadModelProjection, MonitoringReadModelProjection];
