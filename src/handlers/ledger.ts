import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { EventHandler } from './Handler.js';

/**
 * `event_handler_ledger`: the (handler, event) pairs that took effect. The hot insert lives in
 * HandlerRunner (same transaction as the effects); these are the operator-side reads and writes.
 */

/** Events among these that the handler handles and has no ledger row for yet (what it still owes). */
export async function unprocessedEvents(db: CommonQueryMethods, handler: Pick<EventHandler, 'name' | 'handledTypes'>, eventIds: readonly string[]): Promise<string[]> {
  return [
    ...(await db.anyFirst(sql.type(z.object({ id: z.string() }))`
      SELECT e.id FROM event_store e
      WHERE e.id = ANY(${sql.array([...eventIds], 'uuid')}) AND e.event_type = ANY(${sql.array([...handler.handledTypes], 'text')})
        AND NOT EXISTS (SELECT 1 FROM event_handler_ledger l WHERE l.handler = ${handler.name} AND l.event_id = e.id)`)),
  ];
}

/** An operator skipped these events for this handler: they count as handled, and are never run again. */
export async function markHandled(db: CommonQueryMethods, handler: string, eventIds: readonly string[]): Promise<void> {
  await db.query(sql.unsafe`
    INSERT INTO event_handler_ledger (handler, event_id)
    SELECT ${handler}, id FROM unnest(${sql.array([...eventIds], 'uuid')}::uuid[]) AS id
    ON CONFLICT DO NOTHING`);
}
