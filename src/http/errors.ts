import type { FastifyError } from 'fastify';
import type { z } from 'zod';
import { EventValidationError, type ValidationIssue } from '../domain/index.js';
import { ConcurrencyError, IdempotencyConflictError } from '../eventStore/errors.js';
import { FailureNotFoundError, FailureStateError } from '../consumers/failures.js';
import { UnknownProjectionError } from '../replay/ReplayService.js';

/** An error the client caused or may act on; everything else becomes an opaque 500. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }
}

export interface ErrorBody {
  success: false;
  error: { code: string; message: string; details?: unknown };
}

const MAX_SEGMENT = 100;

/** `events[3].payload.price`, the same path style the event bus uses for batch items. */
export function fieldPath(prefix: string, path: readonly (string | number)[]): string {
  let out = prefix;
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += `${out ? '.' : ''}${p.length > MAX_SEGMENT ? `${p.slice(0, MAX_SEGMENT)}…` : p}`;
  }
  return out;
}

export function issuesOf(error: z.ZodError, prefix = ''): ValidationIssue[] {
  return error.issues.flatMap((i): ValidationIssue[] =>
    i.code === 'unrecognized_keys'
      ? i.keys.map((k) => ({ field: fieldPath(prefix, [...i.path, k]), message: 'unknown field' }))
      : [{ field: fieldPath(prefix, i.path), message: i.message }],
  );
}

/** 400 for input whose shape is wrong; the first issue names the field, details lists them all (bounded). */
export function invalidRequest(issues: readonly ValidationIssue[], status = 400, code = 'invalid_request'): HttpError {
  const first = issues[0] ?? { field: '', message: 'invalid input' };
  const shown = issues.slice(0, 50);
  return new HttpError(status, code, first.field ? `${first.field}: ${first.message}` : first.message, { field: first.field, issues: shown, more: issues.length - shown.length || undefined });
}

// Fastify's own errors (body parsing, limits) carry FST_* codes; name them for clients.
const FASTIFY_CODES: Record<string, [number, string]> = {
  FST_ERR_CTP_BODY_TOO_LARGE: [413, 'payload_too_large'],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, 'unsupported_media_type'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'invalid_content_length'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'empty_body'],
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'malformed_json'],
};

/** Maps any thrown error to a status and an envelope. `internal` tells the caller to log it. */
export function toErrorResponse(error: unknown): { status: number; body: ErrorBody; headers?: Record<string, string>; internal: boolean } {
  const body = (code: string, message: string, details?: unknown): ErrorBody => ({ success: false, error: details === undefined ? { code, message } : { code, message, details } });
  if (error instanceof HttpError) return { status: error.status, body: body(error.code, error.message, error.details), headers: error.headers, internal: false };
  if (error instanceof EventValidationError) {
    const e = invalidRequest(error.issues, 422, 'validation_failed');
    return { status: 422, body: body(e.code, e.message, e.details), internal: false };
  }
  if (error instanceof ConcurrencyError) return { status: 409, body: body('version_conflict', error.message, { streamId: error.streamId, expectedVersion: error.expected }), internal: false };
  if (error instanceof IdempotencyConflictError) return { status: 409, body: body('idempotency_conflict', error.message, { streamId: error.streamId }), internal: false };
  if (error instanceof FailureNotFoundError) return { status: 404, body: body('failure_not_found', error.message), internal: false };
  if (error instanceof FailureStateError) return { status: 409, body: body('failure_state', error.message), internal: false };
  if (error instanceof UnknownProjectionError) return { status: 404, body: body('unknown_projection', error.message, { validNames: error.validNames }), internal: false };
  const fe = error as Partial<FastifyError> & { name?: string };
  const mapped = fe.code ? FASTIFY_CODES[fe.code] : undefined;
  if (mapped) return { status: mapped[0], body: body(mapped[1], fe.message ?? mapped[1]), internal: false };
  if (fe.name === 'SyntaxError' || fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY') return { status: 400, body: body('malformed_json', 'request body is not valid JSON'), internal: false };
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) return { status: fe.statusCode, body: body('bad_request', fe.message ?? 'bad request'), internal: false };
  return { status: 500, body: body('internal_error', 'internal server error'), internal: true };
}
