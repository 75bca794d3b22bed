import { z } from 'zod';

/**
 * A zod enum whose rejection message names the field and lists the allowed values without echoing
 * the received value (which is caller-controlled and unbounded in length).
 */
export function oneOf<const T extends readonly [string, ...string[]]>(label: string, values: T) {
  return z.enum(values as unknown as [T[number], ...T[number][]], {
    errorMap: (issue, ctx) => ({
      message: issue.code === 'invalid_enum_value' ? `Invalid ${label}: expected one of ${values.join(', ')}` : ctx.defaultError,
    }),
  });
}
