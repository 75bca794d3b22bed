import { z } from 'zod';
import type { Container } from '../../app/container.js';
import { FailureRow } from '../../consumers/failures.js';
import type { ReplayApi } from '../../replay/ReplayService.js';
import { audit, OperatorActions } from '../../app/operatorActions.js';
import { actorName } from '../auth.js';
import { HttpError } from '../errors.js';
import { defineRoute } from '../route.js';

export const FailureParams = z.object({ id: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER) }).strict();
export const ResolveBody = z.object({ note: z.string().trim().min(1).max(2000).describe('Why no processing is needed') }).strict();
export const RebuildParams = z.object({ name: z.string().min(1).max(128) }).strict();
export const RebuildBody = z
  .object({
    from: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional().describe('Start at this global position without a reset'),
    chunk: z.number().int().min(1).max(100_000).optional().describe('Events per chunk (default REPLAY_CHUNK_SIZE)'),
  })
  .strict()
  .optional();

export function operationsRoutes(c: Container, replay: ReplayApi) {
  const tags = ['operations'];
  const actions = new OperatorActions(c);
  return [
    defineRoute({
      method: 'POST',
      url: '/api/events/projections/:name/rebuild',
      operationId: 'rebuildProjection',
      summary: 'Enqueue a rebuild (replay) of one projection; the replay process does the work',
      tags,
      access: 'write',
      params: RebuildParams,
      body: RebuildBody,
      bodyRequired: false,
      responses: {
        202: {
          description: 'Enqueued; a rebuild of the same projection already waiting or running is returned instead (`alreadyQueued: true`, same job id)',
          data: z.object({
            jobId: z.string(),
            projections: z.array(z.string()),
            statusUrl: z.string(),
            alreadyQueued: z.boolean(),
            warning: z.string().optional().describe('Set when no replay worker is running: the job waits until one starts'),
          }),
        },
      },
      errors: [400, 404, 409],
      async handler({ params, body, req }) {
        const request = { projection: params.name, from: body?.from, chunk: body?.chunk };
        try {
          const { jobId, projections, alreadyQueued } = await replay.enqueue(request);
          await audit(c.pool, { actor: actorName(req), action: 'rebuild', filter: { projection: params.name }, counts: { projections: projections.length }, details: { jobId, projections, alreadyQueued, from: body?.from ?? null, chunk: body?.chunk ?? null } });
          // A rebuild nobody will run would sit in `waiting` without a word: say so.
          const idle = (await c.queues.replay.getWorkers().catch(() => [1])).length === 0;
          const warning = idle ? 'no replay worker is running: the rebuild waits until one starts (run `npm run replay`, the replay process of the Procfile, or `npm start`)' : undefined;
          return { status: 202, data: { jobId, projections, alreadyQueued, statusUrl: `/api/events/replays/${encodeURIComponent(jobId)}`, ...(warning ? { warning } : {}) } };
        } catch (error) {
          // Matched by name: the replay module owns that class.
          if ((error as Error).name === 'ReplayInProgressError') throw new HttpError(409, 'replay_in_progress', (error as Error).message);
          throw error;
        }
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/api/events/failures/:id/resolve',
      operationId: 'resolveFailure',
      summary: 'Mark a failure resolved without processing it (with a note)',
      tags,
      access: 'write',
      params: FailureParams,
      body: ResolveBody,
      responses: { 200: { description: 'The resolved failure', data: FailureRow } },
      errors: [400, 404, 409],
      handler: async ({ params, body, req }) => ({ data: (await actions.resolveOne(params.id, body.note, actorName(req))).failure }),
    }),
    defineRoute({
      method: 'POST',
      url: '/api/events/failures/:id/retry',
      operationId: 'retryFailure',
      summary: 'Run the consumer again for the failed event (a fresh job with reset attempts)',
      tags,
      access: 'write',
      params: FailureParams,
      responses: { 202: { description: 'Retry enqueued', data: z.object({ failure: FailureRow, jobId: z.string() }) } },
      errors: [400, 404, 409],
      async handler({ params, req }) {
        const { failure, jobId } = await actions.retryOne(params.id, actorName(req));
        return { status: 202, data: { failure, jobId } };
      },
    }),
  ];
}
