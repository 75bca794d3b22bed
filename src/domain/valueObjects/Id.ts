import { z } from 'zod';

/**
 * Ids end up in stream ids, cache keys and URLs, so they are restricted to a safe alphabet and must
 * not start with a separator (which would make "ticket-" + id ambiguous to split).
 */
export const IdSchema = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "must start with a letter or digit and contain only letters, digits, '_', '.' and '-'");

export type Id = z.infer<typeof IdSchema>;
