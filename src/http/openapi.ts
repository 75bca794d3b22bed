import { z } from 'zod';
import { zodToJsonSchema } from 'zod-to-json-schema';
import { ErrorEnvelopeSchema, ok } from './envelope.js';
import type { RouteDef } from './route.js';

type Json = Record<string, unknown>;

const STATUS_TEXT: Record<number, string> = {
  400: 'Invalid request (the error names the field)',
  401: 'Missing or invalid credentials',
  403: 'A producer token (INGEST_TOKENS) on a route other than POST /api/events',
  404: 'Not found',
  409: 'Conflict',
  413: 'Request body larger than HTTP_BODY_LIMIT_BYTES',
  415: 'Content-Type is not application/json',
  422: 'Well-formed but rejected by the domain schema (the error names the field)',
  503: 'Not ready',
};

// Inline everything ($refStrategy none): the document stays self-contained per operation, which is
// what clients and the tests validating responses against it want.
export function jsonSchemaOf(schema: z.ZodTypeAny, io: 'input' | 'output' = 'output'): Json {
  const s = zodToJsonSchema(schema, { target: 'jsonSchema7', $refStrategy: 'none', effectStrategy: io === 'input' ? 'input' : 'any', pipeStrategy: io }) as Json;
  delete s.$schema;
  return s;
}

function objectParams(schema: z.ZodTypeAny | undefined, where: 'path' | 'query'): Json[] {
  if (!schema) return [];
  const js = jsonSchemaOf(schema, 'input') as { properties?: Record<string, Json>; required?: string[] };
  return Object.entries(js.properties ?? {}).map(([name, s]) => ({
    name,
    in: where,
    required: where === 'path' || (js.required ?? []).includes(name),
    ...(typeof s.description === 'string' ? { description: s.description } : {}),
    schema: s,
  }));
}

export function buildOpenApi(routes: readonly RouteDef[], info: { version: string; bodyLimitBytes: number }): Json {
  const paths: Record<string, Record<string, Json>> = {};
  for (const r of routes) {
    const path = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const responses: Record<string, Json> = {};
    for (const [status, doc] of Object.entries(r.responses)) {
      const content = doc.raw
        ? { [doc.raw.contentType]: doc.raw.schema ? { schema: doc.raw.schema } : {} }
        : { 'application/json': { schema: jsonSchemaOf(ok(doc.data ?? z.null())) } };
      responses[status] = { description: doc.description, content };
    }
    const errors = new Set(r.errors);
    if (r.access !== 'public') errors.add(401);
    if (r.access !== 'public' && !r.producers) errors.add(403);
    for (const status of [...errors].sort()) {
      responses[String(status)] ??= { description: STATUS_TEXT[status] ?? 'Error', content: { 'application/json': { schema: jsonSchemaOf(ErrorEnvelopeSchema) } } };
    }
    const op: Json = {
      operationId: r.operationId,
      summary: r.summary,
      ...(r.description ? { description: r.description } : {}),
      tags: r.tags,
      parameters: [...objectParams(r.params, 'path'), ...objectParams(r.query, 'query')],
      responses,
      ...(r.access === 'public' ? { security: [] } : {}),
      'x-access': r.access,
      ...(r.producers ? { 'x-producer-tokens': true } : {}),
    };
    const body = r.bodyDoc ?? r.body;
    if (body) op.requestBody = { required: r.bodyRequired ?? true, content: { 'application/json': { schema: jsonSchemaOf(body, 'input') } } };
    (paths[path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'HD Tickets event platform',
      version: info.version,
      description: [
        'Monitoring, operations and ingest API. Every JSON response is an envelope: `{ "success": true, "data": … }` or `{ "success": false, "error": { "code", "message", "details"? } }`.',
        `Request bodies are limited to ${info.bodyLimitBytes} bytes (HTTP_BODY_LIMIT_BYTES); larger ones get 413.`,
        'Authentication: `Authorization: Bearer <API_TOKEN>` on POST routes and bull-board (`/admin/queues` also takes Basic auth with the token as password); GET routes too unless PUBLIC_READ=true. A producer token (INGEST_TOKENS) may only POST /api/events (`x-producer-tokens`); everywhere else it gets 403.',
        'The operator dashboard at `/dashboard` (HTML, not part of this document) takes the same credentials as bull-board and calls the routes here, e.g. `GET /api/events/timeseries` for its charts.',
      ].join('\n\n'),
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' }, basic: { type: 'http', scheme: 'basic' } } },
    security: [{ bearer: [] }],
    paths,
  };
}
