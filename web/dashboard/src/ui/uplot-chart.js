// The real chart factory, drawing with uPlot (canvas).

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { fmtClock } from '../lib/format.js';

const AXIS = '#9aa5b4';
const GRID = 'rgba(154, 165, 180, 0.14)';

function chartHeight(width, base) {
  return width < 480 ? Math.round(base * 0.8) : base;
}

function niceMax(max) {
  if (max === null || !Number.isFinite(max) || max <= 0) return 1;
  return max * 1.15;
}

function axis(fmt, extra = {}) {
  return {
    stroke: AXIS,
    grid: { stroke: GRID, width: 1 },
    ticks: { stroke: GRID, width: 1 },
    font: '11px system-ui, sans-serif',
    size: 60,
    values: fmt ? (u, splits) => splits.map((v) => (v === null ? '' : fmt(v))) : undefined,
    ...extra,
  };
}

const INT_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000, 100000];

/** @param {HTMLElement} el @param {object} spec see createChartView */
export function uplotFactory(el, spec) {
  const base = spec.height ?? 200;
  const width = Math.max(220, el.clientWidth || 320);
  const hasRight = spec.series.some((s) => s.scale === 'right');
  const yAxis = axis(spec.yFmt, spec.integer ? { incrs: INT_INCRS } : {});
  const opts = {
    width,
    height: chartHeight(width, base),
    ms: 1,
    cursor: { drag: { x: false, y: false, setScale: false }, points: { size: 6 } },
    legend: { show: true, live: true },
    scales: {
      x: { time: true },
      y: { range: (u, min, max) => [0, niceMax(max)] },
      ...(hasRight ? { right: { range: (u, min, max) => [0, niceMax(max)] } } : {}),
    },
    axes: [
      axis(null, { size: 30, space: 60 }),
      yAxis,
      ...(hasRight ? [axis(spec.rightFmt, { scale: 'right', side: 1, grid: { show: false } })] : []),
    ],
    series: [
      { value: (u, v) => (v === null ? '–' : fmtClock(v)) },
      ...spec.series.map((s) => ({
        label: s.label,
        stroke: s.color,
        width: 1.5,
        scale: s.scale ?? 'y',
        spanGaps: false,
        points: { show: false },
        value: (u, v) => (v === null || v === undefined ? '–' : s.fmt(v)),
      })),
    ],
  };
  const empty = [[], ...spec.series.map(() => [])];
  const u = new uPlot(opts, empty, el);
  let ro = null;
  if (typeof ResizeObserver !== 'undefined') {
    ro = new ResizeObserver(() => {
      const w = Math.max(220, el.clientWidth);
      if (Math.abs(w - u.width) > 2) u.setSize({ width: w, height: chartHeight(w, base) });
    });
    ro.observe(el);
  }
  return {
    setData(cols) { u.setData(cols); },
    destroy() { if (ro) ro.disconnect(); u.destroy(); },
  };
}
