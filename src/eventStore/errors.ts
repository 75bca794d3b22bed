import type { ExpectedVersion } from './types.js';

/** The stream was not at the expected version; nothing was written. Maps to HTTP 409. */
export class ConcurrencyError extends Error {
  override readonly name = 'ConcurrencyError';
  constructor(
    readonly streamId: string,
    readonly expected: ExpectedVersion,
    message: string,
  ) {
    super(message);
  }
}

/** Some, not all, of the event ids were already stored (or stored in another stream); nothing was written. */
export class IdempotencyConflictError extends Error {
  override readonly name = 'IdempotencyConflictError';
  constructor(
    readonly streamId: string,
    message: string,
  ) {
    super(message);
  }
}
