import type { Logger } from 'pino';
import { backoffMs, errorCode, faultKind, isInfrastructureError } from './faults.js';

export type Service = 'postgres' | 'redis';

export interface FaultMonitorOptions {
  /** Answers "is it back?"; called with backoff while a service is down. */
  probes: Partial<Record<Service, () => Promise<void>>>;
  /** One line per warning kind per this many ms; the lines in between are counted, not written. */
  logEveryMs?: number;
  /** Told of every fault reported (metrics). */
  onFault?: (service: Service) => void;
  /**
   * The service the queues live on (default redis). With QUEUE_BACKEND=postgres there is no Redis: a
   * fault raised through BullMQ is a PostgreSQL fault, probed and reported as such.
   */
  queuesOn?: Service;
}

/**
 * A process's view of its infrastructure. Anything that meets an infrastructure fault reports it
 * here; the service is then considered down and probed (capped exponential backoff, jittered) until
 * it answers, while everything that waits on it (`whenUp`) waits. The warning is written at a bounded
 * rate: one line per kind per `logEveryMs`, with the count of what was suppressed, however many jobs
 * or requests meet the fault.
 */
export class FaultMonitor {
  private readonly down = new Map<Service, { since: number; probing: Promise<void> }>();
  private readonly lastLog = new Map<string, { at: number; suppressed: number }>();
  private readonly waiters = new Set<() => void>();
  private stopped = false;
  private readonly listeners: ((service: Service, up: boolean) => void)[] = [];
  private readonly logEveryMs: number;
  /** Consecutive faults without a success in between: the backoff of the next delayed job. */
  streak = 0;

  constructor(
    private readonly logger: Logger,
    private readonly options: FaultMonitorOptions,
  ) {
    this.logEveryMs = options.logEveryMs ?? 10_000;
  }

  /** Told of every change of a service's state (metrics, pausing intake). */
  subscribe(listener: (service: Service, up: boolean) => void): void {
    this.listeners.push(listener);
  }

  isDown(service?: Service): boolean {
    return service ? this.down.has(service) : this.down.size > 0;
  }

  /** Services down now, with how long (for /ready and logs). */
  status(): { service: Service; downForMs: number }[] {
    return [...this.down].map(([service, d]) => ({ service, downForMs: Date.now() - d.since }));
  }

  /**
   * Classifies an error: an infrastructure fault is noted (and its service probed until it is back)
   * and `true` returned; anything else returns `false` and is the caller's to handle as a failure.
   * Deadlocks and serialization conflicts are infrastructure but do not mark Postgres down.
   */
  report(error: unknown, context = 'work'): boolean {
    if (!isInfrastructureError(error)) return false;
    this.streak++;
    const kind = faultKind(error);
    const service = kind === 'redis' ? (this.options.queuesOn ?? 'redis') : kind;
    const conflict = hasCode(error, /^(40001|40P01)$/) || (error as Error | undefined)?.name === 'OrderNotSettledError';
    this.options.onFault?.(service);
    if (!conflict) this.markDown(service);
    this.warn(`${service}:${context}`, { service, err: (error as Error)?.message ?? String(error), code: errorCode(error) }, conflict ? 'transaction conflict; the work is retried' : `${service} unavailable; work waits and resumes by itself when it is back`);
    return true;
  }

  /** A success: the streak of faults is over. */
  ok(): void {
    this.streak = 0;
  }

  /** How long a job that met a fault should wait before it is tried again. */
  nextDelayMs(): number {
    return backoffMs(this.streak - 1, 500, 15_000);
  }

  /** Resolves when no service is down (at once if none is), or when the monitor stops. */
  whenUp(): Promise<void> {
    if (this.down.size === 0 || this.stopped) return Promise.resolve();
    return new Promise((resolve) => this.waiters.add(resolve));
  }

  /** A warning at a bounded rate: the first of its kind at once, then one per `logEveryMs` with the count. */
  warn(kind: string, fields: Record<string, unknown>, message: string): void {
    const now = Date.now();
    const last = this.lastLog.get(kind);
    if (last && now - last.at < this.logEveryMs) {
      last.suppressed++;
      return;
    }
    this.lastLog.set(kind, { at: now, suppressed: 0 });
    this.logger.warn({ ...fields, ...(last?.suppressed ? { suppressed: last.suppressed } : {}) }, message);
  }

  markDown(service: Service): void {
    if (this.down.has(service) || this.stopped) return;
    const entry = { since: Date.now(), probing: Promise.resolve() };
    this.down.set(service, entry);
    for (const l of this.listeners) l(service, false);
    entry.probing = this.probe(service, entry.since);
  }

  private async probe(service: Service, since: number): Promise<void> {
    const probe = this.options.probes[service];
    for (let attempt = 0; !this.stopped; attempt++) {
      await new Promise((r) => setTimeout(r, backoffMs(attempt, 250, 5000)).unref());
      if (this.stopped) return;
      try {
        if (probe) await probe();
        break;
      } catch (error) {
        this.warn(`${service}:probe`, { service, err: (error as Error)?.message ?? String(error), downForMs: Date.now() - since }, `${service} still unavailable; waiting for it`);
      }
    }
    if (this.stopped) return;
    this.down.delete(service);
    this.streak = 0;
    this.lastLog.delete(`${service}:probe`);
    this.logger.info({ service, downForMs: Date.now() - since }, `${service} is back; work resumes`);
    for (const l of this.listeners) l(service, true);
    if (this.down.size === 0) {
      for (const w of this.waiters) w();
      this.waiters.clear();
    }
  }

  stop(): void {
    this.stopped = true;
    for (const w of this.waiters) w();
    this.waiters.clear();
  }
}

function hasCode(error: unknown, pattern: RegExp): boolean {
  const code = errorCode(error);
  return code !== undefined && pattern.test(code);
}
