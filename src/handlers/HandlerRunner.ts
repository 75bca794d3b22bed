import type { Logger } from 'pino';
import { sql, type DatabasePool } from 'slonik';
import { asOneStatement, type SettleSql } from '../db/statements.js';
import { eventRegistry, type DomainEvent } from '../domain/index.js';
import type { OutboxEntry, Publisher } from '../eventBus/publisher.js';
import type { PostgresEventStore } from '../eventStore/PostgresEventStore.js';
import { rowToEvent, type StoredEvent, type StoredEventRowType, type Upcaster } from '../eventStore/types.js';
import { isInfrastructureError } from '../faults.js';
import { inEventTrace, isTracingEnabled, recordConsumerRun, spanClock } from '../tracing.js';
import { flushPlatformStats } from './alerting.js';
import type { VersionedCache } from './cache.js';
import type { EmittedEvent, EventHandler, HandledEvent, HandlerContext, HandlerSettings, PlatformStatsDelta, Recorder } from './Handler.js';

/** Batches at least this large run their (non-isolated) handlers in one shared transaction. */
export const SHARED_TRANSACTION_MIN_EVENTS = 200;

/** Streams per append statement of emitted events (alerts: one stream per monitor). */
const MAX_STREAMS_PER_APPEND = 500;


/** Runs settle statements on their own (nothing else to commit with them). */
async function settleAlone(pool: DatabasePool, settle: SettleSql | undefined, consumers: readonly string[]): Promise<void> {
  const parts = settle?.(consumers) ?? [];
  if (parts.length) await pool.query(sql.unsafe`${asOneStatement(parts)}`);
}

export interface RunOptions {
  settle?: SettleSql;
  /**
   * Receives the events the handlers emitted, once committed, instead of their being enqueued: the
   * caller processes them itself (their outbox rows stay until it is done, so nothing is lost).
   */
  onEmitted?: (entries: OutboxEntry[]) => void;
}

export interface UnreadableEvent {
  eventId: string;
  eventType: string;
  streamId: string;
  version: number;
  error: Error;
}

export interface FailedEvent {
  eventId: string;
  error: Error;
}

export interface HandlerBatchResult {
  processed: number;
  skipped: number;
  failed: FailedEvent[];
}

/**
 * Runs one handler over a batch of events. Each (handler, event) pair takes effect once: its ledger row
 * is inserted in the same transaction as the handler's Postgres effects. The batch runs in one
 * transaction; if it fails, each event is retried in its own transaction so that one poison event
 * leaves only itself to retry.
 */
export class HandlerRunner {
  constructor(
    private readonly deps: {
      pool: DatabasePool;
      store: PostgresEventStore;
      publisher: Publisher;
      cache: VersionedCache;
      settings: HandlerSettings;
      logger: Logger;
      upcast: Upcaster;
    },
  ) {
  }

  async loadEvents(eventIds: readonly string[]): Promise<StoredEvent[]> {
    const { events, unreadable } = await this.load(eventIds);
    if (unreadable.length) throw unreadable[0]!.error;
    return events;
  }

  /**
   * The events by id, in store order. A row that cannot be read (its upcaster rejects it) is set
   * apart with its type, so that only the handlers of that type fail it, for that event alone.
   */
  async load(eventIds: readonly string[]): Promise<{ events: StoredEvent[]; unreadable: UnreadableEvent[] }> {
    // Hot path: rows of our own table with a fixed column list, validated when written; zod-parsing
    // every row for every consumer cost ~8 % of a worker's CPU.
    const rows = (await this.deps.pool.any(sql.unsafe`
      SELECT id, stream_id, stream_type, version, event_type, schema_version, payload, metadata,
             global_position, transaction_id::text AS transaction_id, occurred_at, recorded_at
      FROM event_store WHERE id = ANY(${sql.array([...eventIds], 'uuid')}) ORDER BY global_position`)) as readonly StoredEventRowType[];
    const events: StoredEvent[] = [];
    const unreadable: UnreadableEvent[] = [];
    for (const r of rows) {
      try {
        events.push(rowToEvent(r, this.deps.upcast));
      } catch (error) {
        unreadable.push({ eventId: r.id, eventType: r.event_type, streamId: r.stream_id, version: r.version, error: asError(error) });
      }
    }
    return { events, unreadable };
  }

