import { z } from 'zod';
import type { Container } from '../../app/container.js';
import { refreshGauges } from '../../app/gauges.js';
import { registry } from '../../metrics/metrics.js';
import { streamTypesOf } from '../../projections/status.js';
import { readiness, ReadinessSchema } from '../queries/readiness.js';
import { defineRoute, type RouteDef } from '../route.js';

/** Health, readiness, metrics and the API document. `docs` is filled in once every route is known. */
export function systemRoutes(c: Container, docs: () => object) {
  const projections = c.projections.map((p) => ({ name: p.name, streamTypes: streamTypesOf(p) }));
  const routes: RouteDef[] = [
    defineRoute({
      method: 'GET',
      url: '/health',
      operationId: 'health',
      summary: 'Liveness: the process is up and serving',
      tags: ['system'],
      access: 'public',
      responses: { 200: { description: 'Up', data: z.object({ status: z.literal('ok'), uptimeSeconds: z.number() }) } },
      errors: [],
      handler: async () => ({ data: { status: 'ok', uptimeSeconds: Math.round(process.uptime()) } }),
    }),
    defineRoute({
      method: 'GET',
      url: '/ready',
      operationId: 'ready',
      summary: 'Readiness: Postgres and Redis reachable, all migrations applied (503 otherwise, with the same body shape)',
      tags: ['system'],
      access: 'public',
      responses: {
        200: { description: 'Ready', data: ReadinessSchema },
        503: { description: 'Not ready: `data` says which check failed', data: ReadinessSchema },
      },
      errors: [],
      async handler() {
        const r = await readiness(c.pool, c.queues.handlers);
        return { status: r.ready ? 200 : 503, data: r };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/metrics',
      operationId: 'metrics',
      summary: 'Prometheus metrics (text exposition format)',
      tags: ['system'],
      access: 'read',
      responses: { 200: { description: 'Metrics', raw: { contentType: 'text/plain; version=0.0.4' } } },
      errors: [],
      async handler() {
        await refreshGauges({ pool: c.pool, queues: c.queues, projections });
        return { raw: { contentType: registry.contentType, body: await registry.metrics() } };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/api/docs',
      operationId: 'openApi',
      summary: 'This OpenAPI 3.1 document',
      tags: ['system'],
      access: 'public',
      responses: { 200: { description: 'OpenAPI document', raw: { contentType: 'application/json', schema: { type: 'object' } } } },
      errors: [],
      handler: async () => ({ raw: { contentType: 'application/json; charset=utf-8', body: docs() } }),
    }),
  ];
  return routes;
}
