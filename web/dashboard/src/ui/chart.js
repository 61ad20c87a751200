// Time-series charts. createChartView() owns the DOM around a chart (a
// "collecting samples" note while there are fewer than two points) and turns
// history rows [t, v1, v2, …] into uPlot's column layout; the plot itself comes
// from a factory so tests can run without a canvas (jsdom has none).

import { h, note } from './dom.js';

/**
 * Rows [t, a, b, …] → columns [[t…], [a…], [b…]], inserting a null point after
 * any gap longer than 3 resolutions so lines break where data is missing (an
 * index restart, a dropped stream) instead of drawing a misleading straight line.
 */
export function toColumns(history, nSeries, resolution) {
  const cols = Array.from({ length: nSeries + 1 }, () => []);
  let prev = null;
  for (const p of history) {
    if (prev !== null && resolution > 0 && p[0] - prev > 3 * resolution) {
      cols[0].push(prev + resolution);
      for (let i = 1; i <= nSeries; i++) cols[i].push(null);
    }
    cols[0].push(p[0]);
    for (let i = 1; i <= nSeries; i++) cols[i].push(p[i] ?? null);
    prev = p[0];
  }
  return cols;
}

/**
 * @param {{testid: string, series: Array<{label: string, color: string, fmt: (v:number)=>string, scale?: string}>,
 *          height?: number, waitingText: string, yFmt?: (v:number)=>string, rightFmt?: (v:number)=>string,
 *          integer?: boolean, factory: Function}} spec
 */
export function createChartView(spec) {
  const plotEl = h('div', { class: 'chart-plot' });
  const waiting = note(`${spec.testid}-waiting`, 'waiting', spec.waitingText);
  const el = h('div', { class: 'chart', testid: spec.testid }, plotEl, waiting);
  let plot = null;
  let failed = false;

  return {
    el,
    /** @param {Array<Array<number|null>>} history @param {number} resolution */
    update(history, resolution) {
      const n = history.length;
      el.dataset.points = String(n);
      waiting.hidden = n >= 2;
      el.classList.toggle('chart-empty', n < 2);
      if (!plot && !failed && el.isConnected) {
        try { plot = spec.factory(plotEl, spec); } catch (e) {
          failed = true;
          console.error('chart could not be created', e);
          plotEl.replaceChildren(note(`${spec.testid}-error`, 'empty', 'This browser could not draw the chart.'));
        }
      }
      if (plot) plot.setData(toColumns(history, spec.series.length, resolution));
    },
    destroy() { if (plot) plot.destroy(); plot = null; },
  };
}