  async run(handler: EventHandler, eventIds: readonly string[], options: RunOptions = {}): Promise<HandlerBatchResult> {
    return this.runEvents(handler, await this.loadEvents(eventIds), options);
  }

  /** Runs the handler over already loaded events (a batch job loads them once for every handler). */
  async runEvents(handler: EventHandler, loaded: readonly StoredEvent[], options: RunOptions = {}): Promise<HandlerBatchResult> {
    const events = loaded.filter((e) => (handler.handledTypes as readonly string[]).includes(e.type));
    if (handler.external && events.length > 0) return this.runExternal(handler, events, options);
    if (events.length === 0) {
      // Nothing this handler must do (e.g. a retried failure whose event it does not handle): it is settled.
      await settleAlone(this.deps.pool, options.settle, [handler.name]);
      return { processed: 0, skipped: loaded.length, failed: [] };
    }
    try {
      const [processed] = await this.runInTransaction([{ handler, events }], options.settle, options.onEmitted);
      return { processed: processed!, skipped: events.length - processed!, failed: [] };
    } catch (error) {
      // An outage is not the events' fault: the whole job waits (no per-event isolation, no failure).
      if (isInfrastructureError(error)) throw error;
      if (events.length === 1) return { processed: 0, skipped: 0, failed: [{ eventId: events[0]!.id, error: asError(error) }] };
    }
    const result: HandlerBatchResult = { processed: 0, skipped: 0, failed: [] };
    for (const e of events) {
      try {
        result.processed += (await this.runInTransaction([{ handler, events: [e] }], undefined, options.onEmitted))[0]!;
      } catch (error) {
        if (isInfrastructureError(error)) throw error;
        result.failed.push({ eventId: e.id, error: asError(error) });
      }
    }
    // Every event took effect, each in its own transaction (the ledger makes a re-run harmless), so
    // the bookkeeping can settle after them.
    if (result.failed.length === 0) await settleAlone(this.deps.pool, options.settle, [handler.name]);
    return result;
  }

  /**
   * For handlers that read the store as of their events' place in the global order: waits (outside any
   * transaction, holding no lock) until no transaction older than the batch's newest event is still
   * running, so everything that precedes those events in the global order is visible. Usually at once;
   * if it takes longer than a few seconds the job is delayed like any transient fault.
   */
  private async awaitSettledOrder(handlers: readonly EventHandler[], loaded: readonly StoredEvent[]): Promise<void> {
    const types = new Set(handlers.filter((h) => h.readsStoreOrder).flatMap((h) => h.handledTypes as readonly string[]));
    if (types.size === 0) return;
    let newest = -1n;
    for (const e of loaded) if (types.has(e.type) && BigInt(e.transactionId) > newest) newest = BigInt(e.transactionId);
    if (newest < 0n) return;
    const deadline = Date.now() + 5000;
    for (let pause = 2; ; pause = Math.min(pause * 2, 100)) {
      const settled = (await this.deps.pool.oneFirst(sql.unsafe`SELECT ${newest.toString()}::xid8 < pg_snapshot_xmin(pg_current_snapshot()) AS settled`)) as boolean;
      if (settled) return;
      if (Date.now() > deadline) throw new OrderNotSettledError(newest.toString());
      await new Promise((r) => setTimeout(r, pause));
    }
  }

