import type { Price } from '../domain/index.js';
import { defineProjection } from './Projection.js';

export interface MonitorDoc {
  kind: 'monitor';
  monitorId: string;
  userId: string;
  eventName: string;
  platforms: string[];
  maxPrice: Price | null;
  minQuantity: number;
  status: 'active' | 'stopped';
  alertsTriggered: number;
  lastAlert: { alertId: string; ticketId: string; platform: string; price: Price; at: string } | null;
  startedAt: string;
  stoppedAt: string | null;
}

export interface PlatformDoc {
  kind: 'platform';
  platform: string;
  status: string;
  statusChangedAt: string | null;
  jobsStarted: number;
  jobsCompleted: number;
  jobsFailed: number;
  ticketsFound: number;
  totalDurationMs: number;
  lastJobAt: string | null;
}

export type MonitoringDoc = MonitorDoc | PlatformDoc;

export const platformDocId = (platform: string) => `platform:${platform}`;
export const monitorDocId = (monitorId: string) => `monitor:${monitorId}`;

// Platform documents are fed by many streams whose relative order is not defined: keep them order-independent.
const latest = (a: string | null, b: string) => (a && a > b ? a : b);

const blankPlatform = (platform: string): PlatformDoc => ({
  kind: 'platform', platform, status: 'online', statusChangedAt: null, jobsStarted: 0, jobsCompleted: 0, jobsFailed: 0, ticketsFound: 0, totalDurationMs: 0, lastJobAt: null,
});

/** Per-monitor state (what users watch, alerts fired) and per-platform scraping statistics. */
export const MonitoringReadModelProjection = defineProjection<MonitoringDoc>({
  name: 'MonitoringReadModelProjection',
  version: 1,
  table: 'monitoring_read_models',
  handledTypes: ['MonitoringStarted', 'MonitoringStopped', 'AlertTriggered', 'ScrapingJobStarted', 'ScrapingJobCompleted', 'PlatformStatusChanged'],
  keysOf(e) {
    const p = e.payload as { monitorId?: string; platform?: string };
    return p.monitorId ? [monitorDocId(p.monitorId)] : [platformDocId(p.platform!)];
  },
  apply(e, docs) {
    switch (e.type) {
      case 'MonitoringStarted': {
        const p = e.payload;
        docs.set(monitorDocId(p.monitorId), {
          kind: 'monitor', monitorId: p.monitorId, userId: p.userId, eventName: p.eventName, platforms: [...p.platforms], maxPrice: p.maxPrice ?? null,
          minQuantity: p.minQuantity, status: 'active', alertsTriggered: 0, lastAlert: null, startedAt: e.occurredAt, stoppedAt: null,
        });
        return;
      }
      case 'MonitoringStopped': {
        const doc = docs.get(monitorDocId(e.payload.monitorId));
        if (doc?.kind !== 'monitor') return;
        docs.set(monitorDocId(e.payload.monitorId), { ...doc, status: 'stopped', stoppedAt: e.occurredAt });
        return;
      }
      case 'AlertTriggered': {
        const doc = docs.get(monitorDocId(e.payload.monitorId));
        if (doc?.kind !== 'monitor') return;
        const p = e.payload;
        docs.set(monitorDocId(p.monitorId), { ...doc, alertsTriggered: doc.alertsTriggered + 1, lastAlert: { alertId: p.alertId, ticketId: p.ticketId, platform: p.platform, price: p.price, at: e.occurredAt } });
        return;
      }
      case 'ScrapingJobStarted':
      case 'ScrapingJobCompleted':
      case 'PlatformStatusChanged': {
        const id = platformDocId(e.payload.platform);
        const current = docs.get(id);
        const doc = current?.kind === 'platform' ? current : blankPlatform(e.payload.platform);
        if (e.type === 'ScrapingJobStarted') {
          doc.jobsStarted += 1;
          doc.lastJobAt = latest(doc.lastJobAt, e.payload.startedAt);
        } else if (e.type === 'ScrapingJobCompleted') {
          doc.jobsCompleted += 1;
          if (!e.payload.success) doc.jobsFailed += 1;
          doc.ticketsFound += e.payload.ticketsFound;
          doc.totalDurationMs += e.payload.durationMs;
          doc.lastJobAt = latest(doc.lastJobAt, e.occurredAt);
        } else {
          doc.status = e.payload.newStatus;
          doc.statusChangedAt = e.occurredAt;
        }
        docs.set(id, doc);
        return;
      }
      default:
        return;
    }
  },
});
