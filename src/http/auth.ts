import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpError, toErrorResponse } from './errors.js';

/** public: health, readiness, docs. read: GET API and /metrics. write: POST API. admin: bull-board. */
export type Access = 'public' | 'read' | 'write' | 'admin';

export interface AuthSettings {
  token: string | undefined;
  publicRead: boolean;
  /** Producer tokens (INGEST_TOKENS): they may call only routes mounted with `producers: true` (ingest). */
  producers?: readonly { name: string; token: string }[];
}

/** Who sent a request, for the handlers (ingest's default metadata.source) and a later audit log. Never the token. */
export type Actor = { kind: 'operator' } | { kind: 'producer'; name: string };

declare module 'fastify' {
  interface FastifyRequest {
    actor?: Actor;
  }
}

// Hashing both sides first gives equal-length buffers, so neither the comparison time nor an early
// length check tells an attacker anything about the token.
const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

export function tokenMatches(expected: string, presented: string): boolean {
  return timingSafeEqual(digest(expected), digest(presented));
}

/** The token from `Authorization: Bearer <token>` or, for browsers (bull-board), `Basic <any user>:<token>`. */
export function presentedToken(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^(Bearer|Basic)\s+(\S+)\s*$/i.exec(header);
  if (!m) return null;
  if (m[1]!.toLowerCase() === 'bearer') return m[2]!;
  const decoded = Buffer.from(m[2]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? null : decoded.slice(colon + 1);
}

export function requiresToken(access: Access, settings: AuthSettings): boolean {
  if (!settings.token || access === 'public') return false;
  return !(access === 'read' && settings.publicRead);
}

/** The user name of `Authorization: Basic <user>:<password>`, or null (bearer, none, or an empty name). */
export function basicUser(header: string | undefined): string | null {
  const m = header ? /^Basic\s+(\S+)\s*$/i.exec(header) : null;
  if (!m) return null;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const user = colon < 0 ? '' : decoded.slice(0, colon).trim();
  return user || null;
}

/**
 * Who an operator action is audited as: the basic-auth user name (the dashboard's login), else the
 * `X-Actor` header (a script or a proxy naming its user), else `operator`. Never the token. Bounded
 * and stripped of control characters, since it is stored and shown.
 */
export function actorName(req: FastifyRequest): string {
  const header = req.headers['x-actor'];
  const raw = basicUser(req.headers.authorization) ?? (typeof header === 'string' ? header : null);
  const clean = raw?.replace(/[\u0000-\u001f\u007f]/g, '').trim().slice(0, 100);
  return clean || 'operator';
}

/**
 * The actor whose token was presented, or null. Every configured token is compared (in constant time,
 * no early exit), so the answer's timing does not tell which one, if any, came close.
 */
export function identify(settings: AuthSettings, presented: string): Actor | null {
  const seen = digest(presented);
  let found: Actor | null = settings.token !== undefined && timingSafeEqual(digest(settings.token), seen) ? { kind: 'operator' } : null;
  for (const p of settings.producers ?? []) {
    if (timingSafeEqual(digest(p.token), seen) && found === null) found = { kind: 'producer', name: p.name };
  }
  return found;
}

/**
 * An onRequest hook for one access level. Without a configured token nothing is checked (dev only; start-up warns).
 * A producer token is refused (403) everywhere but on routes mounted with `producers: true`, also where
 * PUBLIC_READ or a missing API_TOKEN would let an anonymous request in: it says who it is, and that
 * identity may only ingest. Public routes (/health, /ready, /api/docs) check nothing.
 */
export function authHook(access: Access, settings: AuthSettings, options: { producers?: boolean } = {}) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (access === 'public') return;
    const presented = presentedToken(req.headers.authorization);
    const actor = presented === null ? null : identify(settings, presented);
    if (actor) req.actor = actor;
    if (actor?.kind === 'producer' && !options.producers) {
      const forbidden = toErrorResponse(new HttpError(403, 'forbidden', `producer token "${actor.name}" (INGEST_TOKENS) may only POST /api/events; this needs the operator token (API_TOKEN)`));
      await reply.code(403).type('application/json; charset=utf-8').send(forbidden.body);
      return;
    }
    if (!requiresToken(access, settings)) return;
    if (actor) return;
    // Browsers only show a login prompt for a Basic challenge; API clients get told to use a bearer token.
    const challenge = access === 'admin' ? 'Basic realm="hd-tickets", charset="UTF-8"' : 'Bearer realm="hd-tickets"';
    const denied = toErrorResponse(new HttpError(401, 'unauthorized', presented === null ? 'missing credentials: send Authorization: Bearer <API_TOKEN>' : 'invalid credentials'));
    // Answered here rather than thrown: bull-board's scope has its own error handler that would turn it into a 500.
    await reply.code(401).header('www-authenticate', challenge).type('application/json; charset=utf-8').send(denied.body);
  };
}
