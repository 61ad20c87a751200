// Topics: subscribers, publishers and message rate. Clicking a row shows that
// topic's latency in the latency panel.

import { h, panel, note, setChildren } from '../dom.js';
import { fmtCount, fmtRate } from '../../lib/format.js';

export function createTopicsPanel({ onSelect }) {
  const p = panel('topics', 'Topics');
  const tbody = h('tbody');
  const table = h('table', { class: 'grid-table', testid: 'topics-table' },
    h('thead', null, h('tr', null, h('th', null, 'Topic'), h('th', { class: 'num' }, 'Subscribers'),
      h('th', { class: 'num' }, 'Publishers'), h('th', { class: 'num' }, 'Messages'))),
    tbody);
  const wrap = h('div', { class: 'table-wrap' }, table);
  const notes = h('div', { class: 'notes' });
  p.body.append(notes, wrap);
  return {
    el: p.el,
    update(d) {
      const topics = d.topics.slice().sort((a, b) => (b.msgs_per_s ?? 0) - (a.msgs_per_s ?? 0)
        || String(a.topic).localeCompare(String(b.topic)));
      if (topics.length === 0) {
        setChildren(notes, note('topics-waiting', 'waiting', 'No topics yet.',
          ' A topic is listed once a peer subscribes to it or publishes on it.'));
      } else notes.replaceChildren();
      wrap.hidden = topics.length === 0;
      setChildren(tbody, topics.map((t) => h('tr', {
        testid: 'topic-row', data: { topic: t.topic ?? '' }, class: 'clickable', tabindex: '0',
        title: 'Show this topic\u2019s latency',
        onclick: () => onSelect(String(t.topic)),
        onkeydown: (e) => { if (e.key === 'Enter') onSelect(String(t.topic)); },
      },
      h('td', { class: 'mono' }, String(t.topic ?? '?')),
      h('td', { class: 'num' }, fmtCount(t.subscribers)),
      h('td', { class: 'num' }, fmtCount(t.publishers)),
      h('td', { class: 'num' }, fmtRate(t.msgs_per_s)))));
    },
  };
}
