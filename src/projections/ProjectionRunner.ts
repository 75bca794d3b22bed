import { sql, type CommonQueryMethods, type DatabasePool } from 'slonik';
import { ProcessGate } from './processGate.js';
import { asOneStatement, type SettleSql } from '../db/statements.js';
import { isInfrastructureError } from '../faults.js';
import { rowToEvent, type StoredEvent, type StoredEventRowType, type Upcaster } from '../eventStore/types.js';
import { isTracingEnabled, recordConsumerRun, spanClock } from '../tracing.js';

export { rowToEvent };
import { documentWrites, DocumentWorkingSet, lockDocumentsMany, lockDocumentsSkipping } from './documents.js';
import type { ProjectedEvent, Projection } from './Projection.js';

interface CheckpointRowType {
  projection: string;
  stream_id: string;
  version: number;
  parked: boolean;
  generation: number;
}

interface CatchUpItem {
  projection: Projection<any>;
  table: string;
  /** Sorted, without duplicates. */
  streams: readonly string[];
}

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
  /**
   * Streams left for a follow-up (`skipLocked`): another transaction held their checkpoint or one of
   * their documents. Nothing of them was applied; their events are still owed.
   */
  deferred: string[];
}

export interface CatchUpOptions {
  /** For the projections without a poisoned stream; rides in the documents-and-checkpoints statement. */
  settle?: SettleSql;
  /** Events to pass over without applying them (an operator skipped them): a rebuild's skip list. */
  skip?: ReadonlySet<string>;
  /**
   * Live work: never wait for a checkpoint or document another transaction holds; leave those streams
   * `deferred` for a follow-up instead, so workers never wait on each other (ARCHITECTURE §7).
   */
  skipLocked?: boolean;
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
  private readonly gate = new ProcessGate();

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

  async catchUp(projection: Projection<any>, streams: readonly string[], options: CatchUpOptions = {}): Promise<CatchUpResult> {
    const sorted = [...new Set(streams)].sort();
    // The current generation is read (FOR SHARE) in the statement that locks the checkpoints.
    return this.pool.transaction(async (tx) => (await this.catchUpSet(tx, [{ projection, table: projection.table, streams: sorted }], 'current', options.skip, options.settle, false, options.skipLocked))[0]!);
  }

  /**
   * Catches up several projections, each over its own streams, in one transaction and four statements
   * (checkpoints, events, documents, writes) however many projections there are: what a batch job
   * does. If that transaction fails, each projection is caught up alone, so one projection's failure
   * is its own. Results (or the error) by projection name.
   */
  async catchUpMany(work: readonly { projection: Projection<any>; streams: readonly string[] }[], options: CatchUpOptions = {}): Promise<Map<string, CatchUpResult | Error>> {
    // Live jobs (the ones that skip what others hold) of this process that overlap much take turns.
    if (options.skipLocked) return this.gate.with(work.map((w) => ({ projection: w.projection.name, streams: w.streams })), () => this.catchUpManyNow(work, options));
    return this.catchUpManyNow(work, options);
  }

  private async catchUpManyNow(work: readonly { projection: Projection<any>; streams: readonly string[] }[], options: CatchUpOptions): Promise<Map<string, CatchUpResult | Error>> {
    const items = [...work]
      .sort((a, b) => (a.projection.name < b.projection.name ? -1 : 1))
      .map((w) => ({ projection: w.projection, table: w.projection.table, streams: [...new Set(w.streams)].sort() }));
    const out = new Map<string, CatchUpResult | Error>();
    // Two projections writing one table cannot share the statements (a row written twice in one statement).
    const distinctTables = new Set(items.map((i) => i.table)).size === items.length;
    if (items.length > 1 && distinctTables) {
      try {
        const results = await this.pool.transaction((tx) => this.catchUpSet(tx, items, 'current', options.skip, options.settle, false, options.skipLocked));
        items.forEach((it, k) => out.set(it.projection.name, results[k]!));
        return out;
      } catch (error) {
        // An outage is nobody's fault: the job waits. Otherwise, alone, each projection either
        // succeeds or reports its own error.
        if (isInfrastructureError(error)) throw error;
      }
    }
    await Promise.all(
      items.map((it) =>
        this.catchUp(it.projection, it.streams, options).then(
          (r) => void out.set(it.projection.name, r),
          async (e: unknown) => {
            if (isInfrastructureError(e)) throw e;
            if (it.streams.length < 2) return void out.set(it.projection.name, asError(e));
            out.set(it.projection.name, await this.bisect(it.projection, it.streams, options));
          },
        ),
      ),
    );
    return out;
  }