  /**
   * An external handler (an HTTP call): each event's call runs outside any transaction, one after the
   * other; the ledger rows of the successful calls commit together right after the batch (before its
   * failures are reported), so a later event's failure neither rolls back nor repeats them. Events
   * already in the ledger are passed over. A crash before that commit repeats those calls on the next
   * attempt: the event id is the Idempotency-Key.
   */
  private async runExternal(handler: EventHandler, events: readonly StoredEvent[], options: RunOptions): Promise<HandlerBatchResult> {
    const done = new Set(
      (await this.deps.pool.any(sql.unsafe`
        SELECT event_id::text AS event_id FROM event_handler_ledger
        WHERE handler = ${handler.name} AND event_id = ANY(${sql.array(events.map((e) => e.id), 'uuid')})`)).map((r) => (r as { event_id: string }).event_id),
    );
    const ctx = this.externalContext(events);
    const result: HandlerBatchResult = { processed: 0, skipped: 0, failed: [] };
    const succeeded: { eventId: string; record: Recorder | undefined }[] = [];
    let fault: unknown = null;
    for (const e of events) {
      if (done.has(e.id)) {
        result.skipped++;
        continue;
      }
      try {
        // In the event's trace: a webhook call is a span of it and sends its traceparent.
        const record = await inEventTrace(e, () => handler.handle(e as unknown as HandledEvent, ctx));
        succeeded.push({ eventId: e.id, record: record ?? undefined });
      } catch (error) {
        // An outage stops the batch: what succeeded so far is still recorded below.
        if (isInfrastructureError(error)) {
          fault = error;
          break;
        }
        result.failed.push({ eventId: e.id, error: asError(error) });
      }
    }
    // Every successful call of the batch is recorded in one transaction, before the failures are
    // reported, so a retry repeats none of them. A crash before this commit repeats those calls once
    // (the Idempotency-Key lets the receiver drop them); recording per call cost a transaction per alert.
    if (succeeded.length) {
      await this.deps.pool.transaction(async (tx) => {
        const claimed = new Set(
          ((await tx.any(sql.unsafe`
            INSERT INTO event_handler_ledger (handler, event_id)
            SELECT ${handler.name}, id FROM unnest(${sql.array(succeeded.map((s) => s.eventId), 'uuid')}::uuid[]) AS id
            ON CONFLICT DO NOTHING RETURNING event_id::text AS event_id`)) as readonly { event_id: string }[]).map((r) => r.event_id),
        );
        for (const s of succeeded) if (s.record && claimed.has(s.eventId)) await s.record(tx);
        if (fault === null && result.failed.length === 0) {
          const parts = options.settle?.([handler.name]) ?? [];
          if (parts.length) await tx.query(sql.unsafe`${asOneStatement(parts)}`);
        }
      });
      result.processed = succeeded.length;
    } else if (fault === null && result.failed.length === 0) {
      await settleAlone(this.deps.pool, options.settle, [handler.name]);
    }
    if (fault !== null) throw fault;
    return result;
  }

  private externalContext(events: readonly StoredEvent[]): HandlerContext {
    const refuse = (what: string) => () => {
      throw new Error(`an external handler has no ${what}: return a recorder from handle() for writes after the call`);
    };
    return {
      get tx(): never {
        return refuse('transaction')() as never;
      },
      get cache(): never {
        return refuse('cache batch')() as never;
      },
      memo: <T>(_key: string, load: () => Promise<T>) => load(),
      settings: this.deps.settings,
      logger: this.deps.logger,
      emit: async () => refuse('emit')(),
      batch: events as unknown as HandledEvent[],
      notify: refuse('notify'),
      countForPlatform: refuse('platform counters'),
    };
  }

