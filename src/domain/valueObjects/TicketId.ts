import { z } from 'zod';
import { IdSchema } from './Id.js';

/** A platform's listing id. Same rules as any id today; a named schema so the rules can diverge later. */
export const TicketIdSchema = IdSchema;

export type TicketId = z.infer<typeof TicketIdSchema>;
