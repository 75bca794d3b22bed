import { qs } from './api.js';
import { clear, fmtTime, h } from './dom.js';

const KEEP = 300;

/**
 * Newest events as they are stored, from the SSE stream (GET /api/events/stream). EventSource
 * reconnects by itself and sends Last-Event-ID, so a dropped connection resumes where it stopped.
 * Connected only while the page is shown.
 */
export function tailPage(root) {
  const type = h('input', { type: 'text', placeholder: 'event type (optional)', testid: 'tail-type' });
  const stream = h('input', { type: 'text', placeholder: 'stream id (optional)', testid: 'tail-stream' });
  const pause = h('input', { type: 'checkbox', testid: 'tail-pause' });
  const state = h('span', { class: 'muted', testid: 'tail-state' }, 'disconnected');
  const list = h('ul', { class: 'tail', testid: 'tail-list' });
  const form = h('form', { class: 'filters' }, h('label', {}, 'Type', type), h('label', {}, 'Stream', stream), h('button', { type: 'submit' }, 'Follow'), h('label', {}, h('span', {}, 'Pause scrolling'), pause), state);
  root.append(h('h2', {}, 'Live tail'), form, list);
  let source = null;
  let received = 0;

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clear(list);
    connect();
  });

  function connect() {
    source?.close();
    source = new EventSource(`/api/events/stream${qs({ type: type.value.trim(), stream: stream.value.trim() })}`);
    state.textContent = 'connecting…';
    source.addEventListener('open', () => (state.textContent = 'connected'));
    source.addEventListener('error', () => (state.textContent = source.readyState === EventSource.CLOSED ? 'closed (check credentials)' : 'reconnecting…'));
    source.addEventListener('event', (msg) => {
      const ev = JSON.parse(msg.data);
      received++;
      list.dataset.received = String(received);
      const li = h(
        'li',
        { dataset: { position: String(ev.globalPosition), type: ev.type } },
        h('span', { class: 'pos' }, `#${ev.globalPosition} `),
        h('span', { class: 'muted' }, `${fmtTime(ev.recordedAt)} `),
        h('span', { class: 'type' }, ev.type),
        ` ${ev.streamId} v${ev.version} `,
        h('span', { class: 'muted' }, JSON.stringify(ev.payload).slice(0, 200)),
      );
      list.prepend(li);
      while (list.childElementCount > KEEP) list.lastElementChild.remove();
      if (!pause.checked) list.scrollTop = 0;
    });
  }

  return {
    show: connect,
    hide() {
      source?.close();
      source = null;
      state.textContent = 'disconnected';
    },
  };
}
