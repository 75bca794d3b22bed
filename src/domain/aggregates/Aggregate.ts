import type { z } from 'zod';
import type { DomainEvent } from '../events/DomainEvent.js';

/**
 * What an event store needs to rebuild any aggregate: a pure fold plus a schema for its snapshots.
 * `stateSchema` lets a loader discard a snapshot written by an older state shape and refold instead.
 */
export interface Aggregate<S> {
  initialState(): S;
  /** Must be pure and total: never throw, never mutate `state`; ignore events it does not own. */
  evolve(state: S, event: DomainEvent): S;
  readonly stateSchema: z.ZodType<S, z.ZodTypeDef, unknown>;
  /** Save a snapshot every this many events. */
  readonly snapshotEvery: number;
}
