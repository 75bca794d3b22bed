import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import type { EventHandler } from '../../src/handlers/Handler.js';
import type { Projection } from '../../src/projections/Projection.js';
import { actualDocs, diffDocs, expectedDocs } from './readModels.js';

const n = z.object({ n: z.number() });

/**
 * (handler, event) pairs that did not take effect exactly once: for each handler, the stored events
 * of its types (after `afterPosition`) against its ledger rows. The ledger's primary key rules out
 * doubles in the ledger itself; effects keyed by event (notifications) are checked against it too.
 */
export async function handlerEffectGaps(pool: DatabasePool, handlers: readonly EventHandler[], afterPosition = 0): Promise<{ handler: string; stored: number; ledger: number }[]> {
  const out: { handler: string; stored: number; ledger: number }[] = [];
  for (const h of handlers) {
    const types = sql.array([...h.handledTypes], 'text');
    const stored = await pool.oneFirst(sql.type(n)`SELECT count(*) AS n FROM event_store WHERE event_type = ANY(${types}) AND global_position > ${afterPosition}`);
    const ledger = await pool.oneFirst(sql.type(n)`
      SELECT count(*) AS n FROM event_handler_ledger l JOIN event_store e ON e.id = l.event_id
      WHERE l.handler = ${h.name} AND e.event_type = ANY(${types}) AND e.global_position > ${afterPosition}`);
    if (stored !== ledger) out.push({ handler: h.name, stored, ledger });
  }
  return out;
}

/** Projections whose read model differs from a fold of the store. */
export async function readModelDiffs(pool: DatabasePool, projections: readonly Projection<any>[]): Promise<{ projection: string; diffs: number }[]> {
  const out: { projection: string; diffs: number }[] = [];
  for (const p of projections) {
    const d = diffDocs(await expectedDocs(pool, p), await actualDocs(pool, p.table));
    if (d.length) out.push({ projection: p.name, diffs: d.length });
  }
  return out;
}
