import { clear, h } from './dom.js';

// uPlot (node_modules/uplot, served by this server) is loaded as a classic script: window.uPlot.
const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d', '#475569', '#ea580c', '#0d9488', '#9333ea'];

/**
 * A uPlot line chart that is rebuilt when its series change and otherwise just given new data. The
 * container's data-series and data-points say what is drawn (a canvas cannot be read back).
 */
function lineChart(el, title, yLabel) {
  let plot = null;
  let names = '';
  const empty = h('div', { class: 'empty' });
  return {
    draw(x, series, emptyText) {
      el.dataset.series = JSON.stringify(series.map((s) => s.name));
      el.dataset.points = String(series.reduce((n, s) => n + s.values.filter((v) => v > 0).length, 0));
      if (x.length === 0 || series.length === 0) {
        plot?.destroy();
        plot = null;
        names = '';
        empty.textContent = `${title}: ${emptyText}`;
        clear(el).append(empty);
        return;
      }
      const data = [x, ...series.map((s) => s.values)];
      const key = JSON.stringify(series.map((s) => s.name));
      if (plot && key === names) {
        plot.setData(data);
        return;
      }
      plot?.destroy();
      clear(el);
      names = key;
      plot = new window.uPlot(
        {
          title,
          width: Math.max(320, el.clientWidth - 16),
          height: 260,
          scales: { x: { time: true } },
          axes: [{}, { label: yLabel, size: 60 }],
          series: [{}, ...series.map((s, i) => ({ label: s.name, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: false }))],
        },
        data,
        el,
      );
    },
  };
}

/** Events per minute by type, one line per type (busiest first). */
export function eventsChart(el) {
  const chart = lineChart(el, 'Events per minute by type', 'events/min');
  return {
    update(ts) {
      const totals = new Map();
      for (const m of ts.eventsPerMinute) for (const [t, n] of Object.entries(m.byType)) totals.set(t, (totals.get(t) ?? 0) + n);
      const types = [...totals].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([t]) => t);
      const x = ts.eventsPerMinute.map((m) => Date.parse(m.minute) / 1000);
      chart.draw(x, types.map((t) => ({ name: t, values: ts.eventsPerMinute.map((m) => m.byType[t] ?? 0) })), 'no events in the last hour');
    },
  };
}

/** Owed events per consumer over time (sampled by the web process every ~10 s). */
export function lagChart(el) {
  const chart = lineChart(el, 'Lag: owed events per consumer', 'owed events');
  return {
    update(ts) {
      const consumers = [...new Set(ts.lag.flatMap((s) => Object.keys(s.consumers)))].sort();
      const x = ts.lag.map((s) => Date.parse(s.at) / 1000);
      chart.draw(x, consumers.map((c) => ({ name: c, values: ts.lag.map((s) => s.consumers[c] ?? null) })), 'no samples yet (taken every ~10 s)');
    },
  };
}
