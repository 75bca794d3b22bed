import type { z } from 'zod';
import type { ValidationIssue } from './errors.js';

/** Record keys and unknown keys come from the caller; a field path must not echo a megabyte key. */
const MAX_SEGMENT = 100;
const segment = (p: string | number) => (typeof p === 'string' && p.length > MAX_SEGMENT ? `${p.slice(0, MAX_SEGMENT)}…` : String(p));

/**
 * Flattens zod issues into `field: message` pairs rooted at `prefix`. Unknown keys are reported one
 * per key, at the key itself, because "which field is wrong" is what a caller needs to fix the input.
 */
export function issuesFromZod(error: z.ZodError, prefix: string): ValidationIssue[] {
  const at = (path: readonly (string | number)[]) => [prefix, ...path.map(segment)].filter((p) => p !== '').join('.');
  return error.issues.flatMap((issue): ValidationIssue[] =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ field: at([...issue.path, key]), message: 'unknown field' }))
      : [{ field: at(issue.path), message: issue.message }],
  );
}
