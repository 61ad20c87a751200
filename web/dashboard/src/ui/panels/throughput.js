// Cluster throughput (messages in/out per second) and error rate over time.

import { h, panel, setText } from '../dom.js';
import { createChartView } from '../chart.js';
import { compact, fmtPercent, fmtRate, NONE } from '../../lib/format.js';

export function createThroughputPanel({ chartFactory }) {
  const p = panel('throughput', 'Throughput & errors');
  const cur = (label, testid) => {
    const v = h('span', { class: 'stat-value', testid }, NONE);
    return { el: h('div', { class: 'stat' }, h('span', { class: 'stat-label' }, label), v), v };
  };
  const inR = cur('In', 'throughput-in');
  const outR = cur('Out', 'throughput-out');
  const errR = cur('Errors', 'throughput-errors');
  const ratio = cur('Error ratio', 'throughput-error-ratio');
  const chart = createChartView({
    testid: 'throughput-chart',
    factory: chartFactory,
    height: 190,
    waitingText: 'Collecting samples: message and error rates are plotted once per second.',
    yFmt: (v) => compact(v),
    rightFmt: (v) => compact(v),
    series: [
      { label: 'in/s', color: '#43aa8b', fmt: fmtRate },
      { label: 'out/s', color: '#90a8ff', fmt: fmtRate },
      { label: 'errors/s (right axis)', color: '#f94144', fmt: fmtRate, scale: 'right' },
    ],
  });
  p.body.append(h('div', { class: 'stats' }, inR.el, outR.el, errR.el, ratio.el), chart.el);
  return {
    el: p.el,
    update(d, view) {
      const hist = d.throughput.history;
      const pt = hist[hist.length - 1];
      setText(inR.v, pt ? fmtRate(pt[1]) : NONE);
      setText(outR.v, pt ? fmtRate(pt[2]) : NONE);
      setText(errR.v, pt ? fmtRate(pt[3]) : NONE);
      const total = pt ? (pt[1] ?? 0) + (pt[2] ?? 0) : 0;
      setText(ratio.v, pt && pt[3] !== null ? (total > 0 ? fmtPercent((100 * pt[3]) / total) : fmtPercent(0)) : NONE);
      errR.v.classList.toggle('bad', !!pt && pt[3] > 0);
      chart.update(hist, view.resolution);
    },
  };
}
