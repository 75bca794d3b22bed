import type { Logger } from 'pino';
import type { EventBus } from '../eventBus/EventBus.js';
import { createDemoWorld, type DemoWorld } from './world.js';

export interface DemoScraperOptions {
  /** Events per second (DEMO_RATE). 0 starts nothing. */
  rate: number;
  logger: Logger;
  seed?: number;
  world?: DemoWorld;
}

export interface DemoScraper {
  readonly world: DemoWorld;
  /** Events the scraper has had stored so far. */
  dispatched(): number;
  /** Stops producing; resolves once the dispatch in flight (if any) has finished. */
  stop(): Promise<void>;
}

/**
 * Feeds the simulated market into the real EventBus at a steady rate, exactly as an out-of-process
 * scraper would: every event is validated, stored, and then processed by the workers.
 */
export function startDemoScraper(bus: EventBus, options: DemoScraperOptions): DemoScraper {
  const { rate, logger } = options;
  const world = options.world ?? createDemoWorld({ seed: options.seed });
  let stopped = false;
  let stored = 0;
  let failing = false;
  let inFlight: Promise<void> = Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  // Short ticks at high rates keep the flow smooth; at low rates one event per tick.
  const tickMs = rate > 0 ? Math.min(250, Math.max(20, 1000 / rate)) : 0;
  let budget = 0;
  let last = Date.now();

  async function tick(): Promise<void> {
    const t = Date.now();
    // Capped: after a stall (Postgres restarting) catch up at most one second's worth, not a flood.
    budget = Math.min(budget + ((t - last) / 1000) * rate, Math.max(1, rate));
    last = t;
    const n = Math.floor(budget);
    if (n === 0) return;
    budget -= n;
    const events = world.take(n);
    try {
      await bus.dispatchMany(events);
      stored += events.length;
      if (failing) logger.info('demo scraper: storing events again');
      failing = false;
    } catch (error) {
      world.putBack(events);
      if (!failing) logger.warn({ err: (error as Error).message }, 'demo scraper: could not store events; will retry');
      failing = true;
    }
  }

  function schedule() {
    if (stopped) return;
    timer = setTimeout(() => {
      inFlight = tick().finally(schedule);
    }, tickMs);
  }

  if (rate > 0) {
    logger.info({ rate, runId: world.runId }, 'demo scraper started');
    schedule();
  }

  return {
    world,
    dispatched: () => stored,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await inFlight.catch(() => {});
    },
  };
}
