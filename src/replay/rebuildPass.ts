import { sql, type DatabasePool } from 'slonik';
import { afterCheckpoint, GLOBAL_ORDER } from '../eventStore/globalOrder.js';
import { rowToEvent, type GlobalCheckpoint, type StoredEventRowType, type Upcaster } from '../eventStore/types.js';
import { documentWrites } from '../projections/documents.js';
import type { DocAccess, ProjectedEvent, Projection } from '../projections/Projection.js';
import { toProjected } from '../projections/ProjectionRunner.js';

/** One projection being rebuilt into its shadow table, with the cursor row it keeps. */
export interface RebuildTarget {
  projection: Projection<any>;
  generation: number;
  table: string;
  subscription: string;
  /** Events an operator resolved (skipped) for this projection: passed over, never applied. */
  skip: ReadonlySet<string>;
}

const SUPERSEDED = 'rebuild cursor moved: runners ';

const MISS = Symbol('miss');

/**
 * The documents of the shadow tables a pass has read or written, most recently used kept, at most
 * `capacity` in all: a rebuild is their only writer, so what it wrote is what the table holds, and
 * hot documents (a platform's stats, a long stream's ticket) are not read back every chunk. Bounded, so
 * memory stays bounded however many documents the read models hold. One per run: a failed run's
 * half-applied documents die with it.
 */
export class DocumentCache {
  private readonly entries = new Map<string, unknown>();
  constructor(private readonly capacity = 20_000) {}

  has(table: string, id: string): boolean {
    return this.entries.has(`${table}\u0000${id}`);
  }

  /** The document (undefined: known absent), or MISS. */
  get(table: string, id: string): unknown {
    const k = `${table}\u0000${id}`;
    if (!this.entries.has(k)) return MISS;
    const v = this.entries.get(k);
    this.entries.delete(k);
    this.entries.set(k, v);
    return v;
  }

  set(table: string, id: string, doc: unknown): void {
    const k = `${table}\u0000${id}`;
    this.entries.delete(k);
    this.entries.set(k, doc);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }
}

export class RebuildSupersededError extends Error {
  override readonly name = 'RebuildSupersededError';
}

interface ChunkRow extends Partial<StoredEventRowType> {
  chunk_rows: number;
  chunk_tx: string | null;
  chunk_pos: number | null;
  chunk_types: Record<string, number> | null;
  upto: number | null;
  from_v: number | null;
  cps: Record<string, number> | null;
}

/**
 * A full rebuild's chunk, for every projection of the job at once, in three round trips: one read (the
 * chunk's cursor rows in the gap-free order, and for each stream it touches the events after the
 * rebuild's checkpoint up to the stream's highest version in the chunk), one load of the documents
 * the events touch, one statement writing documents, checkpoints and cursors.
 *
 * Memory is bounded by the chunk: a stream is read only up to its highest version in the chunk, so a
 * stream of 300,000 events is folded a chunk at a time. The upper bound also keeps per-stream order:
 * in the rare case where a stream's later version sorts before an earlier one in the gap-free order
 * (two transactions appending to it, the later one holding the smaller transaction id), the earlier
 * events are read with it and applied first; when they come up in the cursor they are behind the
 * checkpoint and pass.
 *
 * Only the rebuild writes its shadow tables and new-generation checkpoints, so nothing is locked; the
 * write statement is guarded by the cursor rows instead (compare-and-set): a second runner of the same
 * job (a stalled job redelivered) cannot apply a chunk twice.
 */
export class RebuildPass {
  constructor(
    private readonly pool: DatabasePool,
    private readonly upcast: Upcaster,
  ) {}

