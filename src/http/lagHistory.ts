import { z } from 'zod';

export const LagSampleSchema = z.object({
  at: z.string().describe('When the sample was taken (ISO 8601)'),
  consumers: z.record(z.number().int()).describe('Events each registered consumer still owed then (from Postgres)'),
});
export type LagSample = z.infer<typeof LagSampleSchema>;

export interface LagHistoryOptions {
  /** Reads what each consumer owes now (the owed-work summary). */
  sample(): Promise<Record<string, number>>;
  /** A failed sample is skipped (the chart shows a gap); the caller decides how loudly to say so. */
  onError(error: unknown): void;
  /** Default 10 s. */
  intervalMs?: number;
  /** How far back samples are kept; default one hour (the dashboard's chart window). */
  keepMs?: number;
}

export interface LagHistory {
  /** Samples taken within the last `ms`, oldest first. */
  since(ms: number): LagSample[];
  /** Takes one sample now (also done at start and every interval). */
  sampleNow(): Promise<void>;
  stop(): void;
}

/**
 * Owed work per consumer over time, sampled by the web process into a ring buffer. Kept in memory on
 * purpose: it is a chart's recent history, not a record; a restarted web process starts a new one,
 * and each web replica keeps its own (they sample the same Postgres, so they agree).
 */
export function startLagHistory(o: LagHistoryOptions): LagHistory {
  const intervalMs = o.intervalMs ?? 10_000;
  const capacity = Math.ceil((o.keepMs ?? 3_600_000) / intervalMs) + 1;
  const ring: (LagSample & { ms: number })[] = [];
  let next = 0;
  let stopped = false;
  let inFlight: Promise<void> | null = null;
  const sampleNow = () =>
    (inFlight ??= o
      .sample()
      .then((consumers) => {
        if (stopped) return;
        const ms = Date.now();
        const s = { at: new Date(ms).toISOString(), ms, consumers };
        if (ring.length < capacity) ring.push(s);
        else ring[next] = s;
        next = (next + 1) % capacity;
      })
      .catch((error: unknown) => {
        if (!stopped) o.onError(error);
      })
      .finally(() => (inFlight = null)));
  void sampleNow();
  const timer = setInterval(() => void sampleNow(), intervalMs);
  timer.unref();
  return {
    since(ms) {
      const from = Date.now() - ms;
      // Oldest first: the ring's order starts at the slot the next sample will overwrite.
      const ordered = ring.length < capacity ? ring : [...ring.slice(next), ...ring.slice(0, next)];
      return ordered.filter((s) => s.ms >= from).map(({ at, consumers }) => ({ at, consumers }));
    },
    sampleNow,
    stop() {
      stopped = true;
      clearInterval(timer);
    },
  };
}
