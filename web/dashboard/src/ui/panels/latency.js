// Delivery latency p50/p90/p99 over time, cluster-wide or for one topic.

import { h, panel, setText } from '../dom.js';
import { createChartView } from '../chart.js';
import { fmtMs, fmtMsTick, NONE } from '../../lib/format.js';

export const ALL_TOPICS = '';

export function createLatencyPanel({ chartFactory }) {
  let topic = ALL_TOPICS;
  let last = null;
  let lastView = null;
  const select = h('select', { class: 'select', testid: 'latency-topic-select', 'aria-label': 'Latency of',
    onchange: (e) => { topic = e.target.value; if (last) render(last, lastView); } });
  const p = panel('latency', 'Message latency', select);
  const cur = (label, testid) => {
    const v = h('span', { class: 'stat-value', testid }, NONE);
    return { el: h('div', { class: 'stat' }, h('span', { class: 'stat-label' }, label), v), v };
  };
  const p50 = cur('p50', 'latency-p50');
  const p90 = cur('p90', 'latency-p90');
  const p99 = cur('p99', 'latency-p99');
  const scope = h('p', { class: 'muted small', testid: 'latency-scope' });
  const chart = createChartView({
    testid: 'latency-chart',
    factory: chartFactory,
    height: 190,
    waitingText: 'Collecting latency samples: a point is added every second once messages are delivered.',
    yFmt: fmtMsTick,
    series: [
      { label: 'p50', color: '#4cc9f0', fmt: fmtMs },
      { label: 'p90', color: '#f9c74f', fmt: fmtMs },
      { label: 'p99', color: '#f3722c', fmt: fmtMs },
    ],
  });
  p.body.append(h('div', { class: 'stats' }, p50.el, p90.el, p99.el), scope, chart.el);

  function syncOptions(d) {
    const names = new Set(Object.keys(d.latency.per_topic));
    for (const t of d.topics) if (typeof t.topic === 'string') names.add(t.topic);
    if (topic !== ALL_TOPICS) names.add(topic);
    const want = [ALL_TOPICS, ...[...names].sort()];
    const have = [...select.options].map((o) => o.value);
    if (JSON.stringify(want) !== JSON.stringify(have)) {
      select.replaceChildren(...want.map((v) => h('option', { value: v }, v === ALL_TOPICS ? 'All topics' : `Topic: ${v}`)));
    }
    select.value = topic;
  }

  function render(d, view) {
    syncOptions(d);
    const hist = topic === ALL_TOPICS ? d.latency.history : (d.latency.per_topic[topic] ?? []);
    const lastPt = hist[hist.length - 1];
    setText(p50.v, lastPt ? fmtMs(lastPt[1]) : NONE);
    setText(p90.v, lastPt ? fmtMs(lastPt[2]) : NONE);
    setText(p99.v, lastPt ? fmtMs(lastPt[3]) : NONE);
    setText(scope, topic === ALL_TOPICS ? 'Cluster-wide delivery latency (publish to delivery).'
      : `Delivery latency on topic “${topic}”.`);
    chart.update(hist, view.resolution);
  }

  return {
    el: p.el,
    update(d, view) { last = d; lastView = view; render(d, view); },
    /** Select a topic (from the topics table). */
    selectTopic(t) { topic = t; if (last) render(last, lastView); },
    get topic() { return topic; },
  };
}