  /**
   * A projection's catch-up failed as a whole, before any event could be blamed (a write the database
   * refused, say): halves are caught up alone, recursively, until the failing streams are single;
   * those are reported poisoned, every other stream takes effect. The settle statements run only
   * when no stream is poisoned (the hand-over or the failure record settles otherwise).
   */
  private async bisect(projection: Projection<any>, streams: readonly string[], options: CatchUpOptions): Promise<CatchUpResult> {
    const total: CatchUpResult = { applied: 0, streams: 0, poisoned: [], parkedSkipped: [], deferred: [] };
    const run = async (part: readonly string[]): Promise<void> => {
      try {
        const r = await this.catchUp(projection, part, { skip: options.skip });
        total.applied += r.applied;
        total.streams += r.streams;
        total.poisoned.push(...r.poisoned);
        total.parkedSkipped.push(...r.parkedSkipped);
      } catch (error) {
        if (isInfrastructureError(error)) throw error;
        if (part.length === 1) {
          total.poisoned.push({ streamId: part[0]!, eventId: '', version: 0, error: asError(error) });
          return;
        }
        const mid = Math.ceil(part.length / 2);
        await run(part.slice(0, mid));
        await run(part.slice(mid));
      }
    };
    const mid = Math.ceil(streams.length / 2);
    await run(streams.slice(0, mid));
    await run(streams.slice(mid));
    if (total.poisoned.length === 0) {
      const parts = options.settle?.([projection.name]) ?? [];
      if (parts.length) await this.pool.query(sql.unsafe`${asOneStatement(parts)}`);
    }
    return total;
  }

  /**
   * The catch-up body, inside a caller's transaction (also used by a rebuild, with its own generation
   * and table). With `'current'`, the projection's generation is read FOR SHARE: a rebuild's
   * switch-over takes that row FOR UPDATE, so live work and the switch never interleave.
   */
  async catchUpIn(tx: CommonQueryMethods, projection: Projection<any>, generationOrCurrent: number | 'current', table: string, sorted: readonly string[], options: Pick<CatchUpOptions, 'skip'> & { withArchive?: boolean } = {}): Promise<CatchUpResult> {
    return (await this.catchUpSet(tx, [{ projection, table, streams: sorted }], generationOrCurrent, options.skip, undefined, options.withArchive))[0]!;
  }

