import type { FastifyInstance } from 'fastify';
import { authHook, type AuthSettings } from '../auth.js';
import { HttpError } from '../errors.js';
import { loadAssets, type Asset } from './assets.js';

export const DASHBOARD_PATH = '/dashboard';

// Nothing but this origin: the page must work offline, and an injected script could not phone home.
// uPlot sizes its elements through element.style (CSSOM), which style-src does not restrict.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * The operator dashboard: one HTML page and its static files, in a plugin scope of their own behind
 * the same auth as bull-board (Basic with the token as password, or Bearer). The page then calls the
 * JSON API; the browser re-sends the Basic credentials there by itself, because /dashboard's
 * protection space (RFC 7617: the path's parent, "/") covers /api.
 */
export async function mountDashboard(app: FastifyInstance, auth: AuthSettings): Promise<void> {
  let assets: Map<string, Asset> | null = null;
  const send = (name: string) => {
    const a = (assets ??= loadAssets()).get(name);
    if (!a) throw new HttpError(404, 'not_found', `no dashboard file ${name.slice(0, 100)}`);
    return a;
  };
  await app.register(async (scope) => {
    scope.addHook('onRequest', authHook('admin', auth));
    scope.addHook('onSend', async (_req, reply) => {
      reply.header('content-security-policy', CSP).header('x-content-type-options', 'nosniff').header('cache-control', 'no-cache');
    });
    scope.get(DASHBOARD_PATH, async (_req, reply) => {
      const a = send('index.html');
      return reply.type(a.contentType).send(a.body);
    });
    scope.get(`${DASHBOARD_PATH}/`, async (_req, reply) => reply.redirect(DASHBOARD_PATH));
    scope.get<{ Params: { file: string } }>(`${DASHBOARD_PATH}/assets/:file`, async (req, reply) => {
      const a = send(req.params.file);
      return reply.type(a.contentType).send(a.body);
    });
  });
}