  /** Processes the chunk after `cursor`; null when the store holds no more events for these projections. */
  async chunk(targets: readonly RebuildTarget[], cursor: GlobalCheckpoint, limit: number, cache?: DocumentCache): Promise<{ rows: number; next: GlobalCheckpoint; perTarget: number[] } | null> {
    const types = [...new Set(targets.flatMap((t) => t.projection.handledTypes))];
    const names = targets.map((t) => t.projection.name);
    const gens = targets.map((t) => t.generation);
    const rows = (await this.pool.any(sql.unsafe`
      WITH chunk AS MATERIALIZED (
        SELECT transaction_id, global_position, stream_id, version, event_type FROM event_store_all
        WHERE ${afterCheckpoint(cursor)} AND event_type = ANY(${sql.array(types, 'text')})
        ${GLOBAL_ORDER} LIMIT ${limit}
      ), summary AS (
        SELECT count(*)::int4 AS chunk_rows,
               (SELECT transaction_id::text FROM chunk ORDER BY transaction_id DESC, global_position DESC LIMIT 1) AS chunk_tx,
               (SELECT global_position FROM chunk ORDER BY transaction_id DESC, global_position DESC LIMIT 1) AS chunk_pos,
               (SELECT jsonb_object_agg(event_type, n) FROM (SELECT event_type, count(*) AS n FROM chunk GROUP BY event_type) t) AS chunk_types
        FROM chunk
      ), bounds AS (
        -- Index probes per (projection, stream): the checkpoint table grows with the store.
        SELECT b.stream_id, b.upto, coalesce(cp.from_v, 0) AS from_v, cp.cps
        FROM (SELECT stream_id, max(version) AS upto FROM chunk GROUP BY stream_id) b
        LEFT JOIN LATERAL (
          SELECT min(c.version) AS from_v, jsonb_object_agg(c.projection, c.version) AS cps
          FROM unnest(${sql.array(names, 'text')}::text[], ${sql.array(gens, 'int4')}::int4[]) AS g(projection, generation)
          JOIN projection_checkpoints c ON c.projection = g.projection AND c.generation = g.generation AND c.stream_id = b.stream_id
        ) cp ON true
      )
      SELECT s.chunk_rows, s.chunk_tx, s.chunk_pos, s.chunk_types, ev.*
      FROM summary s
      LEFT JOIN LATERAL (
        SELECT e.id, e.stream_id, e.stream_type, e.version, e.event_type, e.schema_version, e.payload, e.metadata,
               e.global_position, e.transaction_id::text AS transaction_id, e.occurred_at, e.recorded_at,
               b.upto, b.from_v, CASE WHEN e.version = min(e.version) OVER (PARTITION BY e.stream_id) THEN b.cps END AS cps
        FROM bounds b
        JOIN event_store_all e ON e.stream_id = b.stream_id AND e.version > b.from_v AND e.version <= b.upto
        WHERE e.event_type = ANY(${sql.array(types, 'text')})
        ORDER BY e.stream_id, e.version) ev ON true`)) as readonly ChunkRow[];
    const head = rows[0];
    if (!head || head.chunk_rows === 0) return null;
    const next: GlobalCheckpoint = { transactionId: head.chunk_tx!, position: Number(head.chunk_pos) };
    const perTarget = targets.map((t) => t.projection.handledTypes.reduce((n, type) => n + (head.chunk_types?.[type] ?? 0), 0));

    // Per stream: the events read, the checkpoints the rebuild has on it so far, and how far it was read.
    const streams = new Map<string, { events: ProjectedEvent[]; fromV: number; upto: number; cps: Record<string, number> }>();
    for (const r of rows) {
      if (r.id === undefined || r.id === null) continue;
      let s = streams.get(r.stream_id!);
      if (!s) streams.set(r.stream_id!, (s = { events: [], fromV: r.from_v!, upto: r.upto!, cps: r.cps ?? {} }));
      try {
        s.events.push(toProjected(rowToEvent(r as StoredEventRowType, this.upcast)));
      } catch (error) {
        throw new Error(`event ${r.id} (stream ${r.stream_id} v${r.version}) cannot be read during the rebuild: ${(error as Error).message}`);
      }
    }

    // The documents every event touches, per projection, loaded in one statement.
    const plans = targets.map((t) => ({ t, keys: new Set<string>(), applies: new Map<string, ProjectedEvent[]>() }));
    for (const [streamId, s] of streams) {
      for (const plan of plans) {
        const p = plan.t.projection;
        const after = s.cps[p.name] ?? s.fromV;
        const mine = s.events.filter((e) => e.version > after && p.handles(e.type));
        if (mine.length === 0) continue;
        plan.applies.set(streamId, mine);
        for (const e of mine) {
          if (plan.t.skip.has(e.id)) continue;
          try {
            for (const k of p.keysOf(e)) plan.keys.add(k);
          } catch (error) {
            throw poison(p.name, e, error);
          }
        }
      }
    }
    // Documents the pass wrote itself (or knows absent) come from its cache; only the rest are read.
    const docs = await this.loadDocuments(plans.map((p) => ({ table: p.t.table, keys: cache ? [...p.keys].filter((key) => !cache.has(p.t.table, key)) : [...p.keys] })));
    if (cache) plans.forEach((p, k) => {
      for (const key of p.keys) {
        const hit = cache.get(p.t.table, key);
        if (hit !== MISS) { if (hit !== undefined) docs[k]!.set(key, hit); }
        else cache.set(p.t.table, key, docs[k]!.get(key));
      }
    });

    // Fold. A poison event fails the rebuild (the live read model keeps serving), so no copy-on-write.
    const writes: ReturnType<typeof sql.fragment>[] = [];
    const checkpoints: [string, number, string, number, number][] = [];
    plans.forEach((plan, k) => {
      const p = plan.t.projection;
      const base = docs[k]!;
      const changes = new Map<string, { doc: unknown | undefined; position: number }>();
      let position = 0;
      const access: DocAccess<unknown> = {
        get: (id) => (changes.has(id) ? changes.get(id)!.doc : base.get(id)),
        set: (id, doc) => void changes.set(id, { doc, position }),
        delete: (id) => void changes.set(id, { doc: undefined, position }),
      };
      for (const [streamId, s] of streams) {
        const mine = plan.applies.get(streamId);
        if (mine) {
          for (const e of mine) {
            if (plan.t.skip.has(e.id)) continue;
            position = e.globalPosition;
            try {
              p.apply(e, access);
            } catch (error) {
              throw poison(p.name, e, error);
            }
          }
        }
        // The checkpoint moves to the stream's highest version read, past events of other types too, so
        // the next chunk reads the stream from there (never from an old checkpoint of a rarely-seen type).
        if (mine || s.cps[p.name] !== undefined) {
          const last = s.events[s.events.length - 1];
          checkpoints.push([p.name, plan.t.generation, streamId, s.upto, last?.globalPosition ?? 0]);
        }
      }
      if (cache) for (const [id, c] of changes) cache.set(plan.t.table, id, c.doc);
      const w = documentWrites(plan.t.table, changes);
      if (w.upsert) writes.push(w.upsert);
      if (w.cleanup) writes.push(w.cleanup);
    });

    // One statement, so one atomic commit without BEGIN/COMMIT round trips. If the cursor rows were not
    // where this runner left them, the final SELECT raises and every write of the statement is undone.
    const parts: ReturnType<typeof sql.fragment>[] = [
      sql.fragment`cur AS (
        UPDATE event_subscriptions s SET last_transaction_id = ${next.transactionId}::xid8, last_global_position = ${next.position},
          events_processed = s.events_processed + u.n, updated_at = now()
        FROM unnest(${sql.array(targets.map((t) => t.subscription), 'text')}::text[], ${sql.array(perTarget, 'int8')}::int8[]) AS u(name, n)
        WHERE s.name = u.name AND s.last_transaction_id = ${cursor.transactionId}::xid8 AND s.last_global_position = ${cursor.position}
        RETURNING 1)`,
    ];
    writes.forEach((w, i) => parts.push(sql.fragment`${sql.identifier([`w${i}`])} AS (${w})`));
    if (checkpoints.length) {
      parts.push(sql.fragment`cp AS (
        INSERT INTO projection_checkpoints AS c (projection, generation, stream_id, version, global_position, updated_at)
        SELECT u.projection, u.generation, u.stream_id, u.version, u.pos, now()
        FROM ${sql.unnest(checkpoints, ['text', 'int4', 'text', 'int4', 'int8'])} AS u(projection, generation, stream_id, version, pos)
        ON CONFLICT (projection, generation, stream_id) DO UPDATE
          SET version = GREATEST(c.version, EXCLUDED.version), global_position = GREATEST(c.global_position, EXCLUDED.global_position), updated_at = now())`);
    }
    try {
      await this.pool.query(sql.unsafe`
        WITH ${sql.join(parts, sql.fragment`, `)}
        SELECT CASE WHEN n = ${targets.length} THEN n ELSE (${SUPERSEDED} || n)::int4 END FROM (SELECT count(*)::int4 AS n FROM cur) c`);
    } catch (error) {
      if (String((error as Error).message).includes(SUPERSEDED)) {
        throw new RebuildSupersededError(`the rebuild of ${targets.map((t) => t.projection.name).join(', ')} moved on without this runner (another worker runs the same job)`);
      }
      throw error;
    }
    return { rows: head.chunk_rows, next, perTarget };
  }

  private async loadDocuments(sets: readonly { table: string; keys: readonly string[] }[]): Promise<Map<string, unknown>[]> {
    const out = sets.map(() => new Map<string, unknown>());
    const selects = sets.flatMap((s, i) =>
      s.keys.length ? [sql.fragment`SELECT ${i}::int4 AS i, id, doc FROM ${sql.identifier([s.table])} WHERE id = ANY(${sql.array([...s.keys], 'text')})`] : [],
    );
    if (selects.length === 0) return out;
    const rows = (await this.pool.any(sql.unsafe`${sql.join(selects, sql.fragment` UNION ALL `)}`)) as readonly { i: number; id: string; doc: unknown }[];
    for (const r of rows) if (r.doc !== null) out[r.i]!.set(r.id, r.doc);
    return out;
  }
}

function poison(projection: string, e: ProjectedEvent, error: unknown): Error {
  return new Error(`${projection} could not apply event ${e.id} (stream ${e.streamId} v${e.version}) during replay: ${error instanceof Error ? error.message : String(error)}`);
}
