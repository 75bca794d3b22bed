import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { sql } from 'slonik';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sampleEvent } from '../../src/domain/index.js';
import { waitFor } from '../support/db.js';
import { parsePrometheus, startHarness, sumMetric, TOKEN, type Harness } from './support.js';

let h: Harness;

beforeAll(async () => {
  // A small per-client bound, so a client that stops reading is dropped after a few MB, not hundreds.
  h = await startHarness('live_stream', { STREAM_CLIENT_BUFFER_BYTES: '65536', STREAM_HEARTBEAT_MS: '300' });
});
afterAll(async () => {
  await h?.close();
});

interface SseMessage {
  id: string;
  event: string;
  data: any;
}

/** A Server-Sent Events client over fetch: every message and comment it has read so far. */
function sse(path: string, headers: Record<string, string> = {}) {
  const ctl = new AbortController();
  const messages: SseMessage[] = [];
  const comments: string[] = [];
  let status = 0;
  let contentType = '';
  let ended = false;
  const done = (async () => {
    try {
      const res = await fetch(h.url + path, { headers: { authorization: `Bearer ${TOKEN}`, ...headers }, signal: ctl.signal });
      status = res.status;
      contentType = res.headers.get('content-type') ?? '';
      if (!res.body) return;
      const decoder = new TextDecoder();
      let buf = '';
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          const m: Partial<SseMessage> = {};
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line.slice(1).trim());
            else if (line.startsWith('id: ')) m.id = line.slice(4);
            else if (line.startsWith('event: ')) m.event = line.slice(7);
            else if (line.startsWith('data: ')) m.data = JSON.parse(line.slice(6));
          }
          if (m.id !== undefined) messages.push(m as SseMessage);
        }
      }
    } catch {
      /* aborted */
    } finally {
      ended = true;
    }
  })();
  return {
    messages,
    comments,
    get status() {
      return status;
    },
    get contentType() {
      return contentType;
    },
    get ended() {
      return ended;
    },
    async close() {
      ctl.abort();
      await done;
    },
  };
}

const discovered = (tag: string) => ({ id: randomUUID(), ...sampleEvent('TicketDiscovered', { ticketId: `ls-${tag}` }) });
const gapFreeOrder = async (ids: readonly string[]) =>
  h.db.pool.anyFirst(sql.type(z.object({ id: z.string() }))`SELECT id FROM event_store WHERE id = ANY(${sql.array([...ids], 'uuid')}) ORDER BY transaction_id, global_position`);

