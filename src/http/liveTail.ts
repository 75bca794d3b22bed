import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { DatabasePool } from 'slonik';
import type { z } from 'zod';
import { checkpointAt, readTailPage, tailHead, type TailFilter } from '../eventStore/globalTail.js';
import { compareCheckpoints } from '../eventStore/globalOrder.js';
import type { GlobalCheckpoint, StoredEventRow, Upcaster } from '../eventStore/types.js';
import { streamClients, streamClientsDropped } from '../metrics/metrics.js';

export interface LiveTailOptions {
  pollMs: number;
  heartbeatMs: number;
  /** Bytes a client may leave unread (beyond what the kernel buffers) when new events arrive; more and it is dropped. */
  bufferBytes: number;
}

/** Events per query, for the shared poll and for a client catching up. */
const PAGE = 500;
/** How long a catching-up client may take to drain a page before it is dropped. */
const CATCH_UP_DRAIN_MS = 30_000;

interface Client {
  res: ServerResponse;
  filter: TailFilter;
  live: boolean;
  closed: boolean;
  /** Where the client is in the order: a resumed client may be ahead of this process's poller. */
  after: GlobalCheckpoint;
}

type Row = z.infer<typeof StoredEventRow>;

/**
 * The live tail of the store for Server-Sent Events. One poller per web process reads the gap-free
 * global order (only below the xmin horizon, paged by the (transaction, position) pair) and hands each
 * page to every live client, so idle clients cost no queries. A client resuming with `Last-Event-ID`
 * first catches up on its own, up to the poller's head, then joins. A client that reads slower than
 * events arrive is dropped once its buffer passes the bound: the poller never waits for anyone.
 * The store does not NOTIFY on append (the relay's channel is only for unpublished outbox rows), so
 * the poller polls, only while a client is connected.
 */
export class LiveTail {
  private readonly clients = new Set<Client>();
  private head: GlobalCheckpoint | null = null;
  private headLoading: Promise<GlobalCheckpoint> | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private polling = false;
  private closed = false;

  constructor(
    private readonly pool: DatabasePool,
    private readonly upcast: Upcaster | undefined,
    private readonly logger: Logger,
    private readonly o: LiveTailOptions,
  ) {}

  /** Resolves a `Last-Event-ID` (a global position) to its place in the order; null if no event has it. */
  async resumePoint(position: number): Promise<GlobalCheckpoint | null> {
    return checkpointAt(this.pool, position);
  }

  /** Serves one client on a response whose headers are not sent yet; returns when it is live (or gone). */
  async attach(res: ServerResponse, filter: TailFilter, resumeAfter: GlobalCheckpoint | null): Promise<void> {
    const client: Client = { res, filter, live: false, closed: false, after: resumeAfter ?? { transactionId: '0', position: 0 } };
    this.clients.add(client);
    streamClients.set(this.clients.size);
    res.on('close', () => this.detach(client));
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    // The comment flushes the headers, so a client knows it is connected before the first event.
    res.write(': connected\n\n');
    this.start();
    try {
      let cursor = resumeAfter ?? (await this.currentHead());
      for (;;) {
        const head = await this.currentHead();
        if (client.closed) return;
        if (compareCheckpoints(cursor, head) >= 0) break;
        const rows = await readTailPage(this.pool, cursor, { ...filter, limit: PAGE, upTo: head });
        if (client.closed) return;
        for (const r of rows) res.write(this.message(r));
        cursor = rows.length < PAGE ? head : { transactionId: rows[rows.length - 1]!.transaction_id, position: rows[rows.length - 1]!.global_position };
        if (res.writableLength > this.o.bufferBytes && !(await drained(res, CATCH_UP_DRAIN_MS))) return this.drop(client, 'catching up');
      }
      // Synchronously after the last check: the poller has handed out nothing past `cursor` yet.
      client.after = cursor;
      client.live = true;
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'live stream client failed while catching up');
      res.destroy();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.stop();
    for (const c of this.clients) c.res.end();
    this.clients.clear();
    streamClients.set(0);
  }

