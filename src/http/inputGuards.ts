import { fieldPath, HttpError } from './errors.js';

const MAX_DEPTH = 64;
// A high surrogate not followed by a low one, or a low one not preceded by a high one (no `u` flag: it
// must see code units). String.prototype.isWellFormed would do, but it is not in the ES2022 lib.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Postgres cannot store NUL in text or jsonb, and JSON numbers like 1e400 parse to Infinity (which
 * JSON.stringify would silently turn into null). Both are refused up front, at their field, so they
 * can neither reach the store as a 500 nor be stored altered. Lone UTF-16 surrogates ("\ud800" in
 * JSON text) are valid JSON but not Unicode: jsonb refuses them (22P02) and text would store them
 * mangled, so they are refused too, in values and in keys. Iterative, so hostile nesting cannot
 * overflow the stack.
 */
export function assertStorable(value: unknown, prefix = ''): void {
  const stack: { v: unknown; path: (string | number)[] }[] = [{ v: value, path: [] }];
  while (stack.length) {
    const { v, path } = stack.pop()!;
    if (path.length > MAX_DEPTH) throw new HttpError(400, 'invalid_request', `${fieldPath(prefix, path.slice(0, 8))}…: nested more than ${MAX_DEPTH} levels`, { field: fieldPath(prefix, path.slice(0, 8)) });
    if (typeof v === 'string') {
      if (v.includes('\u0000')) throw bad(fieldPath(prefix, path), 'NUL characters are not allowed');
      if (LONE_SURROGATE.test(v)) throw bad(fieldPath(prefix, path), 'lone UTF-16 surrogates are not allowed');
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw bad(fieldPath(prefix, path), 'number out of range');
    } else if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], path: [...path, i] });
    } else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        if (k.includes('\u0000')) throw bad(fieldPath(prefix, path), 'NUL characters are not allowed in keys');
        // Named by the parent: the key itself cannot be echoed back as valid JSON/UTF-8.
        if (LONE_SURROGATE.test(k)) throw bad(fieldPath(prefix, path), 'lone UTF-16 surrogates are not allowed in keys');
        stack.push({ v: x, path: [...path, k] });
      }
    }
  }
}

function bad(field: string, message: string): HttpError {
  return new HttpError(400, 'invalid_request', `${field || 'body'}: ${message}`, { field, issues: [{ field, message }] });
}
