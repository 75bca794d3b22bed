import { z } from 'zod';

export const PLATFORMS = ['ticketmaster', 'stubhub', 'seatgeek', 'viagogo', 'livenation', 'axs', 'eventbrite', 'tickpick', 'vividseats', 'gigsberg'] as const;

export const PlatformSourceSchema = z.enum(PLATFORMS, {
  errorMap: (issue, ctx) => ({
    message: issue.code === 'invalid_enum_value' ? `Invalid platform: expected one of ${PLATFORMS.join(', ')}` : ctx.defaultError,
  }),
});

export type PlatformSource = z.infer<typeof PlatformSourceSchema>;
