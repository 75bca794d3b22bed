import type { z } from 'zod';

export const STREAM_TYPES = ['ticket', 'purchase', 'monitor', 'scraping_job', 'platform', 'system'] as const;
export type StreamType = (typeof STREAM_TYPES)[number];

/**
 * Lifts a stored payload from one schema version to the next. The old shape is parsed first so a
 * malformed stored row fails at its field instead of turning into a plausible-looking new payload.
 */
export interface Upcaster {
  readonly schema: z.ZodTypeAny;
  up(payload: unknown): unknown;
}

export function defineUpcaster<S extends z.ZodTypeAny>(schema: S, up: (payload: z.output<S>) => unknown): Upcaster {
  return { schema, up: (payload) => up(payload as z.output<S>) };
}

export interface EventDefinition<Type extends string = string, Payload = unknown> {
  readonly type: Type;
  /** Version of `schema`; stored events of older versions are lifted by `upcasters`. */
  readonly schemaVersion: number;
  readonly streamType: StreamType;
  streamIdOf(payload: Payload): string;
  readonly schema: z.ZodType<Payload, z.ZodTypeDef, unknown>;
  /** Keyed by the version each one upgrades *from*; one per version below `schemaVersion`. */
  readonly upcasters: Readonly<Record<number, Upcaster>>;
}

export function defineEvent<const Type extends string, S extends z.ZodTypeAny>(spec: {
  type: Type;
  schemaVersion: number;
  streamType: StreamType;
  streamId: (payload: z.output<S>) => string;
  payload: S;
  upcasters?: Readonly<Record<number, Upcaster>>;
}): EventDefinition<Type, z.output<S>> {
  const upcasters = spec.upcasters ?? {};
  // Checked at import time: a missing step would otherwise only surface when an old event is read.
  if (!Number.isInteger(spec.schemaVersion) || spec.schemaVersion < 1) throw new Error(`${spec.type}: schemaVersion must be a positive integer`);
  for (let v = 1; v < spec.schemaVersion; v++) {
    if (!upcasters[v]) throw new Error(`${spec.type}: missing upcaster from schema version ${v}`);
  }
  return {
    type: spec.type,
    schemaVersion: spec.schemaVersion,
    streamType: spec.streamType,
    streamIdOf: spec.streamId,
    schema: spec.payload,
    upcasters,
  };
}

export type PayloadOfDefinition<D> = D extends EventDefinition<string, infer P> ? P : never;
