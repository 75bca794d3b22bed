import type { EventDefinition, StreamType } from './defineEvent.js';
import { EventValidationError } from './errors.js';
import type { DomainEvent, DomainEventType } from './events/DomainEvent.js';
import { AlertTriggered, MonitoringStarted, MonitoringStopped } from './events/monitoringEvents.js';
import { PaymentProcessed, PurchaseCompleted, PurchaseFailed, PurchaseInitiated } from './events/purchaseEvents.js';
import { ErrorOccurred, PlatformStatusChanged, ScrapingJobCompleted, ScrapingJobStarted } from './events/systemEvents.js';
import { TicketAvailabilityChanged, TicketDiscovered, TicketPriceChanged, TicketSoldOut } from './events/ticketEvents.js';
import { issuesFromZod } from './zodIssues.js';

const DEFINITIONS = [
  TicketDiscovered,
  TicketPriceChanged,
  TicketAvailabilityChanged,
  TicketSoldOut,
  PurchaseInitiated,
  PurchaseCompleted,
  PurchaseFailed,
  PaymentProcessed,
  MonitoringStarted,
  MonitoringStopped,
  AlertTriggered,
  ScrapingJobStarted,
  ScrapingJobCompleted,
  PlatformStatusChanged,
  ErrorOccurred,
] as const;

// Compile-time proof that the definitions and the DomainEvent union list exactly the same types and
// payloads; adding an event to one but not the other fails the build here.
type Defined = (typeof DEFINITIONS)[number];
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type DefinedEvent = Defined extends infer D ? (D extends EventDefinition<infer T, infer P> ? { type: T; payload: P } : never) : never;
const definitionsMatchUnion: Same<DefinedEvent, DomainEvent> = true;
void definitionsMatchUnion;

const byType = new Map<string, EventDefinition>(DEFINITIONS.map((d) => [d.type, d as unknown as EventDefinition]));
if (byType.size !== DEFINITIONS.length) throw new Error('eventRegistry: duplicate event type');

const TYPES: readonly DomainEventType[] = Object.freeze(DEFINITIONS.map((d) => d.type));

function definition(type: string): EventDefinition {
  const def = byType.get(type);
  if (!def) {
    // Bounded: the raw type is caller input, so only a prefix of it is echoed.
    const shown = JSON.stringify(String(type).slice(0, 64));
    throw new EventValidationError([{ field: 'type', message: `unknown event type ${shown}; expected one of ${TYPES.join(', ')}` }]);
  }
  return def;
}

export const eventRegistry = {
  types: TYPES,

  has(type: string): type is DomainEventType {
    return byType.has(type);
  },

  definition,

  currentVersion(type: string): number {
    return definition(type).schemaVersion;
  },

  /** Parses a payload of the current schema version; the returned payload is zod's stripped copy. */
  validate(type: string, payload: unknown): DomainEvent {
    const def = definition(type);
    const r = def.schema.safeParse(payload);
    if (!r.success) throw new EventValidationError(issuesFromZod(r.error, 'payload'));
    return { type, payload: r.data } as DomainEvent;
  },

  streamOf(event: DomainEvent): { streamId: string; streamType: StreamType } {
    const def = definition(event.type);
    return { streamId: def.streamIdOf(event.payload), streamType: def.streamType };
  },

  /**
   * Lifts a stored payload to the current schema version, one step at a time. The current version is
   * returned untouched (it was validated when written); older versions are parsed against their
   * stored shape first, so a corrupt row is reported at its field.
   */
  upcast(type: string, schemaVersion: number, payload: unknown): { schemaVersion: number; payload: unknown } {
    const def = definition(type);
    if (schemaVersion === def.schemaVersion) return { schemaVersion, payload };
    if (!Number.isInteger(schemaVersion) || schemaVersion < 1 || schemaVersion > def.schemaVersion) {
      throw new EventValidationError([{ field: 'schemaVersion', message: `unknown schema version ${schemaVersion} for ${type} (current is ${def.schemaVersion})` }]);
    }
    let current = payload;
    for (let v = schemaVersion; v < def.schemaVersion; v++) {
      const step = def.upcasters[v];
      if (!step) throw new EventValidationError([{ field: 'schemaVersion', message: `no upcaster for ${type} from schema version ${v}` }]);
      const r = step.schema.safeParse(current);
      if (!r.success) throw new EventValidationError(issuesFromZod(r.error, 'payload'));
      current = step.up(r.data);
    }
    return { schemaVersion: def.schemaVersion, payload: current };
  },
} as const;
