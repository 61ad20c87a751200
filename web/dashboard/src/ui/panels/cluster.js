// Cluster panel: the index nodes (Raft group) with role, term, commit index,
// leader and health.

import { h, panel, note, setChildren, setText } from '../dom.js';
import { fmtCount, NONE } from '../../lib/format.js';

function stat(label, testid) {
  const value = h('span', { class: 'stat-value', testid }, NONE);
  return { el: h('div', { class: 'stat' }, h('span', { class: 'stat-label' }, label), value), value };
}

export function createClusterPanel() {
  const p = panel('cluster', 'Cluster');
  const leader = stat('Leader', 'cluster-leader');
  const term = stat('Term', 'cluster-term');
  const up = stat('Nodes up', 'cluster-up');
  const stats = h('div', { class: 'stats' }, leader.el, term.el, up.el);
  const notes = h('div', { class: 'notes' });
  const tbody = h('tbody');
  const table = h('table', { class: 'grid-table', testid: 'cluster-nodes-table' },
    h('thead', null, h('tr', null,
      h('th', null, 'Node'), h('th', null, 'Role'), h('th', { class: 'num opt' }, 'Term'),
      h('th', { class: 'num' }, 'Commit index'), h('th', { class: 'opt' }, 'Raft'),
      h('th', { class: 'opt' }, 'HTTP'), h('th', null, 'Health'))),
    tbody);
  const wrap = h('div', { class: 'table-wrap' }, table);
  p.body.append(stats, notes, wrap);

  return {
    el: p.el,
    update(d) {
      const c = d.cluster;
      const nodes = c.nodes.slice().sort((a, b) => (a.id ?? 0) - (b.id ?? 0));
      const nUp = nodes.filter((n) => n.health === 'up').length;
      setText(leader.value, c.leader === null ? 'none' : `node ${c.leader}`);
      leader.value.classList.toggle('bad', c.leader === null && nodes.length > 0);
      setText(term.value, c.term === null ? NONE : fmtCount(c.term));
      setText(up.value, nodes.length ? `${nUp} / ${nodes.length}` : NONE);
      up.value.classList.toggle('bad', nodes.length > 0 && nUp < nodes.length);

      if (nodes.length === 0) {
        setChildren(notes, note('cluster-waiting', 'waiting', 'Waiting for the index nodes to report.',
          d.waiting_for ? ` Index: ${d.waiting_for}.` : ' They appear here as soon as the index has cluster state to share.'));
      } else if (c.leader === null) {
        setChildren(notes, note('cluster-no-leader', 'waiting',
          `No leader yet — an election is in progress${c.term !== null ? ` (term ${c.term})` : ''}.`,
          ' Writes (registrations, subscriptions) wait until one is elected.'));
      } else {
        notes.replaceChildren();
      }
      wrap.hidden = nodes.length === 0;

      setChildren(tbody, nodes.map((n) => {
        const isLeader = c.leader !== null && n.id === c.leader;
        const role = typeof n.role === 'string' ? n.role : 'unknown';
        const health = ['up', 'down', 'unknown'].includes(n.health) ? n.health : 'unknown';
        return h('tr', { testid: 'cluster-node-row', data: { nodeId: n.id ?? '' }, class: isLeader ? 'is-leader' : null },
          h('td', null, `#${n.id ?? '?'}`, isLeader ? h('span', { class: 'badge badge-leader', title: 'leader' }, 'leader') : null),
          h('td', null, h('span', { class: `role role-${role}`, testid: 'node-role' }, role)),
          h('td', { class: 'num opt', testid: 'node-term' }, fmtCount(n.term)),
          h('td', { class: 'num', testid: 'node-commit' }, fmtCount(n.commit_index)),
          h('td', { class: 'opt mono' }, n.listen ?? NONE),
          h('td', { class: 'opt mono' }, n.http ?? NONE),
          h('td', null, h('span', { class: `health health-${health}`, testid: 'node-health', data: { health } }, health)));
      }));
    },
  };
}
