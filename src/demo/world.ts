import { randomUUID } from 'node:crypto';
import type { DispatchInput } from '../eventBus/EventBus.js';
import { DEMO_PLATFORMS, FIXTURES } from './fixtures.js';
import { rng, type Rng } from './random.js';

type Platform = (typeof DEMO_PLATFORMS)[number];
type PlatformStatus = 'online' | 'degraded' | 'offline' | 'rate_limited';

interface Fixture {
  eventName: string;
  venue: string;
  eventDate: string;
  /** Typical face value in pence; listings scatter around it. */
  basePrice: number;
}

interface Listing {
  ticketId: string;
  platform: Platform;
  fixture: Fixture;
  price: number;
  quantity: number;
}

export interface DemoMonitor {
  monitorId: string;
  userId: string;
  fixture: number;
  platforms: Platform[];
  maxPricePence?: number;
  minQuantity: number;
}

/**
 * Stable ids: a restarted demo re-starts the same few monitors instead of piling up new ones run
 * after run. Thresholds sit inside the price range the world produces, so discoveries and price drops
 * trigger alerts through the real handlers.
 */
export const DEMO_MONITORS: readonly DemoMonitor[] = [
  { monitorId: 'demo-arsenal-chelsea', userId: 'demo-user-1', fixture: 0, platforms: ['ticketmaster', 'stubhub'], maxPricePence: 12_000, minQuantity: 2 },
  { monitorId: 'demo-el-clasico', userId: 'demo-user-2', fixture: 4, platforms: ['viagogo', 'seatgeek', 'stubhub'], maxPricePence: 25_000, minQuantity: 1 },
  { monitorId: 'demo-cup-final', userId: 'demo-user-1', fixture: 9, platforms: ['ticketmaster', 'axs', 'livenation'], maxPricePence: 9_000, minQuantity: 2 },
  { monitorId: 'demo-old-firm', userId: 'demo-user-3', fixture: 6, platforms: [...DEMO_PLATFORMS], minQuantity: 4 },
];

const BASE_PRICES = [9_500, 8_500, 9_000, 6_500, 22_000, 14_000, 6_000, 11_000, 30_000, 12_000];
const DAY = 86_400_000;
const MAX_LISTINGS = 400;

const gbp = (amountMinor: number) => ({ amountMinor, currency: 'GBP' as const });
// Whole pounds, sometimes .50 or .99: what resale prices look like.
const pounds = (r: Rng, pence: number) => Math.max(1_000, Math.round(pence / 100) * 100 + r.pick([0, 0, 50, 99]));

/**
 * A small simulated market: platforms are scraped for fixtures and report listings, prices drift,
 * listings sell down and out, users buy (most payments succeed), platforms have outages, users start
 * and stop watching. Unlike `createEventGenerator` (independent random streams, for load), events here
 * refer to each other, so a purchase is for a listing that exists and an alert can fire. Pure: it only
 * produces events; `take(n)` hands out the next n in causal order.
 */
