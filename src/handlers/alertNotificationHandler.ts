import { createHmac } from 'node:crypto';
import { sql } from 'slonik';
import { redactUrl, scrubSecrets } from '../config.js';
import { activeTraceHeaders, SpanKind, withSpan } from '../tracing.js';
import type { EventHandler } from './Handler.js';

export const SIGNATURE_HEADER = 'x-hdt-signature';

export function signBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * The in-app side of an alert: the user's notification and the platform's alert count, in the
 * transaction of its ledger row (exactly once).
 */
export const AlertInboxHandler: EventHandler = {
  name: 'AlertInboxHandler',
  handledTypes: ['AlertTriggered'],
  async handle(e, ctx) {
    if (e.type !== 'AlertTriggered') return;
    const p = e.payload;
    ctx.notify({ userId: p.userId, kind: 'alert', eventId: e.id, title: `Tickets for ${p.eventName} on ${p.platform}`, body: { ticketId: p.ticketId, price: p.price, reason: p.reason } });
    ctx.countForPlatform(p.platform, e.occurredAt, { alerts_triggered: 1 });
  },
};

/**
 * Delivers an alert to ALERT_WEBHOOK_URL (when set), signed with HMAC-SHA256 over the exact body, with
 * the event id as Idempotency-Key. An external handler: the call runs after the alert committed and
 * outside any transaction, one alert at a time, and each success is recorded (ledger row and
 * `alert_deliveries`) right after it, so a failing k-th call repeats none of the k−1 before it and a
 * slow receiver holds no transaction open. Non-2xx answers throw: that alert is retried with
 * exponential backoff and, once exhausted, recorded as a failure.
 */
export const AlertNotificationHandler: EventHandler = {
  name: 'AlertNotificationHandler',
  handledTypes: ['AlertTriggered'],
  external: true,
  async handle(e, ctx) {
    if (e.type !== 'AlertTriggered') return;
    const p = e.payload;
    const { webhookUrl, webhookSecret, webhookTimeoutMs } = ctx.settings;
    if (!webhookUrl) return;
    const body = JSON.stringify({ eventId: e.id, occurredAt: e.occurredAt, alert: p });
    const headers: Record<string, string> = { 'content-type': 'application/json', 'idempotency-key': e.id, 'x-hdt-event-id': e.id };
    if (webhookSecret) headers[SIGNATURE_HEADER] = signBody(webhookSecret, body);
    // fetch refuses a URL with credentials, and its error quotes the whole URL (password included) into
    // the job's failure record: send them as basic auth instead.
    const target = new URL(webhookUrl);
    if (target.username || target.password) {
      headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`).toString('base64')}`;
      target.username = '';
      target.password = '';
    }
    // One span per delivery attempt, in the alert's trace (the runner made it active); the receiver gets its traceparent.
    const status = await withSpan('webhook delivery', { kind: SpanKind.CLIENT, attributes: { 'http.request.method': 'POST', 'hdt.event_id': e.id, 'hdt.alert_id': p.alertId } }, async (span) => {
      Object.assign(headers, activeTraceHeaders());
      let res: Response;
      try {
        res = await fetch(target, { method: 'POST', headers, body, signal: AbortSignal.timeout(webhookTimeoutMs) });
      } catch (error) {
        const cause = (error as { cause?: { code?: string; message?: string } }).cause;
        const reason = scrubSecrets(cause?.code ?? cause?.message ?? (error as Error).message, webhookUrl);
        throw new Error(`alert webhook ${redactUrl(webhookUrl)} unreachable: ${reason}`);
      }
      await res.arrayBuffer().catch(() => undefined);
      span?.setAttribute('http.response.status_code', res.status);
      if (!res.ok) throw new Error(`alert webhook ${redactUrl(webhookUrl)} answered HTTP ${res.status}`);
      return res.status;
    });
    return async (tx) => {
      await tx.query(sql.unsafe`
        INSERT INTO alert_deliveries (event_id, alert_id, response_code) VALUES (${e.id}, ${p.alertId}, ${status})
        ON CONFLICT (event_id) DO UPDATE SET attempts = alert_deliveries.attempts + 1, response_code = EXCLUDED.response_code, delivered_at = now()`);
    };
  },
};
