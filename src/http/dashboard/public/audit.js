import { api, qs, reportStatus } from './api.js';
import { clear, fmtTime, h, table } from './dom.js';

const PAGE_SIZE = 50;
const compact = (v) => (v && typeof v === 'object' ? Object.entries(v).filter(([, x]) => x !== undefined && x !== null).map(([k, x]) => `${k}: ${Array.isArray(x) ? x.join(',') : typeof x === 'object' ? JSON.stringify(x) : x}`).join(' · ') : String(v ?? ''));

/** Operator actions (bulk retry/resolve and the like) as the API recorded them, newest first. */
export function auditPage(root) {
  const listEl = h('div');
  const more = h('button', { testid: 'audit-more', onclick: () => void load(true) }, 'Older entries');
  root.append(h('h2', {}, 'Audit log of operator actions'), h('p', {}, h('button', { testid: 'audit-refresh', onclick: () => void load(false) }, 'Refresh')), listEl, more);
  let entries = [];

  async function load(older) {
    try {
      const before = older && entries.length ? entries[entries.length - 1].id : undefined;
      const page = await api(`/api/events/audit${qs({ limit: PAGE_SIZE, before })}`);
      entries = older ? [...entries, ...page.entries] : page.entries;
      more.disabled = page.entries.length < PAGE_SIZE;
      clear(listEl).append(
        entries.length === 0
          ? h('p', { class: 'empty', testid: 'audit-empty' }, 'No operator actions recorded yet.')
          : table(
              [
                { label: 'id', num: true, render: (e) => e.id },
                { label: 'At', render: (e) => fmtTime(e.at) },
                { label: 'Actor', key: 'actor', render: (e) => e.actor ?? '–' },
                { label: 'Action', key: 'action', render: (e) => e.action },
                { label: 'Filter', key: 'filter', render: (e) => compact(e.filter) },
                { label: 'Counts', key: 'counts', render: (e) => compact(e.counts) },
                { label: 'Details', render: (e) => compact(e.details) },
              ],
              entries,
              { testid: 'audit-table', rowTestid: (e) => `audit-${e.id}` },
            ),
      );
      reportStatus(null);
    } catch (error) {
      reportStatus(error);
      clear(listEl).append(h('p', { class: 'error-text' }, error.message));
    }
  }

  return {
    show() {
      void load(false);
    },
    hide() {},
  };
}
