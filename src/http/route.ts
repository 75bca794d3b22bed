import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { authHook, type Access, type AuthSettings } from './auth.js';
import { invalidRequest, issuesOf } from './errors.js';
import { assertStorable } from './inputGuards.js';

export interface RouteResult {
  status?: number;
  data?: unknown;
  headers?: Record<string, string>;
  /** Sent as is instead of the JSON envelope (Prometheus text, the OpenAPI document). */
  raw?: { contentType: string; body: string | object };
  /** The handler took over the response (`reply.hijack()`, a Server-Sent Events stream). */
  hijacked?: boolean;
}

export interface ResponseDoc {
  description: string;
  /** The `data` of a success envelope. */
  data?: z.ZodTypeAny;
  /** A non-envelope body (documented by media type, optionally with a schema). */
  raw?: { contentType: string; schema?: object };
}

/**
 * One API route: the zod schemas here validate the request *and* generate /api/docs, so the document
 * cannot drift from what the server accepts.
 */
export interface RouteDef<P extends z.ZodTypeAny = z.ZodTypeAny, Q extends z.ZodTypeAny = z.ZodTypeAny, B extends z.ZodTypeAny = z.ZodTypeAny> {
  method: 'GET' | 'POST';
  /** Fastify syntax: `/api/events/streams/:streamId`. */
  url: string;
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  access: Access;
  /** Producer tokens (INGEST_TOKENS) may call it too; every other route answers them 403. */
  producers?: boolean;
  /** Documented here, served by a plugin (the OpenAPI page): not mounted by mountRoutes. */
  external?: boolean;
  params?: P;
  query?: Q;
  body?: B;
  /** A fuller schema for the document only (e.g. per-event-type payloads the domain layer validates). */
  bodyDoc?: z.ZodTypeAny;
  bodyRequired?: boolean;
  responses: Record<number, ResponseDoc>;
  /** Error statuses this route can answer with (documented with the error envelope). */
  errors: number[];
  handler(input: { params: z.output<P>; query: z.output<Q>; body: z.output<B>; req: FastifyRequest; reply: FastifyReply }): Promise<RouteResult>;
}

export const defineRoute = <P extends z.ZodTypeAny, Q extends z.ZodTypeAny, B extends z.ZodTypeAny>(r: RouteDef<P, Q, B>): RouteDef => r as unknown as RouteDef;

function parse(schema: z.ZodTypeAny | undefined, value: unknown, part?: 'body'): unknown {
  if (!schema) return undefined;
  if (part === 'body' && value == null && !schema.isOptional()) {
    // zod would say "Required" with an empty field name; say what is missing.
    const shape = schema instanceof z.ZodObject ? (schema.shape as Record<string, z.ZodTypeAny>) : {};
    const required = Object.entries(shape).filter(([, f]) => !f.isOptional()).map(([k]) => k);
    throw invalidRequest([{ field: 'body', message: `a JSON body is required${required.length ? ` (an object with ${required.join(', ')})` : ''}` }]);
  }
  const r = schema.safeParse(value);
  if (!r.success) throw invalidRequest(issuesOf(r.error));
  return r.data;
}

export function mountRoutes(app: FastifyInstance, routes: readonly RouteDef[], auth: AuthSettings): void {
  for (const r of routes) {
    if (r.external) continue;
    app.route({
      method: r.method,
      url: r.url,
      onRequest: authHook(r.access, auth, { producers: r.producers }),
      handler: async (req, reply) => {
        assertStorable(req.params);
        assertStorable(req.query);
        assertStorable(req.body);
        const params = parse(r.params, req.params);
        const query = parse(r.query, req.query ?? {});
        const body = parse(r.bodyRequired === false ? r.body?.optional() : r.body, req.body, 'body');
        const out = await r.handler({ params, query, body, req, reply } as never);
        if (out.hijacked) return reply;
        reply.code(out.status ?? 200);
        if (out.headers) reply.headers(out.headers);
        if (out.raw) {
          reply.type(out.raw.contentType);
          return out.raw.body;
        }
        return { success: true, data: out.data ?? null };
      },
    });
  }
}