  /**
   * Runs several handlers over one batch: those not `isolated` share one transaction (one ledger
   * insert, one stats upsert, one commit for all of them); if it fails, each of them runs alone
   * (`runEvents`), so a failing handler leaves only its own events to retry. Isolated handlers always
   * run alone. Results by handler name.
   */
  async runMany(handlers: readonly EventHandler[], loaded: readonly StoredEvent[], options: RunOptions = {}): Promise<Map<string, HandlerBatchResult>> {
    await this.awaitSettledOrder(handlers, loaded);
    const results = new Map<string, HandlerBatchResult>();
    const units = handlers.map((handler) => ({ handler, events: loaded.filter((e) => (handler.handledTypes as readonly string[]).includes(e.type)) }));
    const idle = units.filter((u) => u.events.length === 0);
    for (const u of idle) results.set(u.handler.name, { processed: 0, skipped: loaded.length, failed: [] });
    if (idle.length) await settleAlone(this.deps.pool, options.settle, idle.map((u) => u.handler.name));
    const busy = units.filter((u) => u.events.length > 0);
    // Small batches (a quiet system) run their handlers concurrently, each in its own transaction:
    // lower latency. Large ones (a busy system) share one: fewer round trips per event.
    const shared = loaded.length >= SHARED_TRANSACTION_MIN_EVENTS ? busy.filter((u) => !u.handler.isolated && !u.handler.external) : [];
    const alone = shared.length > 1 ? busy.filter((u) => u.handler.isolated || u.handler.external) : busy;
    const runAlone = (u: (typeof units)[number]) => this.runEvents(u.handler, u.events, options).then((r) => void results.set(u.handler.name, r));
    const startedAt = spanClock();
    await Promise.all([
      shared.length > 1
        ? this.runInTransaction(shared, options.settle, options.onEmitted).then(
            (counts) => shared.forEach((u, i) => results.set(u.handler.name, { processed: counts[i]!, skipped: u.events.length - counts[i]!, failed: [] })),
            (error: unknown) => (isInfrastructureError(error) ? Promise.reject(error) : Promise.all(shared.map(runAlone))),
          )
        : null,
      ...alone.map(runAlone),
    ]).catch((error: unknown) => {
      traceRuns(busy, results, startedAt, error);
      throw error;
    });
    traceRuns(busy, results, startedAt);
    return results;
  }

