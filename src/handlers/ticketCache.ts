import type { CacheBatch } from './cache.js';

export function ticketCacheKey(prefix: string, ticketId: string): string {
  return `${prefix}ticket:${ticketId}`;
}

export function platformStatusKey(prefix: string): string {
  return `${prefix}platform-status`;
}

/** The guarded write of one ticket's fields; the handler runner sends the whole batch at its end. */
export function cacheTicketFields(cache: CacheBatch, prefix: string, ticketId: string, version: number, ttlSeconds: number, fields: Record<string, string | number>): void {
  cache.set(ticketCacheKey(prefix, ticketId), version, ttlSeconds, fields);
}

/**
 * Version-guarded fields of one hash: each field is written only if the stored one is older than
 * `version`, the stream version of the event that carries the value.
 */
export function cacheVersionedFields(cache: CacheBatch, key: string, version: number, ttlSeconds: number, fields: Record<string, string | number>): void {
  cache.set(key, version, ttlSeconds, fields);
}