  /**
   * `withArchive` (rebuilds): read the events from event_store_all (hot + archived). Live catch-up reads
   * event_store only: a stream is archived only once every consumer has applied its events.
   */
  private async catchUpSet(tx: CommonQueryMethods, items: readonly CatchUpItem[], generationOrCurrent: number | 'current', skip?: ReadonlySet<string>, settle?: SettleSql, withArchive = false, skipLocked = false): Promise<CatchUpResult[]> {
    const results = items.map((): CatchUpResult => ({ applied: 0, streams: 0, poisoned: [], parkedSkipped: [], deferred: [] }));
    const startedAt = spanClock();
    // Nothing to write but the settle statements (every projection is clean when nothing was folded).
    const settleOnly = async () => {
      const parts = settle?.(items.filter((_, k) => results[k]!.deferred.length === 0).map((it) => it.projection.name)) ?? [];
      if (parts.length) await tx.query(sql.unsafe`${asOneStatement(parts)}`);
      return results;
    };
    const pairs = items.flatMap((it) => it.streams.map((s) => [it.projection.name, s] as const));
    if (pairs.length === 0) return settleOnly();
    const names = items.map((it) => it.projection.name);
    const generationSql =
      generationOrCurrent === 'current'
        ? sql.fragment`SELECT name, generation FROM event_projections WHERE name = ANY(${sql.array(names, 'text')}) ORDER BY name FOR SHARE`
        : sql.fragment`SELECT name, ${generationOrCurrent}::int4 AS generation FROM unnest(${sql.array(names, 'text')}::text[]) AS name`;
    // Creates missing checkpoints and locks all of them in one statement: ON CONFLICT DO UPDATE locks
    // and returns an existing row even when another transaction committed it a moment ago (a plain
    // SELECT ... FOR UPDATE in the same statement would not see it). Rows are locked in (projection,
    // stream) order, the order every catch-up uses.
    const wanted = sql.fragment`SELECT u.p, g.generation, u.s FROM unnest(${sql.array(pairs.map((p) => p[0]), 'text')}::text[], ${sql.array(pairs.map((p) => p[1]), 'text')}::text[]) AS u(p, s)
      JOIN g ON g.name = u.p`;
    const checkpoints = (await tx.any(
      skipLocked
        ? // Ownership of a (projection, stream) is a transaction-scoped advisory try-lock, which never
          // waits: a stream another job owns is left out (deferred). Row locks alone would wait, at the
          // least on a checkpoint another job is inserting (a new stream in two batches at once).
          sql.unsafe`
      WITH g AS (${generationSql}), w AS MATERIALIZED (${wanted}),
      mine AS MATERIALIZED (SELECT * FROM w WHERE pg_try_advisory_xact_lock(hashtext(w.p), hashtext(w.s)))
      INSERT INTO projection_checkpoints AS c (projection, generation, stream_id)
      SELECT p, generation, s FROM mine ORDER BY p, s
      ON CONFLICT (projection, generation, stream_id) DO UPDATE SET version = c.version
      RETURNING c.projection, c.stream_id, c.version, c.parked, c.generation`
        : sql.unsafe`
      WITH g AS (${generationSql})
      INSERT INTO projection_checkpoints AS c (projection, generation, stream_id)
      ${wanted} ORDER BY u.p, u.s
      ON CONFLICT (projection, generation, stream_id) DO UPDATE SET version = c.version
      RETURNING c.projection, c.stream_id, c.version, c.parked, c.generation`,
    )) as readonly CheckpointRowType[];
    if (skipLocked) {
      const got = new Set(checkpoints.map((c) => `${c.projection}\u0000${c.stream_id}`));
      items.forEach((it, k) => {
        for (const s of it.streams) if (!got.has(`${it.projection.name}\u0000${s}`)) results[k]!.deferred.push(s);
      });
    }
    const byProjection = new Map<string, CheckpointRowType[]>();
    for (const c of checkpoints) byProjection.set(c.projection, [...(byProjection.get(c.projection) ?? []), c]);
    for (const n of names) if (!byProjection.has(n) && !(skipLocked && results[names.indexOf(n)]!.deferred.length)) throw new Error(`projection ${n} is not registered`);

    // One read for all: every stream after the lowest checkpoint any projection has on it; each
    // projection then takes its own types after its own checkpoint.
    const from = new Map<string, number>();
    items.forEach((it, k) => {
      for (const c of byProjection.get(it.projection.name) ?? []) {
        if (c.parked) results[k]!.parkedSkipped.push(c.stream_id);
        else from.set(c.stream_id, Math.min(from.get(c.stream_id) ?? Infinity, c.version));
      }
    });
    if (from.size === 0) return settleOnly();
    const types = [...new Set(items.flatMap((it) => it.projection.handledTypes))];
    const rows = (await tx.any(eventsAfterCheckpoints([...from], types, withArchive))) as readonly StoredEventRowType[];
    if (rows.length === 0) return settleOnly();
    // A row its upcaster rejects stops its stream there, for the projections of its type only.
    const events: ProjectedEvent[] = [];
    const unreadable = new Map<string, { eventId: string; version: number; type: string; error: Error }>();
    for (const r of rows) {
      if (unreadable.has(r.stream_id)) continue;
      try {
        events.push(toProjected(rowToEvent(r, this.upcast)));
      } catch (error) {
        unreadable.set(r.stream_id, { eventId: r.id, version: r.version, type: r.event_type, error: asError(error) });
      }
    }

    // Per projection: its events by stream (after its checkpoint) and the documents they touch.
    const plans = items.map((it, k) => {
      const after = new Map((byProjection.get(it.projection.name) ?? []).filter((c) => !c.parked).map((c) => [c.stream_id, c.version]));
      const byStream = new Map<string, ProjectedEvent[]>();
      const keys = new Set<string>();
      const keysByStream = new Map<string, Set<string>>();
      // Streams stopped before folding: an unreadable row of a type this projection handles, or an
      // event whose document keys cannot be computed. The events before it still apply.
      const stoppedAt = new Map<string, { eventId: string; version: number; error: Error }>();
      for (const [streamId, bad] of unreadable) {
        const v = after.get(streamId);
        if (v !== undefined && bad.version > v && it.projection.handles(bad.type)) stoppedAt.set(streamId, bad);
      }
      for (const e of events) {
        const v = after.get(e.streamId);
        if (v === undefined || e.version <= v || !it.projection.handles(e.type)) continue;
        const stop = stoppedAt.get(e.streamId);
        if (stop && e.version >= stop.version) continue;
        let eventKeys: readonly string[];
        try {
          eventKeys = it.projection.keysOf(e);
        } catch (error) {
          stoppedAt.set(e.streamId, { eventId: e.id, version: e.version, error: asError(error) });
          continue;
        }
        const list = byStream.get(e.streamId);
        if (list) list.push(e);
        else byStream.set(e.streamId, [e]);
        for (const key of eventKeys) keys.add(key);
        if (skipLocked) {
          const ks = keysByStream.get(e.streamId);
          if (ks) for (const key of eventKeys) ks.add(key);
          else keysByStream.set(e.streamId, new Set(eventKeys));
        }
      }
      for (const [streamId, stop] of stoppedAt) {
        const list = byStream.get(streamId);
        if (list) {
          const before = list.filter((e) => e.version < stop.version);
          if (before.length) byStream.set(streamId, before);
          else byStream.delete(streamId);
        }
        results[k]!.poisoned.push({ streamId, eventId: stop.eventId, version: stop.version, error: stop.error });
      }
      return { it, byStream, keys: [...keys], keysByStream };
    });
    const sets = plans.map((p) => ({ table: p.it.table, keys: p.keys }));
    const { docs: loaded, held: heldKeys } = skipLocked ? await lockDocumentsSkipping(tx, sets) : { docs: await lockDocumentsMany(tx, sets), held: [] };
    if (skipLocked) {
      // A document another transaction holds (a shared one, or one it is creating): every stream that
      // touches it waits for a follow-up; its checkpoint, locked here, is left as it is.
      plans.forEach((plan, k) => {
        const held = heldKeys[k]!;
        for (const [streamId, ks] of plan.keysByStream) {
          if ([...ks].every((key) => held.has(key))) continue;
          plan.byStream.delete(streamId);
          results[k]!.poisoned = results[k]!.poisoned.filter((p) => p.streamId !== streamId);
          results[k]!.deferred.push(streamId);
        }
        plan.keys = [...held];
      });
    }

    const writes: ReturnType<typeof sql.fragment>[] = [];
    const advanced: [string, string, number, number, number][] = [];
    plans.forEach((plan, k) => {
      const result = results[k]!;
      const projection = plan.it.projection;
      const generation = byProjection.get(projection.name)?.[0]?.generation ?? 0;
      const working = new DocumentWorkingSet(loaded[k]!);
      for (const [streamId, list] of plan.byStream) {
        let last: ProjectedEvent | undefined;
        for (const e of list) {
          if (skip?.has(e.id)) {
            // Skipped by an operator: the checkpoint passes it, nothing is applied.
            last = e;
            continue;
          }
          try {
            // One copy-on-write unit per event: a throwing event leaves no trace, the ones before it stay.
            working.foldStream((docs, setPosition) => {
              projection.apply(e, docs);
              setPosition(e.globalPosition);
            });
          } catch (error) {
            // A poison event stops only this stream (parked after its retries); the others in the batch commit.
            result.poisoned = result.poisoned.filter((p) => p.streamId !== streamId);
            result.poisoned.push({ streamId, eventId: e.id, version: e.version, error: error instanceof Error ? error : new Error(String(error)) });
            break;
          }
          last = e;
          result.applied++;
        }
        if (last) {
          advanced.push([projection.name, streamId, generation, last.version, last.globalPosition]);
          result.streams++;
        }
      }
      const docs = documentWrites(plan.it.table, working.changes, plan.keys);
      if (docs.upsert) writes.push(docs.upsert);
      if (docs.cleanup) writes.push(docs.cleanup);
    });
    if (advanced.length) {
      writes.push(sql.fragment`
        UPDATE projection_checkpoints c SET version = u.version, global_position = u.pos, updated_at = now()
        FROM ${sql.unnest(advanced, ['text', 'text', 'int4', 'int4', 'int8'])} AS u(projection, stream_id, generation, version, pos)
        WHERE c.projection = u.projection AND c.generation = u.generation AND c.stream_id = u.stream_id`);
    }
    const clean = items.filter((_, k) => results[k]!.poisoned.length === 0 && results[k]!.deferred.length === 0).map((it) => it.projection.name);
    if (settle && clean.length) writes.push(...settle(clean));
    // Documents, checkpoints and the pipeline's settle statements of every projection in one statement.
    if (writes.length) {
      await tx.query(sql.unsafe`${asOneStatement(writes, undefined, 'w')}`);
    }
    // Live work only: a rebuild's folds are not runs for those events' traces.
    if (isTracingEnabled() && generationOrCurrent === 'current') {
      plans.forEach((plan, k) => {
        const poisoned = results[k]!.poisoned;
        const failure = poisoned.length ? { error: poisoned[0]!.error, eventIds: new Set(poisoned.map((p) => p.eventId)) } : undefined;
        recordConsumerRun('projection', plan.it.projection.name, [...plan.byStream.values()].flat(), startedAt, failure);
      });
    }
    return results;
  }
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/**
 * The events of each stream after its checkpoint, of the given types, in stream and version order.
 * Hot path: our own rows with a fixed column list (validated when written), read without a zod parse.
 *
 * One probe of the (stream_id, version) index per stream, whatever the statistics say:
 * - as a plain join, the planner guessed a third of each stream after its checkpoint and hashed a
 *   sequential scan of the whole store (48 ms per job at 200,000 events, growing with the store);
 * - with the type filter inside the probe and no statistics yet (autovacuum off, a fresh store), it
 *   ANDed in a bitmap of every event of those types, once per stream (1.4 s per job at 100,000 events).
 * So the lateral probe filters nothing but stream and version, and OFFSET 0 keeps it from being
 * flattened or given the type filter; the types are filtered on its rows.
 */
export function eventsAfterCheckpoints(from: readonly (readonly [string, number])[], types: readonly string[], withArchive = false) {
  return sql.unsafe`
    SELECT e.*
    FROM ${sql.unnest(from as [string, number][], ['text', 'int4'])} AS c(stream_id, version)
    CROSS JOIN LATERAL (
      SELECT e.id, e.stream_id, e.stream_type, e.version, e.event_type, e.schema_version, e.payload, e.metadata,
             e.global_position, e.transaction_id::text AS transaction_id, e.occurred_at, e.recorded_at
      FROM ${withArchive ? sql.identifier(['event_store_all']) : sql.identifier(['event_store'])} e
      WHERE e.stream_id = c.stream_id AND e.version > c.version
      ORDER BY e.version OFFSET 0) e
    WHERE e.event_type = ANY(${sql.array([...types], 'text')})
    ORDER BY e.stream_id, e.version`;
}
