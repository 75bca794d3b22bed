import { sql, type CommonQueryMethods } from 'slonik';
import { z } from 'zod';
import type { DocAccess } from './Projection.js';

const DocRow = z.object({ id: z.string(), doc: z.unknown() });

/**
 * Loads and locks the documents a batch touches, in one statement. Missing documents get a placeholder
 * row so that two transactions creating the same shared document (e.g. one platform's stats) serialise
 * on it instead of overwriting each other; ON CONFLICT DO UPDATE locks and returns an existing row even
 * when another transaction committed it a moment ago. Keys are locked in sorted order (no deadlocks).
 */
export async function lockDocuments(db: CommonQueryMethods, table: string, keys: readonly string[]): Promise<Map<string, unknown>> {
  return (await lockDocumentsMany(db, [{ table, keys }]))[0]!;
}

/** `lockDocuments` for several tables (distinct), in one statement; maps in the order given. */
export async function lockDocumentsMany(db: CommonQueryMethods, sets: readonly { table: string; keys: readonly string[] }[]): Promise<Map<string, unknown>[]> {
  const out = sets.map(() => new Map<string, unknown>());
  const parts = sets
    .map((s, i) => ({ i, t: sql.identifier([s.table]), sorted: [...new Set(s.keys)].sort() }))
    .filter((p) => p.sorted.length > 0)
    .map(
      (p) => sql.fragment`${sql.identifier([`l${p.i}`])} AS (
        INSERT INTO ${p.t} AS d (id, doc, last_position)
        SELECT k, 'null'::jsonb, 0 FROM unnest(${sql.array(p.sorted, 'text')}::text[]) AS k ORDER BY k
        ON CONFLICT (id) DO UPDATE SET last_position = d.last_position
        RETURNING ${p.i}::int4 AS i, d.id, d.doc)`,
    );
  if (parts.length === 0) return out;
  const selects = sets.map((_, i) => i).filter((i) => sets[i]!.keys.length > 0).map((i) => sql.fragment`SELECT * FROM ${sql.identifier([`l${i}`])}`);
  const rows = (await db.any(sql.unsafe`
    WITH ${sql.join(parts, sql.fragment`, `)}
    ${sql.join(selects, sql.fragment` UNION ALL `)}`)) as readonly (z.infer<typeof DocRow> & { i: number })[];
  for (const r of rows) if (r.doc !== null) out[r.i]!.set(r.id, r.doc);
  return out;
}

/**
 * `lockDocumentsMany` for live work that must not wait: placeholders are inserted where missing (ON
 * CONFLICT DO NOTHING), existing rows are locked FOR UPDATE SKIP LOCKED. A key another transaction
 * holds or is creating is not in `held`; the caller defers the streams that need it.
 */
export async function lockDocumentsSkipping(db: CommonQueryMethods, sets: readonly { table: string; keys: readonly string[] }[]): Promise<{ docs: Map<string, unknown>[]; held: Set<string>[] }> {
  const docs = sets.map(() => new Map<string, unknown>());
  const held = sets.map(() => new Set<string>());
  const parts = sets
    .map((s, i) => ({ i, t: sql.identifier([s.table]), sorted: [...new Set(s.keys)].sort() }))
    .filter((p) => p.sorted.length > 0)
    .flatMap((p) => [
      sql.fragment`${sql.identifier([`n${p.i}`])} AS (
        INSERT INTO ${p.t} AS d (id, doc, last_position)
        SELECT k, 'null'::jsonb, 0 FROM unnest(${sql.array(p.sorted, 'text')}::text[]) AS k ORDER BY k
        ON CONFLICT (id) DO NOTHING
        RETURNING ${p.i}::int4 AS i, d.id, d.doc)`,
      sql.fragment`${sql.identifier([`h${p.i}`])} AS (
        SELECT ${p.i}::int4 AS i, d.id, d.doc FROM ${p.t} d WHERE d.id = ANY(${sql.array(p.sorted, 'text')}) ORDER BY d.id FOR UPDATE SKIP LOCKED)`,
    ]);
  if (parts.length === 0) return { docs, held };
  const selects = sets
    .map((_, i) => i)
    .filter((i) => sets[i]!.keys.length > 0)
    .flatMap((i) => [sql.fragment`SELECT * FROM ${sql.identifier([`n${i}`])}`, sql.fragment`SELECT * FROM ${sql.identifier([`h${i}`])}`]);
  const rows = (await db.any(sql.unsafe`
    WITH ${sql.join(parts, sql.fragment`, `)}
    ${sql.join(selects, sql.fragment` UNION ALL `)}`)) as readonly (z.infer<typeof DocRow> & { i: number })[];
  for (const r of rows) {
    held[r.i]!.add(r.id);
    if (r.doc !== null) docs[r.i]!.set(r.id, r.doc);
  }
  return { docs, held };
}

