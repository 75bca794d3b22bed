import { randomUUID } from 'node:crypto';
import type { DispatchInput } from '../eventBus/EventBus.js';
import { DEMO_PLATFORMS, FIXTURES } from './fixtures.js';
import { rng, type Rng } from './random.js';

type Kind = 'ticket' | 'purchase' | 'monitor' | 'scraping' | 'platform';

interface StreamState {
  kind: Kind;
  key: string;
  step: number;
  data: Record<string, unknown>;
}

const kindFor = (r: Rng): Kind => {
  const x = r.next();
  return x < 0.6 ? 'ticket' : x < 0.75 ? 'purchase' : x < 0.85 ? 'monitor' : x < 0.97 ? 'scraping' : 'platform';
};

const gbp = (amountMinor: number) => ({ amountMinor, currency: 'GBP' as const });

/**
 * Plausible, valid event sequences over many streams (tickets discovered then repriced and sold out,
 * purchases through their lifecycle, monitors, scraping jobs, platform status). Each stream's events
 * come in a valid order; streams interleave. Used by the demo, tests, seeding and benchmarks.
 */
export function createEventGenerator(options: { seed?: number; streams?: number; runId?: string } = {}) {
  const r = rng(options.seed ?? 42);
  const run = options.runId ?? randomUUID().slice(0, 8);
  const streams: StreamState[] = [];
  const nStreams = options.streams ?? 500;
  for (let i = 0; i < nStreams; i++) streams.push({ kind: kindFor(r), key: `${run}-${i}`, step: 0, data: {} });
  const now = () => new Date().toISOString();

  function nextFor(s: StreamState): DispatchInput {
    const step = s.step++;
    const platform = (s.data.platform as string) ?? (s.data.platform = r.pick(DEMO_PLATFORMS));
    const fixture = (s.data.fixture as (typeof FIXTURES)[number]) ?? (s.data.fixture = r.pick(FIXTURES));
    switch (s.kind) {
      case 'ticket': {
        const ticketId = `${platform.slice(0, 2)}-${s.key}`;
        if (step === 0) {
          const price = r.int(25, 400) * 100 + r.pick([0, 50, 99]);
          s.data.price = price;
          s.data.quantity = r.int(1, 8);
          return { type: 'TicketDiscovered', payload: { ticketId, platform, eventName: fixture.eventName, venue: fixture.venue, eventDate: '2027-03-14T15:00:00Z', section: `Block ${r.int(1, 140)}`, row: String.fromCharCode(65 + r.int(0, 25)), quantity: s.data.quantity, price: gbp(price), url: `https://www.${platform}.com/listing/${ticketId}` } };
        }
        const x = r.next();
        if ((s.data.quantity as number) > 0 && x < 0.6) {
          const old = s.data.price as number;
          const next = Math.max(100, Math.round(old * (0.8 + r.next() * 0.35)));
          s.data.price = next;
          return { type: 'TicketPriceChanged', payload: { ticketId, platform, oldPrice: gbp(old), newPrice: gbp(next) } };
        }
        if ((s.data.quantity as number) > 0 && x < 0.9) {
          const old = s.data.quantity as number;
          const next = Math.max(0, old - r.int(1, 3));
          s.data.quantity = next;
          return { type: 'TicketAvailabilityChanged', payload: { ticketId, platform, oldQuantity: old, newQuantity: next } };
        }
        if ((s.data.quantity as number) > 0) {
          s.data.quantity = 0;
          return { type: 'TicketSoldOut', payload: { ticketId, platform, soldOutAt: now() } };
        }
        const q = r.int(1, 4);
        s.data.quantity = q;
        return { type: 'TicketAvailabilityChanged', payload: { ticketId, platform, oldQuantity: 0, newQuantity: q } };
      }
      case 'purchase': {
        const purchaseId = `p-${s.key}`;
        const total = gbp(r.int(50, 900) * 100);
        if (step === 0) {
          s.data.total = total;
          return { type: 'PurchaseInitiated', payload: { purchaseId, ticketId: `tm-${s.key}`, userId: `user-${r.int(1, 200)}`, quantity: r.int(1, 4), totalPrice: total } };
        }
        if (step === 1) {
          const ok = r.chance(0.85);
          s.data.ok = ok;
          return { type: 'PaymentProcessed', payload: { purchaseId, paymentId: `pay-${s.key}-${step}`, amount: s.data.total, method: r.pick(['card', 'paypal', 'apple_pay', 'google_pay'] as const), status: ok ? 'succeeded' : 'failed' } };
        }
        if (step === 2) {
          return s.data.ok
            ? { type: 'PurchaseCompleted', payload: { purchaseId, confirmationCode: `HDT${r.int(100000, 999999)}`, completedAt: now() } }
            : { type: 'PurchaseFailed', payload: { purchaseId, reason: 'payment declined by issuer', errorCode: 'card_declined' } };
        }
        return { type: 'PaymentProcessed', payload: { purchaseId, paymentId: `pay-${s.key}-${step}`, amount: s.data.total, method: 'card', status: 'refunded' } };
      }
      case 'monitor': {
        const monitorId = `m-${s.key}`;
        if (step === 0 || (s.data.stopped && r.chance(0.5))) {
          s.data.stopped = false;
          s.data.userId ??= `user-${r.int(1, 200)}`;
          return { type: 'MonitoringStarted', payload: { monitorId, userId: s.data.userId, eventName: fixture.eventName, platforms: [...new Set([platform, r.pick(DEMO_PLATFORMS)])], maxPrice: gbp(r.int(60, 250) * 100), minQuantity: r.int(1, 2) } };
        }
        if (!s.data.stopped) {
          s.data.stopped = true;
          return { type: 'MonitoringStopped', payload: { monitorId, userId: s.data.userId, reason: 'user stopped watching' } };
        }
        s.data.stopped = false;
        return { type: 'MonitoringStarted', payload: { monitorId, userId: s.data.userId, eventName: fixture.eventName, platforms: [platform], minQuantity: 1 } };
      }
      case 'scraping': {
        const jobId = `job-${s.key}-${Math.floor(step / 2)}`;
        if (step % 2 === 0) return { type: 'ScrapingJobStarted', payload: { jobId, platform, target: `https://www.${platform}.com/search?q=${encodeURIComponent(fixture.eventName)}`, startedAt: now() } };
        const ok = r.chance(0.9);
        return { type: 'ScrapingJobCompleted', payload: { jobId, platform, success: ok, ticketsFound: ok ? r.int(0, 40) : 0, durationMs: r.int(300, 9000), ...(ok ? {} : { errorMessage: 'HTTP 429 from platform' }) } };
      }
      case 'platform': {
        const statuses = ['online', 'degraded', 'offline', 'rate_limited'] as const;
        const old = (s.data.status as (typeof statuses)[number]) ?? 'online';
        let next = r.pick(statuses);
        if (next === old) next = old === 'online' ? 'degraded' : 'online';
        s.data.status = next;
        return { type: 'PlatformStatusChanged', payload: { platform, oldStatus: old, newStatus: next, reason: next === 'online' ? 'recovered' : 'health check failed' } };
      }
    }
  }

  return {
    streams: nStreams,
    /** The next event of a random stream. */
    next(): DispatchInput {
      const s = streams[Math.floor(r.next() * streams.length)]!;
      return nextFor(s);
    },
    batch(n: number): DispatchInput[] {
      return Array.from({ length: n }, () => this.next());
    },
  };
}