describe('live stream: GET /api/events/stream', () => {
  it('stream-delivers-within-1s: a connected client receives a posted event within 1 s, in the documented shape; heartbeats keep it alive', async () => {
    const client = sse('/api/events/stream');
    try {
      await waitFor(() => client.comments.includes('connected'), { what: 'the stream to open' });
      expect(client.status).toBe(200);
      expect(client.contentType).toMatch(/^text\/event-stream/);
      const e = discovered('first');
      const posted = await h.api('POST', '/api/events', { body: e });
      expect(posted.status).toBe(201);
      const got = (await waitFor(() => client.messages.find((m) => m.data.id === e.id), { timeoutMs: 1000, intervalMs: 10, what: 'the posted event on the stream' }))!;
      expect(got.event).toBe('event');
      expect(got.id).toBe(String(posted.body.data.position));
      expect(got.data).toMatchObject({ id: e.id, streamId: 'ticket-ls-first', type: 'TicketDiscovered', version: 1, globalPosition: posted.body.data.position, payload: { ticketId: 'ls-first' } });
      expect(typeof got.data.occurredAt).toBe('string');
      expect(typeof got.data.recordedAt).toBe('string');
      expect(got.data.metadata).toBeTypeOf('object');
      await waitFor(() => client.comments.includes('heartbeat'), { what: 'a heartbeat comment' });
    } finally {
      await client.close();
    }
  });

  it('stream-resume-no-loss-no-duplicates: 1,000 events from 4 concurrent producers; a client that drops mid-run and resumes with Last-Event-ID gets each exactly once, in the gap-free order', async () => {
    const tags = Array.from({ length: 4 }, (_, p) => Array.from({ length: 250 }, (_, i) => discovered(`p${p}-${i}`)));
    const all = tags.flat().map((e) => e.id);
    const wanted = new Set(all);
    const header = sse('/api/events/stream?type=TicketDiscovered');
    const query = sse('/api/events/stream');
    await waitFor(() => header.comments.includes('connected') && query.comments.includes('connected'), { what: 'both streams to open' });

    const produce = Promise.all(
      tags.map(async (events) => {
        for (let i = 0; i < events.length; i += 5) {
          const r = await h.api('POST', '/api/events', { body: { events: events.slice(i, i + 5) } });
          if (r.status !== 201) throw new Error(`ingest answered ${r.status}: ${r.text}`);
        }
      }),
    );
    // Each client drops part-way through, while the producers are still writing, and comes back.
    const first = (await waitFor(() => (header.messages.filter((m) => wanted.has(m.data.id)).length >= 300 ? header.messages.slice() : null), { what: '300 events on the first connection', timeoutMs: 60_000 }))!;
    await header.close();
    const lastSeen = first[first.length - 1]!.id;
    const again = sse('/api/events/stream?type=TicketDiscovered', { 'last-event-id': lastSeen });
    const firstQ = (await waitFor(() => (query.messages.filter((m) => wanted.has(m.data.id)).length >= 500 ? query.messages.slice() : null), { what: '500 events on the other client' }))!;
    await query.close();
    const againQ = sse(`/api/events/stream?lastEventId=${firstQ[firstQ.length - 1]!.id}`);
    await produce;
    try {
      for (const [a, b] of [
        [first, again],
        [firstQ, againQ],
      ] as const) {
        await waitFor(() => [...a, ...b.messages].filter((m) => wanted.has(m.data.id)).length >= 1000, { what: 'all 1,000 events across both connections' });
        const received = [...a, ...b.messages].map((m) => m.data.id).filter((id) => wanted.has(id));
        expect(received).toHaveLength(1000);
        expect(new Set(received).size).toBe(1000);
        expect(received).toEqual(await gapFreeOrder(all));
        // Nothing the first connection saw is repeated after the resume.
        expect(b.messages.some((m) => a.some((x) => x.id === m.id))).toBe(false);
      }
      expect(again.messages.every((m) => m.data.type === 'TicketDiscovered')).toBe(true);
    } finally {
      await again.close();
      await againQ.close();
    }
  });

  it('stream-filters-by-type-and-stream: only the named types, only the named stream', async () => {
    const byType = sse('/api/events/stream?type=TicketPriceChanged,TicketSoldOut');
    const byStream = sse('/api/events/stream?stream=ticket-ls-filtered');
    try {
      await waitFor(() => byType.comments.includes('connected') && byStream.comments.includes('connected'), { what: 'streams to open' });
      await h.c.bus.dispatchMany([
        sampleEvent('TicketDiscovered', { ticketId: 'ls-filtered' }),
        sampleEvent('TicketDiscovered', { ticketId: 'ls-other' }),
        sampleEvent('TicketPriceChanged', { ticketId: 'ls-other' }),
        sampleEvent('TicketPriceChanged', { ticketId: 'ls-filtered' }),
      ]);
      await waitFor(() => byType.messages.length >= 2 && byStream.messages.length >= 2, { what: 'the filtered events' });
      // One transaction: the order among its events is their global position.
      expect(byType.messages.map((m) => [m.data.type, m.data.streamId]).sort()).toEqual([
        ['TicketPriceChanged', 'ticket-ls-filtered'],
        ['TicketPriceChanged', 'ticket-ls-other'],
      ]);
      const positions = byType.messages.map((m) => m.data.globalPosition);
      expect(positions).toEqual([...positions].sort((a, b) => a - b));
      expect(byStream.messages.map((m) => [m.data.type, m.data.version])).toEqual([
        ['TicketDiscovered', 1],
        ['TicketPriceChanged', 2],
      ]);
    } finally {
      await byType.close();
      await byStream.close();
    }
  });

  it('stream-refuses-bad-input: unknown Last-Event-ID, malformed ids and filters are 400 naming the field', async () => {
    for (const [path, headers, field] of [
      ['/api/events/stream', { 'last-event-id': '99999999' }, 'Last-Event-ID'],
      ['/api/events/stream', { 'last-event-id': 'abc' }, 'Last-Event-ID'],
      ['/api/events/stream?lastEventId=0', {}, 'lastEventId'],
      ['/api/events/stream?type=a;b', {}, 'type'],
      ['/api/events/stream?stream=%20x', {}, 'stream'],
      ['/api/events/stream?colour=red', {}, 'colour'],
    ] as const) {
      const r = await h.api('GET', path, { headers: { ...headers } });
      expect.soft({ path, headers, status: r.status, field: r.body?.error?.details?.field }).toEqual({ path, headers, status: 400, field });
    }
  });

  it('slow-client-dropped: a client that stops reading is disconnected once its buffer passes the bound; ingest and a reading client carry on', async () => {
    const metrics = async () => parsePrometheus((await h.api('GET', '/metrics')).text);
    const droppedBefore = sumMetric(await metrics(), 'hdt_stream_clients_dropped_total');
    // A raw socket that sends the request and never reads the answer.
    const port = Number(new URL(h.url).port);
    const slow = connect(port, '127.0.0.1');
    let slowClosed = false;
    slow.on('close', () => (slowClosed = true));
    slow.on('error', () => {});
    slow.write(`GET /api/events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
    slow.pause();
    const reader = sse('/api/events/stream?stream=ticket-ls-big-0');
    try {
      await waitFor(() => reader.comments.includes('connected'), { what: 'the reading client' });
      await waitFor(async () => (await h.api('GET', '/metrics')).text.includes('hdt_stream_clients 2'), { what: 'both clients connected' });
      // ~60 KB of metadata per event: a few hundred events outgrow what the kernel buffers for the slow socket.
      const bulky = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`k${i}`, 'x'.repeat(2000)]));
      let batches = 0;
      while (sumMetric(await metrics(), 'hdt_stream_clients_dropped_total') === droppedBefore && batches < 60) {
        await h.c.bus.dispatchMany(Array.from({ length: 20 }, (_, i) => ({ ...sampleEvent('TicketDiscovered', { ticketId: `ls-big-${batches * 20 + i}` }), metadata: bulky })));
        batches++;
      }
      expect(sumMetric(await metrics(), 'hdt_stream_clients_dropped_total')).toBe(droppedBefore + 1);
      // The reader, filtered to the first bulky stream, got its event; the slow socket is gone.
      await waitFor(() => reader.messages.some((m) => m.data.streamId === 'ticket-ls-big-0'), { what: 'the reading client to get its event' });
      slow.resume();
      await waitFor(() => slowClosed, { what: 'the slow socket to be closed by the server' });
      const after = await h.api('POST', '/api/events', { body: discovered('after-drop') });
      expect(after.status).toBe(201);
      expect(reader.ended).toBe(false);
    } finally {
      slow.destroy();
      await reader.close();
    }
  });
});
