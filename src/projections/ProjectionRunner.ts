import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { z } from 'zod';
import { rowToEvent, type StoredEvent, type StoredEventRowType, type Upcaster } from '../eventStore/types.js';

export { rowToEvent };
import { documentWrites, DocumentWorkingSet, lockDocuments } from './documents.js';
import type { ProjectedEvent, Projection } from './Projection.js';

const CheckpointRow = z.object({ stream_id: z.string(), version: z.number(), parked: z.boolean() });

export interface PoisonedStream {
  streamId: string;
  eventId: string;
  version: number;
  error: Error;
}

export interface CatchUpResult {
  applied: number;
  streams: number;
  poisoned: PoisonedStream[];
  parkedSkipped: string[];
}

/** Recovers the narrowed event from a stored one (payloads were validated before they were stored). */
export function toProjected(e: StoredEvent): ProjectedEvent {
  return e as unknown as ProjectedEvent;
}


/**
 * Live projection processing. A job says "catch up projection P for these streams"; order and
 * exactly-once effect come from Postgres: the per-(projection, stream) checkpoints are locked, each
 * stream's events after its checkpoint are folded in version order, and the documents and checkpoints
 * are written in the same transaction. Duplicate, stale and out-of-order jobs find nothing to do.
 */
export class ProjectionRunner {
  constructor(
    private readonly pool: DatabasePool,
    private readonly upcast: Upcaster,
  ) {}

  /** Makes sure every projection has its row (generation, status); run at worker start-up. */
  async register(projections: readonly Projection<any>[]): Promise<void> {
    for (const p of projections) {
      await this.pool.query(sql.unsafe`
        INSERT INTO event_projections (name, version) VALUES (${p.name}, ${p.version})
        ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, updated_at = now() WHERE event_projections.version <> EXCLUDED.version`);
    }
  }

  async catchUp(projection: Projection<any>, streams: readonly string[], options: { retryOf?: number } = {}): Promise<CatchUpResult> {
    const sorted = [...new Set(streams)].sort();
    // The current generation is read (FOR SHARE) in the statement that locks the checkpoints.
    return this.pool.transaction((tx) => this.catchUpIn(tx, projection, 'current', projection.table, sorted, options));
  }

