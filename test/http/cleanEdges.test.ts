import { randomUUID } from 'node:crypto';
import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleEvent } from '../../src/domain/index.js';
import { startHarness, TOKEN, type Harness } from './support.js';

let h: Harness;

beforeAll(async () => {
  h = await startHarness('http_clean_edges');
});
afterAll(async () => {
  await h?.close();
});

const storeCount = () => h.db.pool.oneFirst(sql.type(z.object({ n: z.number() }))`SELECT count(*)::int AS n FROM event_store`);

/** POSTs raw bytes as JSON, so the test controls exactly what arrives (escapes, invalid bytes). */
async function postRaw(body: string | Buffer) {
  const res = await fetch(`${h.url}/api/events`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: typeof body === 'string' ? body : new Uint8Array(body) });
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text) as { success: boolean; error?: { code: string; message: string; details?: { field?: string } } } };
}

/** Every string leaf of a payload, as [path, setter] pairs, so each free-text field gets its turn. */
function stringPaths(value: unknown, path: (string | number)[] = []): (string | number)[][] {
  if (typeof value === 'string') return [path];
  if (Array.isArray(value)) return value.flatMap((v, i) => stringPaths(v, [...path, i]));
  if (value && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => stringPaths(v, [...path, k]));
  return [];
}
const LONE = '@@LONE@@';
function setAt(obj: any, path: (string | number)[], v: unknown): void {
  let o = obj;
  for (const p of path.slice(0, -1)) o = o[p];
  o[path.at(-1)!] = v;
}
const fieldOf = (path: (string | number)[]) => path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${p}`)).join('');

describe('clean edges of POST /api/events', () => {
  it('lone-surrogate-in-each-free-text-field', async () => {
    const before = await storeCount();
    const cases: { body: unknown; field: string }[] = [];
    for (const type of ['TicketDiscovered', 'PurchaseFailed', 'MonitoringStarted', 'MonitoringStopped'] as const) {
      const payload = sampleEvent(type).payload;
      for (const path of stringPaths(payload)) {
        for (const [head, lone, tail] of [['', '\\ud800', ''], ['', '\\udc00', ''], ['ok', '\\udbff', 'x']]) {
          const p = structuredClone(payload);
          setAt(p, path, `${head}${LONE}${lone}${tail}`);
          cases.push({ body: { id: randomUUID(), type, payload: p }, field: fieldOf(['payload', ...path]) });
          // And inside a batch, behind a valid event, so the path carries the batch index.
          cases.push({ body: { events: [{ id: randomUUID(), type, payload: sampleEvent(type).payload }, { id: randomUUID(), type, payload: p }] }, field: fieldOf(['events', 1, 'payload', ...path]) });
        }
      }
    }
    const ok = () => ({ id: randomUUID(), type: 'TicketSoldOut', payload: sampleEvent('TicketSoldOut').payload });
    cases.push({ body: { ...ok(), metadata: { source: `${LONE}\\ud800` } }, field: 'metadata.source' });
    cases.push({ body: { ...ok(), metadata: { note: { deep: [`x${LONE}\\udfff`] } } }, field: 'metadata.note.deep[0]' });
    // A key cannot be named by itself, so its object is named.
    cases.push({ body: { ...ok(), metadata: { [`k${LONE}\\ud83d`]: 'v' } }, field: 'metadata' });
    cases.push({ body: { events: [ok(), { ...ok(), metadata: { [`${LONE}\\udc00`]: 1 } }] }, field: 'events[1].metadata' });
    cases.push({ body: { ...ok(), payload: { ...ok().payload, [`${LONE}\\ud800`]: 1 } }, field: 'payload' });
    expect(cases.length).toBeGreaterThan(40);

    for (const c of cases) {
      // JSON.stringify would escape the backslash; splice the escape into the JSON text instead.
      const raw = JSON.stringify(c.body).replaceAll(`${LONE}\\\\`, '\\');
      expect(raw).toMatch(/[^\\]\\u[dD][89a-fA-F]/);
      expect(raw).not.toContain(LONE);
      const res = await postRaw(raw);
      expect([400, 422], `${c.field}: ${raw.slice(0, 400)} -> ${res.text.slice(0, 300)}`).toContain(res.status);
      expect(res.body.error?.details?.field, res.text.slice(0, 300)).toBe(c.field);
    }
    // A valid pair (an emoji written as escapes) is fine.
    const pair = await postRaw(JSON.stringify({ ...ok(), metadata: { source: `${LONE}\\ud83d\\ude00` } }).replaceAll(`${LONE}\\\\`, '\\').replace('\\\\ude00', '\\ude00'));
    expect(pair.status, pair.text).toBe(201);
    expect(await storeCount()).toBe(before + 1);
  });

  it('invalid-utf8-body', async () => {
    const before = await storeCount();
    // {"a":"<0xff>"}: not UTF-8 at all.
    const tiny = await postRaw(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]));
    expect(tiny.status, tiny.text).toBe(400);
    expect(tiny.body.error?.code).toBe('invalid_utf8');
    // A valid event whose venue is Latin-1 encoded ("Café" as 0x43 0x61 0x66 0xe9): would be stored as "Caf\ufffd".
    const text = JSON.stringify({ id: randomUUID(), type: 'TicketDiscovered', payload: sampleEvent('TicketDiscovered', { venue: 'Caf@' }).payload });
    const at = Buffer.from(text).indexOf('Caf@') + 3;
    const latin1 = Buffer.from(text);
    latin1[at] = 0xe9;
    const res = await postRaw(latin1);
    expect(res.status, res.text).toBe(400);
    expect(res.body.error?.code).toBe('invalid_utf8');
    // An encoded surrogate (CESU-8 style ED A0 80) is not UTF-8 either.
    const cesu = Buffer.concat([Buffer.from(text.slice(0, text.indexOf('Caf@'))), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from(text.slice(text.indexOf('Caf@') + 4))]);
    expect((await postRaw(cesu)).status).toBe(400);
    // The body limit and the envelope still hold for the replaced parser.
    const big = await postRaw(Buffer.alloc(h.c.config.HTTP_BODY_LIMIT_BYTES + 10, 0x20));
    expect(big.status).toBe(413);
    expect(big.body.error?.code).toBe('payload_too_large');
    expect((await postRaw('{"a":')).body.error?.code).toBe('malformed_json');
    expect((await postRaw('{"__proto__":{"x":1}}')).status).toBe(400);
    // Real UTF-8 passes untouched.
    const good = await postRaw(Buffer.from(text.replace('Caf@', 'Café ⚽ 😀')));
    expect(good.status, good.text).toBe(201);
    const venue = await h.db.pool.oneFirst(sql.type(z.object({ v: z.string() }))`SELECT payload->>'venue' AS v FROM event_store ORDER BY global_position DESC LIMIT 1`);
    expect(venue).toBe('Café ⚽ 😀');
    expect(await storeCount()).toBe(before + 1);
  });

  it('no-request-body-fragment-in-a-failed-request-log', async () => {
    // A real Postgres error whose message, detail and hint quote the stored payload, as driver errors do.
    await h.db.pool.query(sql.unsafe`
      CREATE FUNCTION echo_payload() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'refused %', NEW.payload::text USING DETAIL = NEW.payload::text, HINT = NEW.payload::text; END $$`);
    await h.db.pool.query(sql.unsafe`CREATE TRIGGER echo_payload BEFORE INSERT ON event_store FOR EACH ROW EXECUTE FUNCTION echo_payload()`);
    try {
      const marker = `secret-body-fragment-${randomUUID()}`;
      const res = await h.api('POST', '/api/events', { body: { id: randomUUID(), type: 'TicketDiscovered', payload: sampleEvent('TicketDiscovered', { venue: marker }).payload } });
      expect(res.status).toBe(500);
      expect(res.text).not.toContain(marker);
      const line = h.logs.text.split('\n').find((l) => l.includes('"request failed"'));
      expect(line, 'the failure is logged').toBeTruthy();
      // It still says what went wrong: the class and the SQLSTATE.
      expect(line).toContain('P0001');
      expect(h.logs.text).not.toContain(marker);
      expect(h.logs.text).not.toContain('secret-body-fragment');
    } finally {
      await h.db.pool.query(sql.unsafe`DROP TRIGGER echo_payload ON event_store`);
    }
  });
});
