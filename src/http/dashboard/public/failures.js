import { api, qs, reportStatus } from './api.js';
import { clear, fmtInt, fmtTime, h, table } from './dom.js';

const PAGE_SIZE = 50;

/** A datetime-local input's value (the browser's local time) as ISO 8601, or undefined. */
const isoOf = (v) => (v ? new Date(v).toISOString() : undefined);
const errorOf = (f) => f.error ?? f.error_message ?? '';
const stackOf = (f) => f.stack ?? f.error_stack ?? null;
const typeOf = (f) => f.event?.type ?? f.event_type ?? f.eventType;

/**
 * The failures explorer: filter, page through, open one, and retry or resolve everything the filter
 * matches, always through a dry run first (how many, which consumers) and an explicit confirmation.
 */
export function failuresPage(root) {
  // Free text with suggestions: a consumer no longer registered can still have failures to deal with.
  const consumerList = h('datalist', { id: 'failure-consumers' });
  const typeList = h('datalist', { id: 'failure-types' });
  const consumer = h('input', { name: 'consumer', list: 'failure-consumers', placeholder: 'any', testid: 'filter-consumer' });
  const eventType = h('input', { name: 'eventType', list: 'failure-types', placeholder: 'any', testid: 'filter-event-type' });
  const q = h('input', { name: 'q', type: 'search', placeholder: 'error text contains…', testid: 'filter-q' });
  const since = h('input', { name: 'since', type: 'datetime-local', testid: 'filter-since' });
  const until = h('input', { name: 'until', type: 'datetime-local', testid: 'filter-until' });
  const status = h('select', { name: 'status', testid: 'filter-status' }, ['open', 'resolved', 'all'].map((s) => h('option', { value: s }, s)));
  const form = h(
    'form',
    { class: 'filters', testid: 'failures-filters' },
    h('label', {}, 'Consumer', consumer),
    h('label', {}, 'Event type', eventType),
    h('label', {}, 'Error text', q),
    h('label', {}, 'Failed since', since),
    h('label', {}, 'until', until),
    h('label', {}, 'Status', status),
    h('button', { type: 'submit', class: 'primary', testid: 'filter-apply' }, 'Apply'),
    h('button', { type: 'button', onclick: () => (form.reset(), void load(true)) }, 'Reset'),
    consumerList,
    typeList,
  );
  const bulkEl = h('div', { class: 'panel', testid: 'bulk' });
  const summaryEl = h('div', { class: 'pager' });
  const listEl = h('div');
  const detailEl = h('div', { testid: 'failure-detail' });
  root.append(h('h2', {}, 'Processing failures'), form, bulkEl, detailEl, summaryEl, listEl);

  let applied = {}; // the filter of the list on screen (the bulk actions act on exactly this)
  let cursors = []; // cursors of the pages before this one
  let cursor;
  let page = null;

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void load(true);
  });

  function readFilter() {
    return { consumer: consumer.value.trim() || undefined, eventType: eventType.value.trim() || undefined, q: q.value.trim() || undefined, since: isoOf(since.value), until: isoOf(until.value) };
  }

  const suggested = { consumers: new Set(), types: new Set() };
  function suggest(consumers, types) {
    const fill = (list, set, values) => {
      const before = set.size;
      for (const v of values) set.add(v);
      if (set.size !== before) clear(list).append([...set].sort().map((v) => h('option', { value: v })));
    };
    fill(consumerList, suggested.consumers, consumers);
    fill(typeList, suggested.types, types);
  }

  async function loadChoices() {
    // Registered consumers (the owed summary lists every one) and the stored event types.
    const o = await api('/api/events/overview');
    suggest(o.owed.consumers.map((c) => c.consumer), o.event_types.map((t) => t.type));
  }

  async function load(fromStart = false) {
    if (fromStart) {
      applied = readFilter();
      cursors = [];
      cursor = undefined;
      clear(detailEl);
      renderBulk();
    }
    try {
      page = await api(`/api/events/failures${qs({ ...applied, status: status.value, limit: PAGE_SIZE, cursor })}`);
      suggest(page.failures.map((f) => f.consumer), page.failures.map((f) => typeOf(f)));
      renderList();
      reportStatus(null);
    } catch (error) {
      reportStatus(error);
      clear(listEl).append(h('p', { class: 'error-text' }, error.message));
    }
  }

  function renderList() {
    const total = page.total ?? page.failures.length;
    clear(summaryEl).append(
      h('span', { testid: 'failures-total', dataset: { total: String(total) } }, `${fmtInt(total)} matching`),
      h('span', { class: 'muted' }, ` · page ${cursors.length + 1}, ${page.failures.length} shown`),
      h('button', { testid: 'page-prev', disabled: cursors.length === 0, onclick: () => ((cursor = cursors.pop()), void load()) }, '← Previous'),
      h('button', { testid: 'page-next', disabled: !page.nextCursor, onclick: () => (cursors.push(cursor), (cursor = page.nextCursor), void load()) }, 'Next →'),
    );
    clear(listEl).append(
      page.failures.length === 0
        ? h('p', { class: 'empty', testid: 'failures-empty' }, 'No failures match.')
        : table(
            [
              { label: 'id', num: true, render: (f) => f.id },
              { label: 'Consumer', key: 'consumer', render: (f) => f.consumer },
              { label: 'Event type', key: 'type', render: (f) => typeOf(f) },
              { label: 'Error', render: (f) => errorOf(f).slice(0, 140) },
              { label: 'Attempts', num: true, render: (f) => f.attempts },
              { label: 'Last failed', render: (f) => fmtTime(f.last_failed_at ?? f.lastFailedAt) },
              { label: 'Status', key: 'status', render: (f) => f.status },
            ],
            page.failures,
            { testid: 'failures-table', rowTestid: (f) => `failure-${f.id}`, onRowClick: (f, tr) => void open(f.id, tr) },
          ),
    );
  }

  async function open(id, tr) {
    for (const el of listEl.querySelectorAll('tr.selected')) el.classList.remove('selected');
    tr?.classList.add('selected');
    try {
      const f = await api(`/api/events/failures/${id}`);
      const ev = f.event ?? {};
      detailEl.scrollIntoView({ block: 'nearest' });
      clear(detailEl).append(
        h(
          'div',
          { class: 'panel', testid: `failure-detail-${id}` },
          h('h2', {}, `Failure #${f.id}: ${f.consumer} on ${typeOf(f)}`),
          h('p', {}, `status ${f.status} · ${f.attempts} attempts · first ${fmtTime(f.first_failed_at ?? f.firstFailedAt)} · last ${fmtTime(f.last_failed_at ?? f.lastFailedAt)}`),
          h('p', {}, `event ${ev.id ?? f.event_id} · stream ${ev.streamId ?? f.stream_id} v${ev.version ?? '?'} · position ${ev.globalPosition ?? f.global_position}`),
          h('h3', {}, 'Error'),
          h('pre', { testid: 'detail-error' }, errorOf(f)),
          stackOf(f) ? [h('h3', {}, 'Stack'), h('pre', { testid: 'detail-stack' }, stackOf(f))] : null,
          h('h3', {}, 'Payload'),
          h('pre', { testid: 'detail-payload' }, JSON.stringify(ev.payload ?? null, null, 2)),
          ev.metadata ? [h('h3', {}, 'Metadata'), h('pre', {}, JSON.stringify(ev.metadata, null, 2))] : null,
          f.status !== 'resolved'
            ? h('p', {}, h('button', { onclick: () => void preview('retry', { ids: [f.id] }) }, 'Retry this one…'), ' ', h('button', { onclick: () => void preview('resolve', { ids: [f.id] }) }, 'Resolve this one…'))
            : null,
        ),
      );
    } catch (error) {
      clear(detailEl).append(h('p', { class: 'error-text' }, error.message));
    }
  }

  function describeFilter(f) {
    const parts = Object.entries(f).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : v}`);
    return parts.length ? parts.join(', ') : 'all open failures';
  }

  function renderBulk(content) {
    clear(bulkEl).append(
      h('strong', {}, 'Bulk actions on the filtered set '),
      h('span', { class: 'muted' }, `(${describeFilter(applied)}) `),
      h('button', { testid: 'bulk-retry', onclick: () => void preview('retry', applied) }, 'Retry all matching…'),
      ' ',
      h('button', { testid: 'bulk-resolve', onclick: () => void preview('resolve', applied) }, 'Resolve all matching…'),
    );
    if (content) bulkEl.append(content);
  }

  /** Dry run first: shows how many and which consumers, then asks for confirmation of that same filter. */
  async function preview(action, filter) {
    const frozen = { ...filter };
    try {
      const dry = await api(`/api/events/failures/${action}`, { method: 'POST', body: { filter: frozen, dryRun: true } });
      const byConsumer = Object.entries(dry.byConsumer ?? {});
      const note = h('input', { type: 'text', size: 50, placeholder: 'why no processing is needed (required)', testid: 'bulk-note' });
      const confirm = h('button', { class: action === 'resolve' ? 'danger' : 'primary', testid: 'bulk-confirm' }, `Confirm ${action} of ${fmtInt(dry.matched)}`);
      confirm.addEventListener('click', () => void execute(action, frozen, note.value.trim(), confirm));
      renderBulk(
        h(
          'div',
          { class: 'panel confirm', testid: 'bulk-preview', dataset: { action, matched: String(dry.matched) } },
          h('p', {}, h('strong', { testid: 'bulk-preview-count' }, `${action === 'retry' ? 'Retry' : 'Resolve'} ${fmtInt(dry.matched)} failure(s)`), ` matching ${describeFilter(frozen)}`),
          byConsumer.length ? h('ul', { testid: 'bulk-preview-consumers' }, byConsumer.map(([c, n]) => h('li', { dataset: { consumer: c, count: String(n) } }, `${c}: ${fmtInt(n)}`))) : null,
          dry.matched === 0 ? h('p', { class: 'muted' }, 'Nothing to do.') : [action === 'resolve' ? h('p', {}, 'Note: ', note) : null, confirm, ' '],
          h('button', { testid: 'bulk-cancel', onclick: () => renderBulk() }, 'Cancel'),
        ),
      );
    } catch (error) {
      renderBulk(h('p', { class: 'error-text' }, error.message));
    }
  }

  async function execute(action, filter, note, button) {
    if (action === 'resolve' && !note) {
      renderBulk(h('p', { class: 'error-text' }, 'A note is required to resolve: say why no processing is needed.'));
      return;
    }
    button.disabled = true;
    try {
      const res = await api(`/api/events/failures/${action}`, { method: 'POST', body: action === 'resolve' ? { filter, note } : { filter } });
      const done = action === 'retry' ? res.retried : res.resolved;
      renderBulk(
        h(
          'p',
          { class: 'ok-text', testid: 'bulk-result', dataset: { action, matched: String(res.matched), done: String(done) } },
          `${action === 'retry' ? 'Retried' : 'Resolved'} ${fmtInt(done)} of ${fmtInt(res.matched)} matching (audit entry #${res.auditId}).`,
        ),
      );
      await load();
    } catch (error) {
      renderBulk(h('p', { class: 'error-text' }, error.message));
    }
  }

  renderBulk();
  return {
    show() {
      void loadChoices()
        .catch((error) => reportStatus(error))
        .then(() => load(page === null));
    },
    hide() {},
  };
}
