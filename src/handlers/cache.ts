import type { CommonQueryMethods } from 'slonik';

/**
 * The handlers' cache (ticket fields, platform status): hashes of fields, each write guarded by the
 * stream version of the event that carries the value, so handler jobs that run out of order never let
 * a late old event overwrite a newer value. Redis holds it on the Redis queue backend; an UNLOGGED
 * table holds it on the PostgreSQL one (QUEUE_BACKEND=postgres), where there is no Redis.
 */
export interface VersionedCache {
  readonly kind: 'redis' | 'postgres';
  /** A batch of writes for one handler transaction. */
  batch(): CacheBatch;
  /** The live fields of one key (tests, operators); null when there are none. */
  read(key: string): Promise<Record<string, string> | null>;
}

export interface CacheBatch {
  /** Each field is written only if the stored one is older than `version`; a TTL of 0 means no expiry. */
  set(key: string, version: number, ttlSeconds: number, fields: Record<string, string | number>): void;
  readonly length: number;
  /**
   * Sends the batch, before the handler transaction commits (a failure retries the batch; the writes
   * are idempotent). The PostgreSQL cache writes inside `tx`, the Redis one in one pipeline.
   */
  flush(tx: CommonQueryMethods): Promise<void>;
}
