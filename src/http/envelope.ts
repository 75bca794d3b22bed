import { z } from 'zod';

export const ErrorEnvelopeSchema = z.object({
  success: z.literal(false),
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
});

export const ok = <T extends z.ZodTypeAny>(data: T) => z.object({ success: z.literal(true), data });
