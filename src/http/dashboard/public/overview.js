import { api, reportStatus } from './api.js';
import { eventsChart, lagChart } from './charts.js';
import { card, clear, fmtInt, fmtSeconds, h, table } from './dom.js';

const REFRESH_MS = 5000;

/** Events per second over the last five minutes (the current one counted as far as it has gone). */
function rateOf(ts) {
  const last = ts.eventsPerMinute.slice(-5);
  if (last.length === 0) return 0;
  const events = last.reduce((n, m) => n + Object.values(m.byType).reduce((a, b) => a + b, 0), 0);
  const seconds = Math.max(1, (Date.now() - Date.parse(last[0].minute)) / 1000);
  return events / seconds;
}

export function overviewPage(root) {
  const cards = h('div', { class: 'cards' });
  const chartsEl = h('div', { class: 'charts' });
  const eventsEl = h('div', { class: 'chart', testid: 'chart-events' });
  const lagEl = h('div', { class: 'chart', testid: 'chart-lag' });
  chartsEl.append(eventsEl, lagEl);
  const owedEl = h('div');
  const queuesEl = h('div');
  const horizonEl = h('div');
  root.append(cards, h('h2', {}, 'Last hour'), chartsEl, h('h2', {}, 'Owed work per consumer (from PostgreSQL)'), owedEl, h('h2', {}, 'Queue depths (Redis)'), queuesEl, horizonEl);
  const charts = { events: eventsChart(eventsEl), lag: lagChart(lagEl) };
  let timer = null;

  function render(o, ts) {
    clear(cards).append(
      card('Total events', fmtInt(o.total_events), { testid: 'overview-total-events' }),
      card('Events today (UTC)', fmtInt(o.events_today), { testid: 'overview-events-today' }),
      card('Rate', `${rateOf(ts).toFixed(1)}/s`, { testid: 'overview-rate', hint: 'appended, last 5 minutes' }),
      card('Owed events', fmtInt(o.owed.events), { testid: 'overview-owed', hint: `${o.owed.consumers.length} consumers` }),
      card('Open failures', fmtInt(o.failed_processing), { testid: 'overview-open-failures', warn: o.failed_processing > 0 }),
      card('Outbox backlog', fmtInt(o.outbox.backlog), { testid: 'overview-outbox', hint: o.outbox.backlog ? `oldest ${fmtSeconds(o.outbox.oldestSeconds)}` : 'empty' }),
      card('xmin horizon age', fmtSeconds(o.xminHorizon.ageSeconds), { testid: 'overview-xmin-age', warn: o.xminHorizon.ageSeconds > 60, hint: 'oldest open transaction: holds gap-free readers back' }),
      card('Live projections', `${o.active_projections}/${o.projections.length}`, { testid: 'overview-projections' }),
    );
    clear(owedEl).append(
      table(
        [
          { label: 'Consumer', key: 'consumer', render: (r) => r.consumer },
          { label: 'Kind', render: (r) => r.kind },
          { label: 'Owed events', key: 'events', num: true, render: (r) => fmtInt(r.events) },
          { label: 'Batches', num: true, render: (r) => fmtInt(r.batches) },
          { label: 'Oldest', num: true, render: (r) => (r.events ? fmtSeconds(r.oldestSeconds) : '–') },
          { label: 'Live worker', render: (r) => (r.liveWorker ? 'yes' : h('span', { class: 'error-text' }, 'none')) },
        ],
        o.owed.consumers,
        { testid: 'overview-owed-table', rowTestid: (r) => `owed-${r.consumer}` },
      ),
    );
    if (!o.queues) clear(queuesEl).append(h('p', { class: 'error-text' }, 'Redis could not be asked for queue depths.'));
    else {
      const states = ['waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed'];
      clear(queuesEl).append(
        table(
          [{ label: 'Queue', render: (r) => r[0] }, ...states.map((s) => ({ label: s, key: s, num: true, render: (r) => fmtInt(r[1][s] ?? 0) }))],
          Object.entries(o.queues),
          { testid: 'overview-queues-table', rowTestid: (r) => `queue-${r[0]}` },
        ),
      );
    }
    clear(horizonEl);
    if (o.xminHorizon.oldest.length) {
      horizonEl.append(
        h('h2', {}, 'Oldest transactions'),
        table(
          [
            { label: 'pid', render: (r) => r.pid },
            { label: 'application', render: (r) => r.applicationName || '–' },
            { label: 'database', render: (r) => r.database ?? '–' },
            { label: 'state', render: (r) => r.state ?? '–' },
            { label: 'age', num: true, render: (r) => fmtSeconds(r.ageSeconds) },
          ],
          o.xminHorizon.oldest,
        ),
      );
    }
    root.dataset.generatedAt = o.generatedAt;
  }

  async function refresh() {
    try {
      const [o, ts] = await Promise.all([api('/api/events/overview'), api('/api/events/timeseries?minutes=60')]);
      render(o, ts);
      charts.events.update(ts);
      charts.lag.update(ts);
      reportStatus(null);
    } catch (error) {
      reportStatus(error);
    }
  }

  return {
    show() {
      void refresh();
      timer = setInterval(refresh, REFRESH_MS);
    },
    hide() {
      clearInterval(timer);
    },
    refresh,
  };
}