  private detach(client: Client): void {
    client.closed = true;
    this.clients.delete(client);
    streamClients.set(this.clients.size);
    if (this.clients.size === 0) this.stop();
  }

  private drop(client: Client, phase: string): void {
    streamClientsDropped.inc();
    this.logger.info({ phase, buffered: client.res.writableLength, limit: this.o.bufferBytes }, 'live stream client dropped: it reads slower than events arrive');
    client.res.destroy();
    this.detach(client);
  }

  private start(): void {
    if (this.closed) return;
    this.pollTimer ??= setInterval(() => void this.poll(), this.o.pollMs);
    this.heartbeat ??= setInterval(() => {
      for (const c of this.clients) if (c.live) c.res.write(': heartbeat\n\n');
    }, this.o.heartbeatMs);
  }

  /** With no client left the head is forgotten: the next client starts from the store's head then. */
  private stop(): void {
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.pollTimer = this.heartbeat = null;
    this.head = null;
  }

  private async currentHead(): Promise<GlobalCheckpoint> {
    if (this.head) return this.head;
    this.headLoading ??= tailHead(this.pool).finally(() => (this.headLoading = null));
    const h = await this.headLoading;
    this.head ??= h;
    return this.head;
  }

  private async poll(): Promise<void> {
    if (this.polling || this.clients.size === 0) return;
    this.polling = true;
    try {
      for (;;) {
        const from = await this.currentHead();
        const rows = await readTailPage(this.pool, from, { limit: PAGE });
        if (rows.length === 0 || this.head !== from) return;
        const last = rows[rows.length - 1]!;
        this.head = { transactionId: last.transaction_id, position: last.global_position };
        this.broadcast(rows);
        if (rows.length < PAGE) return;
      }
    } catch (error) {
      this.logger.warn({ err: (error as Error).message }, 'live stream poll failed; retrying at the next interval');
    } finally {
      this.polling = false;
    }
  }

  private broadcast(rows: readonly Row[]): void {
    const live = [...this.clients].filter((c) => c.live);
    if (live.length === 0) return;
    // Each message is encoded once, whatever the number of clients.
    const messages = rows.map((r) => ({ r, text: this.message(r) }));
    for (const c of live) {
      // Judged before this page is written: a page is a burst any client may take, but a client that
      // has not read what it was sent before is slower than the store and is let go.
      if (c.res.writableLength > this.o.bufferBytes) {
        this.drop(c, 'live');
        continue;
      }
      for (const { r, text } of messages) {
        const at = { transactionId: r.transaction_id, position: r.global_position };
        if (compareCheckpoints(at, c.after) <= 0 || !matches(r, c.filter)) continue;
        c.res.write(text);
      }
      if (compareCheckpoints(this.head!, c.after) > 0) c.after = this.head!;
    }
  }

  private message(r: Row): string {
    let payload = r.payload;
    if (this.upcast) {
      try {
        payload = this.upcast(r.event_type, r.schema_version, r.payload).payload;
      } catch {
        /* shown as stored */
      }
    }
    const data = { id: r.id, streamId: r.stream_id, type: r.event_type, version: r.version, globalPosition: r.global_position, occurredAt: r.occurred_at, recordedAt: r.recorded_at, payload, metadata: r.metadata };
    return `id: ${r.global_position}\nevent: event\ndata: ${JSON.stringify(data)}\n\n`;
  }
}

function matches(r: Row, f: TailFilter): boolean {
  return (!f.types?.length || f.types.includes(r.event_type)) && (f.stream === undefined || f.stream === r.stream_id);
}

function drained(res: ServerResponse, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      clearTimeout(timer);
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    const timer = setTimeout(() => done(false), timeoutMs);
    res.on('drain', onDrain);
    res.on('close', onClose);
  });
}
