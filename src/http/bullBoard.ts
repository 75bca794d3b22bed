import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { authHook, type AuthSettings } from './auth.js';

export const BULL_BOARD_PATH = '/admin/queues';

/**
 * bull-board over every queue, inside its own plugin scope so the auth hook covers all of its routes
 * (page, static assets, API) and nothing else. Retries and other job actions are enabled: only
 * authenticated operators get in at all.
 */
export async function mountBullBoard(app: FastifyInstance, queues: readonly Queue[], auth: AuthSettings): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BULL_BOARD_PATH);
  createBullBoard({
    queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: false, allowRetries: true })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'HD Tickets queues' } },
  });
  await app.register(async (scope) => {
    scope.addHook('onRequest', authHook('admin', auth));
    await scope.register(serverAdapter.registerPlugin(), { prefix: BULL_BOARD_PATH });
  });
}