  /**
   * The catch-up body, inside a caller's transaction (also used by a rebuild's final switch-over with
   * its own generation). With `'current'`, the projection's generation is read FOR SHARE: a rebuild's
   * switch-over takes that row FOR UPDATE, so live work and the switch never interleave.
   */
  async catchUpIn(tx: CommonQueryMethods, projection: Projection<any>, generationOrCurrent: number | 'current', table: string, sorted: readonly string[], options: { retryOf?: number } = {}): Promise<CatchUpResult> {
    const result: CatchUpResult = { applied: 0, streams: 0, poisoned: [], parkedSkipped: [] };
    if (sorted.length === 0) return result;
    const generationSql =
      generationOrCurrent === 'current'
        ? sql.fragment`(SELECT generation FROM event_projections WHERE name = ${projection.name} FOR SHARE)`
        : sql.fragment`(SELECT ${generationOrCurrent}::int4 AS generation)`;
    // Creates missing checkpoints and locks all of them in one statement: ON CONFLICT DO UPDATE locks
    // and returns an existing row even when another transaction committed it a moment ago (a plain
    // SELECT ... FOR UPDATE in the same statement would not see it). Rows are locked in sorted order.
    const checkpoints = (await tx.any(sql.unsafe`
      WITH g AS ${generationSql}
      INSERT INTO projection_checkpoints AS c (projection, generation, stream_id)
      SELECT ${projection.name}, g.generation, s FROM g, unnest(${sql.array(sorted, 'text')}::text[]) AS s ORDER BY s
      ON CONFLICT (projection, generation, stream_id) DO UPDATE SET version = c.version
      RETURNING c.stream_id, c.version, c.parked, c.generation`)) as readonly (z.infer<typeof CheckpointRow> & { generation: number })[];
    if (checkpoints.length === 0) throw new Error(`projection ${projection.name} is not registered`);
    const generation = checkpoints[0]!.generation;
    const active = checkpoints.filter((c) => !c.parked);
    result.parkedSkipped = checkpoints.filter((c) => c.parked).map((c) => c.stream_id);
    if (active.length === 0) return result;

    // Hot path: our own rows with a fixed column list (validated when written); no per-row zod parse.
    const rows = (await tx.any(sql.unsafe`
      SELECT e.id, e.stream_id, e.stream_type, e.version, e.event_type, e.schema_version, e.payload, e.metadata,
             e.global_position, e.transaction_id::text AS transaction_id, e.occurred_at, e.recorded_at
      FROM ${sql.unnest(active.map((c) => [c.stream_id, c.version]), ['text', 'int4'])} AS c(stream_id, version)
      JOIN event_store e ON e.stream_id = c.stream_id AND e.version > c.version
      WHERE e.event_type = ANY(${sql.array([...projection.handledTypes], 'text')})
      ORDER BY e.stream_id, e.version`)) as readonly StoredEventRowType[];
    if (rows.length === 0) return result;
    const events = rows.map((r) => toProjected(rowToEvent(r, this.upcast)));

    const byStream = new Map<string, ProjectedEvent[]>();
    for (const e of events) {
      const list = byStream.get(e.streamId);
      if (list) list.push(e);
      else byStream.set(e.streamId, [e]);
    }
    const keys = new Set<string>();
    for (const e of events) for (const k of projection.keysOf(e)) keys.add(k);
    const lockedKeys = [...keys];
    const working = new DocumentWorkingSet(await lockDocuments(tx, table, lockedKeys));

    const advanced: [string, number, number][] = [];
    for (const [streamId, list] of byStream) {
      let last: ProjectedEvent | undefined;
      for (const e of list) {
        try {
          // One copy-on-write unit per event: a throwing event leaves no trace, the ones before it stay.
          working.foldStream((docs, setPosition) => {
            projection.apply(e, docs);
            setPosition(e.globalPosition);
          });
        } catch (error) {
          // A poison event stops only this stream (parked after its retries); the others in the batch commit.
          result.poisoned.push({ streamId, eventId: e.id, version: e.version, error: error instanceof Error ? error : new Error(String(error)) });
          break;
        }
        last = e;
        result.applied++;
      }
      if (last) advanced.push([streamId, last.version, last.globalPosition]);
    }
    result.streams = advanced.length;
    // Documents, checkpoints and (for a retry) the failure row in one statement: one round trip.
    const docs = documentWrites(table, working.changes, lockedKeys);
    const writes = [
      docs.upsert,
      docs.cleanup,
      advanced.length
        ? sql.fragment`
          UPDATE projection_checkpoints c SET version = u.version, global_position = u.pos, updated_at = now()
          FROM ${sql.unnest(advanced, ['text', 'int4', 'int8'])} AS u(stream_id, version, pos)
          WHERE c.projection = ${projection.name} AND c.generation = ${generation} AND c.stream_id = u.stream_id`
        : null,
      options.retryOf !== undefined && result.poisoned.length === 0
        ? sql.fragment`
          UPDATE event_processing_failures SET status = 'resolved', resolved_at = now(), resolution_note = coalesce(resolution_note, 'retried successfully')
          WHERE id = ${options.retryOf} AND status <> 'resolved'`
        : null,
    ].filter((w) => w !== null);
    if (writes.length) {
      await tx.query(sql.unsafe`
        WITH ${sql.join(writes.map((w, i) => sql.fragment`${sql.identifier([`w${i}`])} AS (${w})`), sql.fragment`, `)}
        SELECT 1`);
    }
    return result;
  }

  /**
   * After a job finally failed: park each of its streams that still has an unapplied event, and name
   * that event. Returns the parked (stream, event) pairs so they can be recorded as failures.
   */
  async parkUnapplied(projection: Projection<any>, streams: readonly string[]): Promise<{ streamId: string; eventId: string }[]> {
    return this.pool.transaction(async (tx) => {
      const generation = await tx.oneFirst(sql.type(z.object({ generation: z.number() }))`SELECT generation FROM event_projections WHERE name = ${projection.name}`);
      const rows = await tx.any(sql.type(z.object({ stream_id: z.string(), event_id: z.string() }))`
        SELECT c.stream_id, first.id AS event_id
        FROM projection_checkpoints c
        CROSS JOIN LATERAL (
          SELECT e.id FROM event_store e
          WHERE e.stream_id = c.stream_id AND e.version > c.version AND e.event_type = ANY(${sql.array([...projection.handledTypes], 'text')})
          ORDER BY e.version LIMIT 1) first
        WHERE c.projection = ${projection.name} AND c.generation = ${generation} AND c.stream_id = ANY(${sql.array([...streams], 'text')})
        ORDER BY c.stream_id FOR UPDATE OF c`);
      if (rows.length) {
        await tx.query(sql.unsafe`
          UPDATE projection_checkpoints c SET parked = true, parked_event_id = u.event_id, updated_at = now()
          FROM ${sql.unnest(rows.map((r) => [r.stream_id, r.event_id]), ['text', 'uuid'])} AS u(stream_id, event_id)
          WHERE c.projection = ${projection.name} AND c.generation = ${generation} AND c.stream_id = u.stream_id`);
      }
      return rows.map((r) => ({ streamId: r.stream_id, eventId: r.event_id }));
    });
  }
}
