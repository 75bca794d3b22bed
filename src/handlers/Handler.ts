import type { Logger } from 'pino';
import type { CommonQueryMethods } from 'slonik';
import type { DomainEvent } from '../domain/index.js';
import type { EventMetadata, StoredEvent } from '../eventStore/types.js';
import type { CacheBatch } from './cache.js';

export type HandledEvent = Omit<StoredEvent, 'type' | 'payload'> & DomainEvent;

export interface EmittedEvent {
  /** Deterministic ids make an emitted event idempotent across handler retries. */
  id: string;
  type: DomainEvent['type'];
  payload: unknown;
  metadata?: EventMetadata;
}

export type PlatformStatsDelta = Partial<Record<'tickets_discovered' | 'price_changes' | 'price_drops' | 'alerts_triggered', number>>;

export interface HandlerSettings {
  webhookUrl?: string;
  webhookSecret?: string;
  webhookTimeoutMs: number;
  cachePrefix: string;
  cacheTtlSeconds: number;
}

export interface HandlerContext {
  /** The transaction that also inserts this (handler, event) ledger row: effects here are exactly-once. */
  tx: CommonQueryMethods;
  /**
   * Version-guarded cache writes, sent together at the end of the batch (before commit): one Redis
   * pipeline on the Redis queue backend, one upsert in `tx` on the PostgreSQL one.
   */
  cache: CacheBatch;
  /** Per-transaction memo: the same lookup for many events of a batch runs once. */
  memo<T>(key: string, load: () => Promise<T>): Promise<T>;
  settings: HandlerSettings;
  logger: Logger;
  /**
   * Appends a follow-up event in the same transaction (at its end, with the other emitted events in
   * stream order, so concurrent transactions lock streams in one order); enqueued after commit.
   */
  emit(event: EmittedEvent): Promise<void>;
  /** Every event of this transaction's batch, so a handler can prefetch for all of them at once (with memo). */
  batch: readonly HandledEvent[];
  /** Queues a user notification; all of a batch's are inserted in one statement at the end. */
  notify(n: { userId: string; kind: string; eventId: string; title: string; body: object }): void;
  /** Adds to a platform's counters; applied once at the end of the transaction, platforms in sorted order. */
  countForPlatform(platform: string, at: string, delta: PlatformStatsDelta): void;
}

/** A side-effect handler. Never run by a replay. */
export interface EventHandler {
  readonly name: string;
  readonly handledTypes: readonly DomainEvent['type'][];
  /** Per-handler retry policy; defaults come from JOB_ATTEMPTS / JOB_BACKOFF_MS. */
  readonly attempts?: number;
  readonly backoffMs?: number;
  /**
   * Run in a transaction of its own. Set it for a handler with effects outside Postgres and Redis (an
   * HTTP call): the others of a batch share one transaction, and a sibling's failure rolls it back
   * and re-runs each handler alone, which would repeat such an effect within one attempt.
   */
  readonly isolated?: boolean;
  /**
   * Effects outside our databases only (an HTTP call): `handle` runs outside any transaction, one event
   * at a time, so no call waits inside an open transaction and a failing k-th call does not roll back
   * (and repeat) the k−1 before it. The ledger row, and the writes of the recorder `handle` may
   * return, commit right after each success; `ctx.tx` is not available.
   */
  readonly external?: boolean;
  /**
   * Reads the store as of each event's place in the global order (alerts do). Such a batch waits, before
   * its transaction, until every transaction that could still commit before its events has finished,
   * so what precedes an event is the same whenever and wherever the handler runs.
   */
  readonly readsStoreOrder?: boolean;
  handle(event: HandledEvent, ctx: HandlerContext): Promise<void | Recorder>;
}

/** Writes an external handler makes after its call succeeded, in the transaction of its ledger row. */
export type Recorder = (tx: CommonQueryMethods) => Promise<void>;
