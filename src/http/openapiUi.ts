import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';

export const OPENAPI_UI_PATH = '/api/docs/ui';

/**
 * `/api/docs/ui`: Swagger UI over the hand-built document (`/api/docs` stays the JSON). @fastify/swagger
 * in static mode only serves that document to the UI (it does not generate one from fastify's routes);
 * the UI's scripts and styles come from the package, so the page works offline. Public, like /api/docs.
 */
export async function mountOpenApiUi(app: FastifyInstance, document: object): Promise<void> {
  await app.register(fastifySwagger, { mode: 'static', specification: { document: document as never } });
  await app.register(fastifySwaggerUi, { routePrefix: OPENAPI_UI_PATH, uiConfig: { docExpansion: 'list', deepLinking: true }, staticCSP: false });
}
