import { z } from 'zod';
import type { Container } from '../../app/container.js';
import { LagSampleSchema, type LagHistory } from '../lagHistory.js';
import { eventsPerMinute, MinuteCountsSchema } from '../queries/timeseries.js';
import { defineRoute } from '../route.js';

export const TimeseriesQuery = z
  .object({ minutes: z.coerce.number().int().min(1).max(60).default(60).describe('Window in minutes, 1–60 (default 60), the current minute included') })
  .strict();

export const TimeseriesSchema = z.object({
  minutes: z.number().int(),
  eventsPerMinute: z.array(MinuteCountsSchema).describe('Every minute of the window, oldest first'),
  lag: z.array(LagSampleSchema).describe('Owed events per consumer, sampled by this web process about every 10 s since it started (at most the window)'),
});

/** The series behind the dashboard's charts. */
export function dashboardRoutes(c: Container, lag: LagHistory) {
  return [
    defineRoute({
      method: 'GET',
      url: '/api/events/timeseries',
      operationId: 'getTimeseries',
      summary: 'Events per minute by type over the last hour, and owed events (lag) per consumer over time',
      description: 'Its cost follows the window (at most an hour of events, through the BRIN index on recorded_at), not the size of the store.',
      tags: ['monitoring'],
      access: 'read',
      query: TimeseriesQuery,
      responses: { 200: { description: 'Time series', data: TimeseriesSchema } },
      errors: [400],
      handler: async ({ query }) => ({
        data: { minutes: query.minutes, eventsPerMinute: await eventsPerMinute(c.pool, query.minutes), lag: lag.since(query.minutes * 60_000) },
      }),
    }),
  ];
}
