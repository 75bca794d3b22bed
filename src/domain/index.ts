export { EventValidationError, type ValidationIssue } from './errors.js';
export { issuesFromZod } from './zodIssues.js';
export { oneOf } from './oneOf.js';
export { defineEvent, defineUpcaster, STREAM_TYPES, type EventDefinition, type PayloadOfDefinition, type StreamType, type Upcaster } from './defineEvent.js';
export { eventRegistry } from './eventRegistry.js';
export { sampleEvent } from './samples.js';

export { IdSchema, type Id } from './valueObjects/Id.js';
export { TicketIdSchema, type TicketId } from './valueObjects/TicketId.js';
export { CURRENCIES, CURRENCY_MINOR_UNITS, CurrencySchema, currencyMinorUnits, type Currency } from './valueObjects/Currency.js';
export { PriceSchema, comparePrice, formatPrice, type Price } from './valueObjects/Price.js';
export { PLATFORMS, PlatformSourceSchema, type PlatformSource } from './valueObjects/PlatformSource.js';
export { IsoDateTimeSchema, type IsoDateTime } from './valueObjects/IsoDateTime.js';

export type { DomainEvent, DomainEventType, EventOf, PayloadOf } from './events/DomainEvent.js';
export * from './events/ticketEvents.js';
export * from './events/purchaseEvents.js';
export * from './events/monitoringEvents.js';
export * from './events/systemEvents.js';

export type { Aggregate } from './aggregates/Aggregate.js';
export { TICKET_STATUSES, TicketStateSchema, ticketAggregate, type TicketState } from './aggregates/Ticket.js';
