// Peers panel: live count over time, and a searchable, sortable table.

import { h, panel, note, setChildren, setText } from '../dom.js';
import { createChartView } from '../chart.js';
import { fmtAgo, fmtCount, fmtMs, fmtRate, shortId, NONE } from '../../lib/format.js';
import { filterPeers, sortPeers, PEER_COLUMNS } from '../../lib/peers.js';

/** Rows beyond this are not rendered (the filter narrows them down). */
export const PEER_ROW_LIMIT = 500;

const STALE_MS = 10000;

export function createPeersPanel({ chartFactory }) {
  const count = h('span', { class: 'head-value', testid: 'peers-count' }, NONE);
  const p = panel('peers', 'Peers', count);
  const chart = createChartView({
    testid: 'peers-chart',
    factory: chartFactory,
    height: 150,
    integer: true,
    waitingText: 'Collecting samples: the live peer count is plotted once per second.',
    yFmt: (v) => fmtCount(v),
    series: [{ label: 'peers', color: '#7bd389', fmt: (v) => fmtCount(v) }],
  });

  let query = '';
  let sortKey = 'name';
  let sortDir = 'asc';
  let last = null;

  const search = h('input', {
    type: 'search', class: 'search', testid: 'peers-search', placeholder: 'Filter by name, id or address',
    'aria-label': 'Filter peers', autocomplete: 'off', spellcheck: 'false',
    oninput: (e) => { query = e.target.value; if (last) render(last); },
  });
  const matches = h('span', { class: 'muted', testid: 'peers-match-count' });
  const toolbar = h('div', { class: 'toolbar' }, search, matches);

  const headCells = PEER_COLUMNS.map((c) => {
    const btn = h('button', { type: 'button', class: 'sort', testid: `peers-sort-${c.key}`,
      onclick: () => {
        if (sortKey === c.key) sortDir = sortDir === 'asc' ? 'desc' : 'asc';
        else { sortKey = c.key; sortDir = c.numeric ? 'desc' : 'asc'; }
        if (last) render(last);
      } }, c.label);
    return { col: c, th: h('th', { class: [c.numeric ? 'num' : '', c.optional ? 'opt' : ''].join(' ').trim() || null, scope: 'col' }, btn) };
  });
  const tbody = h('tbody');
  const table = h('table', { class: 'grid-table peers-table', testid: 'peers-table' },
    h('thead', null, h('tr', null, headCells.map((x) => x.th))), tbody);
  const wrap = h('div', { class: 'table-wrap' }, table);
  const notes = h('div', { class: 'notes' });
  p.body.append(chart.el, toolbar, notes, wrap);

  function row(peer, now) {
    const seenAgo = typeof peer.last_seen === 'number' && typeof now === 'number' ? now - peer.last_seen : null;
    return h('tr', { testid: 'peer-row', data: { peerId: peer.id ?? '' } },
      h('td', { class: 'name', testid: 'peer-name' }, peer.name || h('span', { class: 'muted' }, '(unnamed)')),
      h('td', { class: 'opt mono', title: peer.id ?? '' }, shortId(peer.id)),
      h('td', { class: 'opt mono' }, peer.addr ?? NONE),
      h('td', { class: `num${seenAgo !== null && seenAgo > STALE_MS ? ' warn' : ''}`, testid: 'peer-last-seen' }, fmtAgo(peer.last_seen, now)),
      h('td', { class: 'num' }, fmtRate(peer.msgs_in_per_s)),
      h('td', { class: 'num' }, fmtRate(peer.msgs_out_per_s)),
      h('td', { class: 'num opt' }, fmtMs(peer.latency_p50_ms)),
      h('td', { class: 'num' }, fmtMs(peer.latency_p99_ms)),
      h('td', { class: `num${peer.outbox > 0 ? ' warn' : ''}`, testid: 'peer-outbox' }, fmtCount(peer.outbox)));
  }

  function render(d) {
    const all = d.peers.table;
    const shown = sortPeers(filterPeers(all, query), sortKey, sortDir);
    for (const x of headCells) {
      x.th.setAttribute('aria-sort', x.col.key === sortKey ? (sortDir === 'asc' ? 'ascending' : 'descending') : 'none');
    }
    setText(matches, query.trim() ? `${shown.length} of ${all.length} peers` : `${all.length} peer${all.length === 1 ? '' : 's'}`);
    const rows = shown.slice(0, PEER_ROW_LIMIT);
    setChildren(tbody, rows.map((peer) => row(peer, d.now)));

    if (all.length === 0) {
      setChildren(notes, note('peers-waiting', 'waiting', 'No peer has registered yet.',
        ' Peers appear here within a second of registering with the index.'));
    } else if (shown.length === 0) {
      setChildren(notes, note('peers-no-match', 'empty', `No peer matches “${query.trim()}”.`));
    } else if (shown.length > rows.length) {
      setChildren(notes, note('peers-truncated', 'empty', `Showing ${rows.length} of ${shown.length} matching peers; type in the filter to narrow them down.`));
    } else {
      notes.replaceChildren();
    }
    wrap.hidden = rows.length === 0;
    toolbar.hidden = all.length === 0;
  }

  return {
    el: p.el,
    update(d, view) {
      last = d;
      setText(count, d.peers.count === null ? NONE : fmtCount(d.peers.count));
      chart.update(d.peers.history, view.resolution);
      render(d);
    },
  };
}
