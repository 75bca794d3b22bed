import { sql, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { DocumentWorkingSet } from '../../src/projections/documents.js';
import type { Projection } from '../../src/projections/Projection.js';
import { rowToEvent, toProjected } from '../../src/projections/ProjectionRunner.js';
import { StoredEventRow } from '../../src/eventStore/types.js';

const identity = (_t: string, schemaVersion: number, payload: unknown) => ({ schemaVersion, payload });

/** The read model a projection should produce, folded straight from the store in stream order. */
export async function expectedDocs(pool: DatabasePool, projection: Projection<any>): Promise<Map<string, unknown>> {
  const rows = await pool.any(sql.type(StoredEventRow)`
    SELECT id, stream_id, stream_type, version, event_type, schema_version, payload, metadata,
           global_position, transaction_id::text AS transaction_id, occurred_at, recorded_at
    FROM event_store WHERE event_type = ANY(${sql.array([...projection.handledTypes], 'text')})
    ORDER BY stream_id, version`);
  const set = new DocumentWorkingSet(new Map());
  let i = 0;
  while (i < rows.length) {
    const stream = rows[i]!.stream_id;
    const list: ReturnType<typeof toProjected>[] = [];
    while (i < rows.length && rows[i]!.stream_id === stream) list.push(toProjected(rowToEvent(rows[i++]!, identity)));
    set.foldStream((docs, setPos) => {
      for (const e of list) {
        projection.apply(e, docs);
        setPos(e.globalPosition);
      }
    });
  }
  const out = new Map<string, unknown>();
  for (const [id, c] of set.changes) if (c.doc !== undefined) out.set(id, c.doc);
  return out;
}

export async function actualDocs(pool: DatabasePool, table: string): Promise<Map<string, unknown>> {
  const rows = await pool.any(sql.type(z.object({ id: z.string(), doc: z.unknown() }))`SELECT id, doc FROM ${sql.identifier([table])} ORDER BY id`);
  return new Map(rows.map((r) => [r.id, r.doc]));
}

/** Differences between two document sets, for readable assertion failures. */
export function diffDocs(expected: Map<string, unknown>, actual: Map<string, unknown>, max = 5): string[] {
  const out: string[] = [];
  for (const [id, doc] of expected) {
    if (!actual.has(id)) out.push(`missing ${id}`);
    else if (JSON.stringify(sortKeys(actual.get(id))) !== JSON.stringify(sortKeys(doc))) out.push(`differs ${id}: expected ${JSON.stringify(doc)} got ${JSON.stringify(actual.get(id))}`);
    if (out.length >= max) return out;
  }
  for (const id of actual.keys()) if (!expected.has(id)) out.push(`unexpected ${id}`);
  return out.slice(0, max);
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, sortKeys(x)]));
  return v;
}