  private async runInTransaction(units: readonly { handler: EventHandler; events: readonly StoredEvent[] }[], settle?: SettleSql, onEmitted?: RunOptions['onEmitted']): Promise<number[]> {
    const emitted: OutboxEntry[] = [];
    const processed = await this.deps.pool.transaction(async (tx) => {
      const pairs = units.flatMap((u) => u.events.map((e) => [u.handler.name, e.id] as const)).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
      // Hot path: a fixed two-column shape, not worth a zod parse per row. The pipeline's settle
      // statements ride in this first statement: they commit or roll back with the effects.
      const claimedRows = (await tx.any(sql.unsafe`${asOneStatement(
        settle?.(units.map((u) => u.handler.name)) ?? [],
        sql.fragment`INSERT INTO event_handler_ledger (handler, event_id)
        SELECT * FROM unnest(${sql.array(pairs.map((p) => p[0]), 'text')}::text[], ${sql.array(pairs.map((p) => p[1]), 'uuid')}::uuid[])
        ON CONFLICT DO NOTHING RETURNING handler, event_id`,
      )}`)) as readonly { handler: string; event_id: string }[];
      const claimedBy = new Map<string, Set<string>>();
      for (const r of claimedRows) {
        const set = claimedBy.get(r.handler);
        if (set) set.add(r.event_id);
        else claimedBy.set(r.handler, new Set([r.event_id]));
      }
      const pendingEmits: EmittedEvent[] = [];
      const cacheBatch = this.deps.cache.batch();
      const stats = new Map<string, { at: string; delta: PlatformStatsDelta }>();
      const notifications: { userId: string; kind: string; eventId: string; title: string; body: object }[] = [];
      for (const { handler, events } of units) {
        const claimed = claimedBy.get(handler.name) ?? new Set<string>();
        // Per handler: its memo and its batch (two handlers may memoise the same key with different meanings).
        const memo = new Map<string, Promise<unknown>>();
        const ctx: HandlerContext = {
          tx,
          cache: cacheBatch,
          memo: <T>(key: string, load: () => Promise<T>) => {
            if (!memo.has(key)) memo.set(key, load());
            return memo.get(key) as Promise<T>;
          },
          settings: this.deps.settings,
          logger: this.deps.logger,
          emit: async (event: EmittedEvent) => {
            // Validated here, so a handler sees a bad event at the line that emits it; kept as parsed.
            pendingEmits.push({ ...event, payload: eventRegistry.validate(event.type, event.payload).payload });
          },
          batch: events.filter((e) => claimed.has(e.id)) as unknown as HandledEvent[],
          notify: (n) => void notifications.push(n),
          countForPlatform: (platform, at, delta) => {
            const cur = stats.get(platform) ?? { at, delta: {} };
            for (const [k, v] of Object.entries(delta) as [keyof PlatformStatsDelta, number][]) cur.delta[k] = (cur.delta[k] ?? 0) + v;
            if (at > cur.at) cur.at = at;
            stats.set(platform, cur);
          },
        };
        for (const e of events) {
          if (!claimed.has(e.id)) continue;
          await handler.handle(e as unknown as HandledEvent, ctx);
        }
      }
      if (notifications.length) {
        notifications.sort((a, b) => (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : a.kind < b.kind ? -1 : 1));
        await tx.query(sql.unsafe`
          INSERT INTO user_notifications (user_id, kind, event_id, title, body)
          SELECT * FROM ${sql.unnest(notifications.map((n) => [n.userId, n.kind, n.eventId, n.title, JSON.stringify(n.body)]), ['text', 'text', 'uuid', 'text', 'jsonb'])}
          ON CONFLICT (kind, event_id) DO NOTHING`);
      }
      // Before commit: if the cache write fails the batch is retried, and the cache writes are idempotent.
      await cacheBatch.flush(tx);
      // This session's shard of each platform's counters (migration 15): no other transaction writes it.
      await flushPlatformStats(tx, stats);
      // Last before commit, the only locks another batch may wait for: the emitted events lock their
      // streams' rows (a monitor's stream takes every alert of the monitor), sorted as producers sort
      // them, and held until the COMMIT that follows.
      const byStream = new Map<string, { streamType: string; events: EmittedEvent[] }>();
      for (const ev of pendingEmits) {
        const { streamId, streamType } = eventRegistry.streamOf({ type: ev.type, payload: ev.payload } as DomainEvent);
        const entry = byStream.get(streamId) ?? { streamType, events: [] };
        entry.events.push(ev);
        byStream.set(streamId, entry);
      }
      if (byStream.size) {
        const appends = [...byStream].map(([streamId, { streamType, events: evs }]) => ({
          streamId,
          streamType,
          events: evs.map((ev) => ({ id: ev.id, type: ev.type, schemaVersion: eventRegistry.currentVersion(ev.type), payload: ev.payload, metadata: ev.metadata })),
        }));
        // A ticket event matching thousands of monitors: appended a bounded number of streams per
        // statement, still in this transaction (exactly once with the ledger row).
        for (let from = 0; from < appends.length; from += MAX_STREAMS_PER_APPEND) {
          const part = appends.slice(from, from + MAX_STREAMS_PER_APPEND);
          const results = await this.deps.store.appendManyOn(tx, part);
          results.forEach((r, k) => {
            if (!r.alreadyStored) emitted.push(...r.events.map((x, i) => ({ position: x.position, eventId: x.id, streamId: r.streamId, eventType: part[k]!.events[i]!.type })));
          });
        }
      }
      return units.map((u) => claimedBy.get(u.handler.name)?.size ?? 0);
    });
    if (emitted.length && onEmitted) onEmitted(emitted);
    else if (emitted.length) {
      await this.deps.publisher.publish(emitted).catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'enqueue of emitted events failed; the relay will deliver them'));
    }
    return processed;
  }
}

/** Each handler's run over the batch, as spans in its events' traces (README, Tracing). */
function traceRuns(units: readonly { handler: EventHandler; events: readonly StoredEvent[] }[], results: Map<string, HandlerBatchResult>, startedAt: number, error?: unknown): void {
  if (!isTracingEnabled()) return;
  for (const u of units) {
    const failed = results.get(u.handler.name)?.failed;
    const failure = failed?.length ? { error: failed[0]!.error, eventIds: new Set(failed.map((f) => f.eventId)) } : error !== undefined && !results.has(u.handler.name) ? { error } : undefined;
    recordConsumerRun('handler', u.handler.name, u.events, startedAt, failure);
  }
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/** Transactions older than a batch's events are still running after a few seconds: the job waits (a transient fault, not poison). */
export class OrderNotSettledError extends Error {
  override readonly name = 'OrderNotSettledError';
  constructor(xid: string) {
    super(`transactions older than ${xid} are still running; the events' place in the global order is not settled yet`);
  }
}
