import { z } from 'zod';

/** Offsets are accepted because platforms report local times; the instant is still unambiguous. */
export const IsoDateTimeSchema = z.string().datetime({ offset: true });

export type IsoDateTime = z.infer<typeof IsoDateTimeSchema>;