/**
 * The statements that write changed documents set-based (one multi-row upsert) and remove deleted ones
 * and unused placeholders, as fragments a caller can put into one statement with its other writes.
 * The two touch disjoint rows (a row is written at most once per statement, as Postgres requires).
 */
export function documentWrites(table: string, changes: ReadonlyMap<string, { doc: unknown | undefined; position: number }>, lockedKeys: readonly string[] = []) {
  const t = sql.identifier([table]);
  const upserts = [...changes].filter(([, c]) => c.doc !== undefined);
  const written = new Set(upserts.map(([id]) => id));
  const deletes = [...changes].filter(([, c]) => c.doc === undefined).map(([id]) => id);
  const cleanup = [...new Set([...deletes, ...lockedKeys])].filter((id) => !written.has(id));
  return {
    upsert: upserts.length
      ? sql.fragment`
        INSERT INTO ${t} (id, doc, last_position, updated_at)
        SELECT u.id, u.doc, u.pos, now()
        FROM jsonb_to_recordset(${JSON.stringify(upserts.map(([id, c]) => ({ id, doc: c.doc, pos: c.position })))}::jsonb) AS u(id text, doc jsonb, pos int8)
        ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc, last_position = EXCLUDED.last_position, updated_at = now()`
      : null,
    cleanup: cleanup.length
      ? sql.fragment`
        DELETE FROM ${t} WHERE id = ANY(${sql.array(cleanup, 'text')}) AND (doc = 'null'::jsonb OR id = ANY(${sql.array(deletes, 'text')}))`
      : null,
  };
}

/** Writes changed documents on their own (see documentWrites). */
export async function writeDocuments(
  db: CommonQueryMethods,
  table: string,
  changes: ReadonlyMap<string, { doc: unknown | undefined; position: number }>,
  lockedKeys: readonly string[] = [],
): Promise<void> {
  const w = documentWrites(table, changes, lockedKeys);
  if (w.upsert) await db.query(sql.unsafe`${w.upsert}`);
  if (w.cleanup) await db.query(sql.unsafe`${w.cleanup}`);
}

/**
 * Folds one stream's events over a shared working set, copy-on-write: if the stream fails half-way its
 * changes are discarded and the working set is as before, so other streams in the batch still commit.
 */
export class DocumentWorkingSet {
  readonly changes = new Map<string, { doc: unknown | undefined; position: number }>();
  constructor(private readonly base: Map<string, unknown>) {}

  current(id: string): unknown | undefined {
    const c = this.changes.get(id);
    return c ? c.doc : this.base.get(id);
  }

  /** Runs `fold` against a private view; commits its writes only if it does not throw. */
  foldStream<D>(fold: (docs: DocAccess<D>, setPosition: (p: number) => void) => void): void {
    const local = new Map<string, { doc: D | undefined }>();
    let position = 0;
    const access: DocAccess<D> = {
      get: (id) => {
        const l = local.get(id);
        if (l) return l.doc === undefined ? undefined : cloneJson(l.doc);
        const v = this.current(id) as D | undefined;
        return v === undefined ? undefined : cloneJson(v);
      },
      set: (id, doc) => void local.set(id, { doc }),
      delete: (id) => void local.set(id, { doc: undefined }),
    };
    fold(access, (p) => (position = p));
    for (const [id, { doc }] of local) this.changes.set(id, { doc, position: Math.max(position, this.changes.get(id)?.position ?? 0) });
  }
}

/**
 * Deep copy of a JSON document (what read-model documents are: they come from and go to jsonb).
 * Several times faster than structuredClone, which was ~4 % of a worker's CPU: every event's fold
 * takes a private copy of each document it touches.
 */
export function cloneJson<T>(v: T): T {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(cloneJson) as T;
  const out: Record<string, unknown> = {};
  for (const k in v) out[k] = cloneJson((v as Record<string, unknown>)[k]);
  return out as T;
}
