import { api, reportStatus } from './api.js';
import { clear, fmtInt, fmtSeconds, fmtTime, h, table } from './dom.js';

const REFRESH_MS = 3000;
const POLL_MS = 500;
const FINAL = new Set(['completed', 'failed']);

export function projectionsPage(root) {
  const tableEl = h('div');
  const rebuildsEl = h('div', { testid: 'rebuilds' });
  root.append(h('h2', {}, 'Projections'), tableEl, h('h2', {}, 'Rebuilds started here'), rebuildsEl);
  /** name → { jobId, status, error, el } ; kept across table refreshes */
  const rebuilds = new Map();
  let timer = null;

  function renderRebuild(name) {
    const r = rebuilds.get(name);
    const p = r.status?.progress;
    const state = r.error ? 'error' : r.status?.state ?? 'enqueued';
    const done = p?.done ?? 0;
    const total = p?.total ?? 0;
    const bar = h('progress', { max: Math.max(total, 1), value: state === 'completed' ? Math.max(total, 1) : done });
    const detail = r.error
      ? h('span', { class: 'error-text' }, r.error)
      : [
          h('span', { testid: `rebuild-state-${name}`, dataset: { state } }, state),
          ' · ',
          h('span', { testid: `rebuild-count-${name}` }, `${fmtInt(done)} / ${fmtInt(total)} events`),
          p ? ` · ${p.phase}${p.eventsPerSecond ? ` · ${fmtInt(p.eventsPerSecond)} ev/s` : ''}${p.etaSeconds ? ` · eta ${fmtSeconds(p.etaSeconds)}` : ''}` : '',
          r.status?.failedReason ? h('span', { class: 'error-text' }, ` · ${r.status.failedReason}`) : '',
          r.warning ? h('div', { class: 'muted' }, r.warning) : '',
        ];
    clear(r.el).append(h('span', {}, h('strong', {}, name), ` job ${r.jobId ?? '…'} `, bar, ' ', detail));
  }

  async function poll(name) {
    const r = rebuilds.get(name);
    try {
      r.status = await api(`/api/events/replays/${encodeURIComponent(r.jobId)}`);
    } catch (error) {
      r.error = error.message;
    }
    renderRebuild(name);
    if (!r.error && !FINAL.has(r.status?.state)) setTimeout(() => void poll(name), POLL_MS);
    else void refresh(true);
  }

  async function startRebuild(name) {
    const el = h('div', { class: 'panel', testid: `rebuild-${name}` });
    rebuildsEl.prepend(el);
    rebuilds.get(name)?.el.remove();
    rebuilds.set(name, { el, jobId: null, status: null, error: null });
    renderRebuild(name);
    try {
      const res = await api(`/api/events/projections/${encodeURIComponent(name)}/rebuild`, { method: 'POST', body: {} });
      Object.assign(rebuilds.get(name), { jobId: res.jobId, warning: res.warning ?? (res.alreadyQueued ? 'a rebuild was already queued: following that one' : null) });
      void poll(name);
    } catch (error) {
      rebuilds.get(name).error = error.message;
      renderRebuild(name);
    }
  }

  function confirmRebuild(p, cell) {
    clear(cell).append(
      h('span', {}, `Rebuild ${p.name}? It replays the store into a new table; the old one serves until the switch. `),
      h('button', { class: 'danger', testid: `rebuild-confirm-${p.name}`, onclick: () => void startRebuild(p.name).then(() => refresh(true)) }, 'Confirm rebuild'),
      ' ',
      h('button', { onclick: () => void refresh(true) }, 'Cancel'),
    );
  }

  function render(list) {
    clear(tableEl).append(
      table(
        [
          { label: 'Projection', key: 'name', render: (p) => p.name },
          { label: 'Status', key: 'status', render: (p) => h('span', { class: p.status === 'live' ? 'ok-text' : 'error-text' }, p.status) },
          { label: 'Version', num: true, render: (p) => `v${p.version} g${p.generation}` },
          { label: 'Checkpoint', key: 'checkpoint', num: true, render: (p) => fmtInt(p.checkpointPosition) },
          { label: 'Lag (events)', key: 'lag', num: true, render: (p) => fmtInt(p.lagEvents) },
          { label: 'Lag (s)', num: true, render: (p) => fmtSeconds(p.lagSeconds) },
          { label: 'Owed', num: true, render: (p) => fmtInt(p.owedEvents) },
          { label: 'Rows', key: 'rows', num: true, render: (p) => fmtInt(p.rows) },
          { label: 'Parked streams', key: 'parked', num: true, render: (p) => (p.parkedStreams ? h('span', { class: 'error-text' }, fmtInt(p.parkedStreams)) : '0') },
          { label: 'Last rebuild', render: (p) => (p.lastRebuild?.finishedAt ? `${fmtTime(p.lastRebuild.finishedAt)} (${fmtInt(p.lastRebuild.events)} events)` : '–') },
          {
            label: '',
            render: (p) => {
              const cell = h('span');
              cell.append(h('button', { testid: `rebuild-button-${p.name}`, onclick: () => confirmRebuild(p, cell) }, 'Rebuild…'));
              return cell;
            },
          },
        ],
        list,
        { testid: 'projections-table', rowTestid: (p) => `projection-${p.name}` },
      ),
    );
  }

  const confirming = () => !!tableEl.querySelector('[data-testid^="rebuild-confirm-"]');
  async function refresh(force = false) {
    // A periodic refresh does not pull an open confirmation away from under the operator's cursor.
    if (!force && confirming()) return;
    try {
      render((await api('/api/events/projections')).projections);
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
  };
}
