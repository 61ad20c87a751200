// The strip of key numbers at the top (the first thing seen on a phone).

import { h, setText } from './dom.js';
import { fmtCount, fmtMs, fmtRate, NONE } from '../lib/format.js';

export function createSummary() {
  const tile = (label, testid) => {
    const v = h('span', { class: 'kpi-value', testid }, NONE);
    const el = h('div', { class: 'kpi' }, h('span', { class: 'kpi-label' }, label), v);
    return { el, v };
  };
  const leader = tile('Leader', 'kpi-leader');
  const peers = tile('Peers', 'kpi-peers');
  const msgs = tile('Messages in', 'kpi-msgs');
  const p99 = tile('Latency p99', 'kpi-p99');
  const alerts = tile('Alerts firing', 'kpi-alerts');
  const el = h('div', { class: 'kpis', testid: 'summary' }, leader.el, peers.el, msgs.el, p99.el, alerts.el);
  return {
    el,
    update(d) {
      setText(leader.v, d.cluster.leader === null ? 'none' : `node ${d.cluster.leader}`);
      leader.el.classList.toggle('bad', d.cluster.leader === null && d.cluster.nodes.length > 0);
      setText(peers.v, d.peers.count === null ? NONE : fmtCount(d.peers.count));
      const tp = d.throughput.history[d.throughput.history.length - 1];
      setText(msgs.v, tp ? fmtRate(tp[1]) : NONE);
      const lat = d.latency.history[d.latency.history.length - 1];
      setText(p99.v, lat ? fmtMs(lat[3]) : NONE);
      setText(alerts.v, String(d.alerts.firing.length));
      alerts.el.classList.toggle('bad', d.alerts.firing.length > 0);
    },
  };
}
