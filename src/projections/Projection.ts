import type { DomainEvent } from '../domain/index.js';
import type { StoredEvent } from '../eventStore/types.js';

/** A stored event whose type and payload have been narrowed to the domain union. */
export type ProjectedEvent = Omit<StoredEvent, 'type' | 'payload'> & DomainEvent;

/** The read-model tables of the built-in projections (a new projection brings its own, via a migration). */
export const READ_MODEL_TABLES = ['ticket_read_models', 'purchase_read_models', 'monitoring_read_models'] as const;
export type ReadModelTable = string;

/** Copy-on-write access to the read-model documents an event touches. Call `set` for every change. */
export interface DocAccess<D> {
  get(id: string): D | undefined;
  set(id: string, doc: D): void;
  delete(id: string): void;
}

/**
 * A projection is a pure fold of events into documents of one read-model table (the seed's
 * ProjectionInterface: name, version, handled types, handles, apply; reset and state are provided by
 * the projection store for every projection alike). Being pure is what lets the same code run live,
 * set-based in batches, and in a replay.
 */
export interface Projection<D = unknown> {
  readonly name: string;
  /** Bump when apply changes meaning: the read model then needs a rebuild. */
  readonly version: number;
  readonly table: ReadModelTable;
  readonly handledTypes: readonly DomainEvent['type'][];
  handles(type: string): boolean;
  /** Ids of the documents `apply` may read or write for this event (preloaded and locked). */
  keysOf(event: ProjectedEvent): string[];
  apply(event: ProjectedEvent, docs: DocAccess<D>): void;
}

export function defineProjection<D>(p: Omit<Projection<D>, 'handles'>): Projection<D> {
  // The table needs (id text primary key, doc jsonb, last_position bigint, updated_at timestamptz); a
  // rebuild also creates `<table>__rebuild` next to it, so keep the name short and plain.
  if (!/^[a-z_][a-z0-9_]{0,50}$/.test(p.table)) throw new Error(`${p.name}: table name ${JSON.stringify(p.table)} must be a plain lower-case identifier of at most 51 characters`);
  const types = new Set<string>(p.handledTypes);
  return { ...p, handles: (type: string) => types.has(type) };
}
