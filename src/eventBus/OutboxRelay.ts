import pg from 'pg';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { JobPublisher, OutboxEntry } from './JobPublisher.js';

export const OUTBOX_CHANNEL = 'hdt_outbox';

const Row = z.object({ global_position: z.coerce.number(), event_id: z.string(), stream_id: z.string(), event_type: z.string() });

export interface RelayOptions {
  batchSize: number;
  pollMs: number;
  /**
   * Rows younger than this are normally still being published by their producer right after commit;
   * leaving them alone avoids sending every event twice. A NOTIFY overrides it.
   */
  minAgeMs?: number;
}

/**
 * Sweeps the outbox: whatever a producer could not enqueue (Redis down, process crashed after commit)
 * is enqueued here and then deleted. Any number of relays may run: rows are claimed with
 * FOR UPDATE SKIP LOCKED, and job ids are deterministic.
 */
export class OutboxRelay {
  private stopped = false;
  private wake: (() => void) | null = null;
  private listener: pg.Client | null = null;
  private loop: Promise<void> | null = null;
  private failures = 0;
  relayed = 0;

  constructor(
    private readonly databaseUrl: string,
    private readonly pool: pg.Pool,
    private readonly publisher: JobPublisher,
    private readonly logger: Logger,
    private readonly options: RelayOptions,
  ) {}

  start(): void {
    this.loop = this.run();
  }

  /** One sweep; returns how many events were handed to BullMQ. Exposed for tests and the CLI. */
  async sweep(force = false): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await this.sweepBatch(force);
      total += n;
      if (n < this.options.batchSize || this.stopped) return total;
    }
  }

  private async sweepBatch(force: boolean): Promise<number> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const minAge = force ? 0 : (this.options.minAgeMs ?? 1000);
      const { rows } = await client.query(
        `SELECT global_position, event_id::text, stream_id, event_type FROM event_outbox
         WHERE created_at <= now() - make_interval(secs => $2::float8 / 1000)
         ORDER BY global_position LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [this.options.batchSize, minAge],
      );
      if (rows.length === 0) {
        await client.query('COMMIT');
        return 0;
      }
      const entries: OutboxEntry[] = rows.map((r) => {
        const p = Row.parse(r);
        return { position: p.global_position, eventId: p.event_id, streamId: p.stream_id, eventType: p.event_type };
      });
      await this.publisher.enqueue(entries);
      await client.query('DELETE FROM event_outbox WHERE global_position = ANY($1::bigint[])', [entries.map((e) => e.position)]);
      await client.query('COMMIT');
      this.relayed += entries.length;
      return entries.length;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  private async listen(): Promise<void> {
    if (this.listener || this.stopped) return;
    const client = new pg.Client({ connectionString: this.databaseUrl });
    client.on('error', () => {
      this.listener = null;
    });
    client.on('notification', () => this.wake?.());
    await client.connect();
    await client.query(`LISTEN ${OUTBOX_CHANNEL}`);
    this.listener = client;
  }

  private async run(): Promise<void> {
    let forced = false;
    while (!this.stopped) {
      try {
        await this.listen().catch(() => {});
        const n = await this.sweep(forced);
        if (n > 0) this.logger.debug({ relayed: n }, 'outbox relayed');
        if (this.failures > 0) this.logger.info('outbox relay recovered');
        this.failures = 0;
      } catch (error) {
        this.failures++;
        // Log the first failure and then every 30th, not every second of an outage.
        if (this.failures === 1 || this.failures % 30 === 0) this.logger.warn({ err: (error as Error).message, failures: this.failures }, 'outbox relay cannot deliver yet; will retry');
      }
      forced = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), this.options.pollMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve(true);
        };
      });
      this.wake = null;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop?.catch(() => {});
    await this.listener?.end().catch(() => {});
    this.listener = null;
  }
}