export function createDemoWorld(options: { seed?: number; runId?: string; now?: () => Date } = {}) {
  const r = rng(options.seed ?? Date.now());
  const run = options.runId ?? randomUUID().slice(0, 8);
  const now = options.now ?? (() => new Date());
  const start = now().getTime();
  const fixtures: Fixture[] = FIXTURES.map((f, i) => ({
    ...f,
    // Kick-off at 15:00 UTC, one fixture every few days from next week on.
    eventDate: new Date(Math.floor((start + (7 + i * 4) * DAY) / DAY) * DAY + 15 * 3_600_000).toISOString(),
    basePrice: BASE_PRICES[i] ?? 10_000,
  }));
  const platformStatus = new Map<Platform, PlatformStatus>(DEMO_PLATFORMS.map((p) => [p, 'online']));
  const monitorActive = new Map<string, boolean>();
  const listings: Listing[] = [];
  const pending: DispatchInput[] = [];
  let seq = 0;
  const nextId = (prefix: string) => `${prefix}-${run}-${++seq}`;
  const iso = () => now().toISOString();
  // Ids fixed here make a retried dispatch of the same events idempotent.
  const emit = (type: string, payload: unknown) => pending.push({ id: randomUUID(), type, payload, metadata: { source: 'demo-scraper' } });

  function startMonitor(m: DemoMonitor) {
    monitorActive.set(m.monitorId, true);
    emit('MonitoringStarted', {
      monitorId: m.monitorId, userId: m.userId, eventName: fixtures[m.fixture]!.eventName, platforms: m.platforms,
      ...(m.maxPricePence === undefined ? {} : { maxPrice: gbp(m.maxPricePence) }), minQuantity: m.minQuantity,
    });
  }

  /** Scrapes one platform for one fixture; what it finds becomes new listings. */
  function scrape() {
    const platform = r.pick(DEMO_PLATFORMS);
    const fixture = r.pick(fixtures);
    const jobId = nextId('scrape');
    const t0 = now().getTime();
    emit('ScrapingJobStarted', { jobId, platform, target: `https://www.${platform}.com/search?q=${encodeURIComponent(fixture.eventName)}`, startedAt: iso() });
    const status = platformStatus.get(platform)!;
    const fails = status === 'offline' || (status === 'rate_limited' && r.chance(0.7)) || r.chance(0.05);
    if (fails) {
      const errorMessage = status === 'offline' ? 'connection refused' : status === 'rate_limited' ? 'HTTP 429 Too Many Requests' : 'unexpected page layout';
      emit('ScrapingJobCompleted', { jobId, platform, success: false, ticketsFound: 0, durationMs: r.int(200, 3000), errorMessage });
      return;
    }
    const found = r.int(0, status === 'degraded' ? 1 : 3);
    for (let i = 0; i < found; i++) {
      const ticketId = `${platform.slice(0, 2)}-${nextId('l')}`;
      const price = pounds(r, fixture.basePrice * (0.6 + r.next() * 1.6));
      const quantity = r.int(1, 8);
      listings.push({ ticketId, platform, fixture, price, quantity });
      emit('TicketDiscovered', {
        ticketId, platform, eventName: fixture.eventName, venue: fixture.venue, eventDate: fixture.eventDate,
        section: `Block ${r.int(1, 140)}`, row: String.fromCharCode(65 + r.int(0, 25)), quantity, price: gbp(price),
        url: `https://www.${platform}.com/listing/${ticketId}`,
      });
    }
    if (listings.length > MAX_LISTINGS) listings.splice(0, listings.length - MAX_LISTINGS);
    emit('ScrapingJobCompleted', { jobId, platform, success: true, ticketsFound: found, durationMs: Math.max(300, now().getTime() - t0 + r.int(300, 6000)) });
  }

  const available = () => listings.filter((l) => l.quantity > 0);

  function reprice() {
    const l = pickListing();
    if (!l) return scrape();
    const monitor = DEMO_MONITORS.find((m) => fixtures[m.fixture] === l.fixture && m.maxPricePence !== undefined && m.platforms.includes(l.platform));
    // Sellers under-cut now and then, sometimes just below what a watcher will pay: that is an alert.
    const next = monitor && l.price > monitor.maxPricePence! && r.chance(0.3)
      ? pounds(r, monitor.maxPricePence! * (0.85 + r.next() * 0.1))
      : pounds(r, l.price * (0.85 + r.next() * 0.27));
    if (next === l.price) return;
    emit('TicketPriceChanged', { ticketId: l.ticketId, platform: l.platform, oldPrice: gbp(l.price), newPrice: gbp(next) });
    l.price = next;
  }

  function setQuantity(l: Listing, next: number) {
    if (next === 0) emit('TicketSoldOut', { ticketId: l.ticketId, platform: l.platform, soldOutAt: iso() });
    else emit('TicketAvailabilityChanged', { ticketId: l.ticketId, platform: l.platform, oldQuantity: l.quantity, newQuantity: next });
    l.quantity = next;
  }

  function availability() {
    const l = pickListing();
    if (!l) return scrape();
    setQuantity(l, r.chance(0.15) ? l.quantity + r.int(1, 4) : Math.max(0, l.quantity - r.int(1, 3)));
  }

  function purchase() {
    const l = pickListing();
    if (!l) return scrape();
    const purchaseId = nextId('order');
    const quantity = r.int(1, Math.min(4, l.quantity));
    const total = gbp(l.price * quantity);
    emit('PurchaseInitiated', { purchaseId, ticketId: l.ticketId, userId: `user-${r.int(1, 200)}`, quantity, totalPrice: total });
    const ok = r.chance(0.85);
    const method = r.pick(['card', 'card', 'paypal', 'apple_pay', 'google_pay'] as const);
    emit('PaymentProcessed', { purchaseId, paymentId: nextId('pay'), amount: total, method, status: ok ? 'succeeded' : 'failed' });
    if (!ok) {
      emit('PurchaseFailed', { purchaseId, reason: 'payment declined by issuer', errorCode: 'card_declined' });
      return;
    }
    emit('PurchaseCompleted', { purchaseId, confirmationCode: `HDT${r.int(100000, 999999)}`, completedAt: iso() });
    setQuantity(l, l.quantity - quantity);
  }

  function platformIncident() {
    const platform = r.pick(DEMO_PLATFORMS);
    const old = platformStatus.get(platform)!;
    // Outages are short: a platform that is down mostly comes back next.
    const next: PlatformStatus = old !== 'online' && r.chance(0.7) ? 'online' : r.pick(['degraded', 'offline', 'rate_limited', 'online'] as const);
    if (next === old) return;
    platformStatus.set(platform, next);
    emit('PlatformStatusChanged', { platform, oldStatus: old, newStatus: next, reason: next === 'online' ? 'recovered' : next === 'rate_limited' ? 'too many requests' : 'health check failed' });
  }

  function toggleMonitor() {
    const m = r.pick(DEMO_MONITORS);
    if (!monitorActive.get(m.monitorId)) return startMonitor(m);
    monitorActive.set(m.monitorId, false);
    emit('MonitoringStopped', { monitorId: m.monitorId, userId: m.userId, reason: 'user paused alerts' });
  }

  function pickListing(): Listing | undefined {
    const open = available();
    // Recent listings are the busy ones.
    return open.length ? open[Math.max(0, open.length - 1 - Math.floor(r.next() ** 2 * open.length))] : undefined;
  }

  function act() {
    const x = r.next();
    if (x < 0.25) scrape();
    else if (x < 0.55) reprice();
    else if (x < 0.72) availability();
    else if (x < 0.93) purchase();
    else if (x < 0.98) platformIncident();
    else toggleMonitor();
  }

  for (const m of DEMO_MONITORS) startMonitor(m);

  return {
    runId: run,
    /** The next `n` events, in an order in which each stream's events are valid. */
    take(n: number): DispatchInput[] {
      while (pending.length < n) act();
      return pending.splice(0, n);
    },
    /** Puts events that could not be stored back at the front (same ids: a retry is idempotent). */
    putBack(events: DispatchInput[]): void {
      pending.unshift(...events);
    },
    listings: () => listings.length,
  };
}

export type DemoWorld = ReturnType<typeof createDemoWorld>;
