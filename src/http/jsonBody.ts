import type { FastifyInstance } from 'fastify';
import { HttpError } from './errors.js';

/**
 * Replaces fastify's JSON body parser with one that refuses bytes that are not UTF-8. The default
 * decodes leniently, so an invalid byte became U+FFFD and the event was stored altered with a 201;
 * a producer sending Latin-1 should hear about it instead. Parsing itself (proto-poisoning checks,
 * empty body, malformed JSON) is fastify's own, and the body limit still applies (413) because the
 * parser inherits the instance's `bodyLimit`.
 */
export function useStrictJsonParser(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, raw: Buffer, done) => {
    let text: string;
    try {
      // A fresh decoder per request: a fatal decoder that threw is left mid-stream.
      text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch {
      done(new HttpError(400, 'invalid_utf8', 'request body is not valid UTF-8'), undefined);
      return;
    }
    parseJson(req, text, done);
  });
}
