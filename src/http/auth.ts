import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { HttpError, toErrorResponse } from './errors.js';

/** public: health, readiness, docs. read: GET API and /metrics. write: POST API. admin: bull-board. */
export type Access = 'public' | 'read' | 'write' | 'admin';

export interface AuthSettings {
  token: string | undefined;
  publicRead: boolean;
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

/** An onRequest hook for one access level. Without a configured token nothing is checked (dev only; start-up warns). */
export function authHook(access: Access, settings: AuthSettings) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (!requiresToken(access, settings)) return;
    const presented = presentedToken(req.headers.authorization);
    if (presented !== null && tokenMatches(settings.token!, presented)) return;
    // Browsers only show a login prompt for a Basic challenge; API clients get told to use a bearer token.
    const challenge = access === 'admin' ? 'Basic realm="hd-tickets", charset="UTF-8"' : 'Bearer realm="hd-tickets"';
    const denied = toErrorResponse(new HttpError(401, 'unauthorized', presented === null ? 'missing credentials: send Authorization: Bearer <API_TOKEN>' : 'invalid credentials'));
    // Answered here rather than thrown: bull-board's scope has its own error handler that would turn it into a 500.
    await reply.code(401).header('www-authenticate', challenge).type('application/json; charset=utf-8').send(denied.body);
  };
}
