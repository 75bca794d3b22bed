import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { ConsumerRoute } from './jobs.js';

/** A worker's heartbeat older than this means no live worker runs the consumer. */
export const LIVE_WORKER_WINDOW_MS = 30_000;
export const HEARTBEAT_MS = 5_000;

export const RegisteredConsumerSchema = z.object({
  name: z.string(),
  kind: z.enum(['handler', 'projection']),
  version: z.number(),
  event_types: z.array(z.string()),
  registered_at: z.string(),
  last_seen_at: z.string().nullable(),
  live: z.boolean(),
});
export type RegisteredConsumer = z.infer<typeof RegisteredConsumerSchema>;

/**
 * `event_consumers`: every consumer any process knows. Registering is an upsert; a consumer's types
 * and version change only for an equal or newer version, so the old half of a rolling deploy cannot
 * take back what the new half registered.
 */
export async function registerConsumers(db: CommonQueryMethods, routes: readonly Pick<ConsumerRoute, 'name' | 'kind' | 'version' | 'handledTypes'>[]): Promise<void> {
  if (routes.length === 0) return;
  const sorted = [...routes].sort((a, b) => (a.name < b.name ? -1 : 1));
  await db.query(sql.unsafe`
    INSERT INTO event_consumers AS c (name, kind, version, event_types)
    SELECT r.name, r.kind, r.version, string_to_array(r.types, ',')
    FROM ${sql.unnest(
      sorted.map((r) => [r.name, r.kind, r.version, [...new Set(r.handledTypes)].sort().join(',')]),
      ['text', 'text', 'int4', 'text'],
    )} AS r(name, kind, version, types)
    ON CONFLICT (name) DO UPDATE SET kind = EXCLUDED.kind, version = EXCLUDED.version, event_types = EXCLUDED.event_types, updated_at = now()
    WHERE EXCLUDED.version >= c.version AND (c.kind, c.version, c.event_types) IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.version, EXCLUDED.event_types)`);
}

/** A worker running these consumers is alive (called every HEARTBEAT_MS). */
export async function heartbeat(db: CommonQueryMethods, names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  await db.query(sql.unsafe`UPDATE event_consumers SET last_seen_at = now() WHERE name = ANY(${sql.array([...names].sort(), 'text')})`);
}

export async function listConsumers(db: CommonQueryMethods): Promise<RegisteredConsumer[]> {
  return [
    ...(await db.any(sql.type(RegisteredConsumerSchema)`
      SELECT name, kind, version, event_types, registered_at, last_seen_at,
             coalesce(last_seen_at > now() - make_interval(secs => ${LIVE_WORKER_WINDOW_MS / 1000}), false) AS live
      FROM event_consumers ORDER BY name`)),
  ];
}

/** Retires a consumer: it is owed nothing more, and what it was owed is dropped. */
export async function unregisterConsumer(db: CommonQueryMethods, name: string): Promise<{ removed: boolean; owedDropped: number }> {
  const r = await db.one(sql.type(z.object({ removed: z.boolean(), owed: z.number() }))`
    WITH c AS (DELETE FROM event_consumers WHERE name = ${name} RETURNING 1),
         o AS (DELETE FROM consumer_owed WHERE consumer = ${name} RETURNING events)
    SELECT EXISTS (SELECT 1 FROM c) AS removed, coalesce((SELECT sum(events) FROM o), 0)::int8 AS owed`);
  return { removed: r.removed, owedDropped: r.owed };
}

