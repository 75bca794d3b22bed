import { describe, expect, it } from 'vitest';
import type { DispatchInput, EventBus } from '../../src/eventBus/EventBus.js';
import { startDemoScraper } from '../../src/demo/scraper.js';
import { createLogger } from '../../src/logger.js';

const logger = createLogger('silent');

/** Stands in for the EventBus: records what would be stored; can be told to fail like a Postgres outage. */
function fakeBus() {
  const stored: DispatchInput[] = [];
  const state = { failing: false, calls: 0 };
  const bus = {
    async dispatchMany(inputs: DispatchInput[]) {
      state.calls++;
      if (state.failing) throw new Error('connection refused');
      stored.push(...inputs);
      return [];
    },
  } as unknown as EventBus;
  return { bus, stored, state };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('demo scraper', () => {
  it('produces at about DEMO_RATE events per second', async () => {
    const { bus, stored } = fakeBus();
    const s = startDemoScraper(bus, { rate: 100, logger, seed: 5 });
    await sleep(2000);
    await s.stop();
    // Timers on a busy CI machine run late, never early: allow a generous lower margin only.
    expect(stored.length).toBeGreaterThan(140);
    expect(stored.length).toBeLessThanOrEqual(210);
    expect(s.dispatched()).toBe(stored.length);
  });

  it('stops producing once stopped', async () => {
    const { bus, stored } = fakeBus();
    const s = startDemoScraper(bus, { rate: 50, logger, seed: 5 });
    await sleep(300);
    await s.stop();
    const n = stored.length;
    await sleep(300);
    expect(stored.length).toBe(n);
  });

  it('keeps undelivered events and sends the same ones (same ids) once the store is back', async () => {
    const { bus, stored, state } = fakeBus();
    state.failing = true;
    const s = startDemoScraper(bus, { rate: 50, logger, seed: 9 });
    await sleep(400);
    expect(state.calls).toBeGreaterThan(1);
    expect(stored).toHaveLength(0);
    state.failing = false;
    await sleep(600);
    await s.stop();
    // The first events of the world are the monitors, whatever happened before they got through.
    expect(stored.slice(0, 4).map((e) => e.type)).toEqual(['MonitoringStarted', 'MonitoringStarted', 'MonitoringStarted', 'MonitoringStarted']);
    expect(new Set(stored.map((e) => e.id)).size).toBe(stored.length);
  });

  it('does nothing at rate 0', async () => {
    const { bus, state } = fakeBus();
    const s = startDemoScraper(bus, { rate: 0, logger });
    await sleep(200);
    await s.stop();
    expect(state.calls).toBe(0);
  });
});
