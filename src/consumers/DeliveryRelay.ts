import pg from 'pg';
import type { Logger } from 'pino';
import { backoffMs } from '../faults.js';
import { OUTBOX_CHANNEL, type JobPublisher } from './JobPublisher.js';
import type { Reconciler } from './reconciler.js';

export { OUTBOX_CHANNEL };

/**
 * A producer publishes its own rows right after commit, and a job publishes the events it emitted
 * once it processed them itself; the relay is for rows nobody will (a crash, a failed publish, which
 * also NOTIFYs). Leaving young rows alone keeps relays from racing busy producers and jobs for them.
 */
const DEFAULT_MIN_AGE_MS = 3000;

/** Longest wait between relay rounds while they fail: the delay before delivery resumes after an outage. */
const RELAY_MAX_BACKOFF_MS = 5000;

export interface RelayOptions {
  batchSize: number;
  pollMs: number;
  /**
   * Rows younger than this are normally still being published by their producer right after commit;
   * leaving them to it saves contention. A NOTIFY overrides it.
   */
  minAgeMs?: number;
}

/**
 * The relay role: sweeps the outbox (whatever a producer did not publish: it crashed after commit,
 * or Postgres failed it) into owed rows and jobs, and runs the reconciler over owed work whose job
 * is gone. Any number of relays may run: rows are taken with SKIP LOCKED, and no row lock is held
 * while Redis is called.
 */
export class DeliveryRelay {
  private stopped = false;
  private wake: (() => void) | null = null;
  private listener: pg.Client | null = null;
  private loop: Promise<void> | null = null;
  private failures = 0;
  private listenFailures = 0;
  private nextListenAt = 0;
  relayed = 0;

  constructor(
    private readonly databaseUrl: string,
    private readonly publisher: JobPublisher,
    private readonly reconciler: Reconciler | null,
    private readonly logger: Logger,
    private readonly options: RelayOptions,
  ) {}

  start(): void {
    this.loop = this.run();
  }

  /** One sweep of the outbox; returns how many events were published. Exposed for tests and the CLI. */
  async sweep(force = false): Promise<number> {
    let total = 0;
    for (;;) {
      const { moved, more } = await this.publisher.sweep(this.options.batchSize, force ? 0 : (this.options.minAgeMs ?? DEFAULT_MIN_AGE_MS));
      total += moved;
      this.relayed += moved;
      if (!more || this.stopped) return total;
    }
  }

  /**
   * The LISTEN connection. Lost (Postgres restarted), it is released and re-created with jittered,
   * capped backoff, as graphile-worker does: polling covers the gap, so nothing waits on it.
   */
  private async listen(): Promise<void> {
    if (this.listener || this.stopped || Date.now() < this.nextListenAt) return;
    const client = new pg.Client({ connectionString: this.databaseUrl, connectionTimeoutMillis: 5000 });
    let gone = false;
    // Once per client, whether its 'error' event, its failed connect, or both report it.
    const lost = () => {
      if (gone) return;
      gone = true;
      if (this.listener === client) this.listener = null;
      this.listenFailures++;
      this.nextListenAt = Date.now() + backoffMs(this.listenFailures, 1000, 30_000);
      client.end().catch(() => {});
    };
    client.on('error', lost);
    client.on('notification', () => this.wake?.());
    try {
      await client.connect();
      await client.query(`LISTEN ${OUTBOX_CHANNEL}`);
      this.listener = client;
      this.listenFailures = 0;
    } catch (error) {
      lost();
      throw error;
    }
  }

  private async run(): Promise<void> {
    let forced = false;
    while (!this.stopped) {
      try {
        await this.listen().catch(() => {});
        const n = await this.sweep(forced);
        if (n > 0) this.logger.debug({ relayed: n }, 'outbox relayed');
        // A NOTIFY (a producer could not enqueue) also asks for owed work marked due to go out now.
        await (forced ? this.reconciler?.reconcile() : this.reconciler?.maybeReconcile());
        if (this.failures > 0) this.logger.info('outbox relay recovered');
        this.failures = 0;
      } catch (error) {
        this.failures++;
        // Log the first failure and then every 30th, not every second of an outage.
        if (this.failures === 1 || this.failures % 30 === 0) this.logger.warn({ err: (error as Error).message, failures: this.failures }, 'relay cannot deliver yet; will retry');
      }
      // stop() may have been called while this round worked: do not start a poll-long wait then.
      if (this.stopped) break;
      forced = await this.pause();
      this.wake = null;
    }
  }

  /**
   * The wait between rounds; resolves true when a NOTIFY asked for a forced round. After a failed
   * round (Redis or Postgres down) the wait backs off to at most RELAY_MAX_BACKOFF_MS and a NOTIFY
   * no longer cuts it short: every producer that cannot enqueue NOTIFYs, and each forced round claims
   * owed rows and joins them to the store, so an outage under load would otherwise turn the relays
   * into a busy loop against Postgres. The NOTIFY is not lost: the next round is forced.
   */
  private pause(): Promise<boolean> {
    const failing = this.failures > 0;
    const ms = failing ? Math.max(this.options.pollMs, backoffMs(this.failures, this.options.pollMs, RELAY_MAX_BACKOFF_MS)) : this.options.pollMs;
    return new Promise<boolean>((resolve) => {
      let asked = false;
      const timer = setTimeout(() => resolve(asked), ms);
      this.wake = () => {
        asked = true;
        if (failing && !this.stopped) return;
        clearTimeout(timer);
        resolve(true);
      };
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop?.catch(() => {});
    await this.listener?.end().catch(() => {});
    this.listener = null;
  }
}
