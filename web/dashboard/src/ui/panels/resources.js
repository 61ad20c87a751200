// Resource use per daemon: CPU, resident memory, open file descriptors.

import { h, panel, note, setChildren } from '../dom.js';
import { fmtBytes, fmtCount, fmtPercent } from '../../lib/format.js';

export function createResourcesPanel() {
  const p = panel('resources', 'Resources');
  const tbody = h('tbody');
  const table = h('table', { class: 'grid-table', testid: 'resources-table' },
    h('thead', null, h('tr', null, h('th', null, 'Daemon'), h('th', null, 'Kind'),
      h('th', { class: 'num' }, 'CPU'), h('th', { class: 'num' }, 'Memory (RSS)'), h('th', { class: 'num' }, 'Open FDs'))),
    tbody);
  const wrap = h('div', { class: 'table-wrap' }, table);
  const notes = h('div', { class: 'notes' });
  p.body.append(notes, wrap);
  return {
    el: p.el,
    update(d) {
      const rows = d.resources.slice().sort((a, b) => String(a.kind).localeCompare(String(b.kind))
        || String(a.daemon).localeCompare(String(b.daemon)));
      if (rows.length === 0) {
        setChildren(notes, note('resources-waiting', 'waiting', 'Waiting for daemons to report resource use.',
          ' Each index node and peer daemon reports CPU, memory and file descriptors with its heartbeat.'));
      } else notes.replaceChildren();
      wrap.hidden = rows.length === 0;
      setChildren(tbody, rows.map((r) => {
        const cpu = typeof r.cpu_percent === 'number' ? r.cpu_percent : null;
        const bar = h('span', { class: 'bar', 'aria-hidden': 'true' }, h('span', { class: 'bar-fill' }));
        if (cpu !== null) bar.firstChild.style.width = `${Math.max(0, Math.min(100, cpu))}%`;
        return h('tr', { testid: 'resource-row', data: { daemon: r.daemon ?? '', kind: r.kind ?? '' } },
          h('td', null, String(r.daemon ?? '?')),
          h('td', null, h('span', { class: 'badge' }, String(r.kind ?? '?'))),
          h('td', { class: 'num' }, bar, fmtPercent(cpu)),
          h('td', { class: 'num' }, fmtBytes(r.rss_bytes)),
          h('td', { class: 'num' }, fmtCount(r.open_fds)));
      }));
    },
  };
}
