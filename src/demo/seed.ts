import type { EventBus } from '../eventBus/EventBus.js';
import type { createEventGenerator } from './eventGenerator.js';

export interface SeedOptions {
  /** Events to append. */
  events: number;
  /** Events per append transaction (dispatchMany call). */
  batch: number;
  /** Called after each batch with the events appended so far. */
  onProgress?: (done: number) => void;
}

/**
 * Appends generated events through the event bus, `batch` per transaction, so running workers
 * process them like live traffic: `npm run events:seed` and `npm run bench:scale` both seed this way.
 * The generator carries on where it stopped, so calling this twice continues the same history.
 */
export async function seedEvents(bus: EventBus, gen: ReturnType<typeof createEventGenerator>, o: SeedOptions): Promise<void> {
  for (let done = 0; done < o.events; ) {
    const n = Math.min(o.batch, o.events - done);
    await bus.dispatchMany(gen.batch(n));
    done += n;
    o.onProgress?.(done);
  }
}
