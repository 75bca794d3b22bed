// Small DOM helpers: every value reaches the page as text (textContent), never as HTML.

/** h('td', { class: 'num', dataset: { testid: 'x' } }, 'text', childNode, …) */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'testid') el.dataset.testid = v;
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

export const clear = (el) => {
  el.replaceChildren();
  return el;
};

export const fmtInt = (n) => (n === null || n === undefined ? '–' : Math.round(n).toLocaleString('en-US'));

export function fmtSeconds(s) {
  if (s === null || s === undefined) return '–';
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

export const fmtTime = (iso) => (iso ? new Date(iso).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '–');

export function table(columns, rows, opts = {}) {
  const head = h('tr', {}, columns.map((c) => h('th', { class: c.num ? 'num' : undefined }, c.label)));
  const body = rows.map((r) => {
    const tr = h('tr', { testid: opts.rowTestid?.(r), class: opts.onRowClick ? 'clickable' : undefined }, columns.map((c) => h('td', { class: c.num ? 'num' : undefined, dataset: c.key ? { col: c.key } : undefined }, c.render(r))));
    if (opts.onRowClick) tr.addEventListener('click', () => opts.onRowClick(r, tr));
    return tr;
  });
  return h('table', { testid: opts.testid }, h('thead', {}, head), h('tbody', {}, body));
}

export function card(label, value, { testid, hint, warn } = {}) {
  return h('div', { class: warn ? 'card warn' : 'card' }, h('div', { class: 'label' }, label), h('div', { class: 'value', testid }, value), hint ? h('div', { class: 'hint' }, hint) : null);
}
