// Peer joins and expiries, newest first.

import { h, panel, note, setChildren } from '../dom.js';
import { fmtAgo, fmtClock, shortId } from '../../lib/format.js';

const SHOWN = 50;

export function createEventsPanel() {
  const p = panel('events', 'Joins & expiries');
  const list = h('ol', { class: 'event-list', testid: 'events-list' });
  const notes = h('div', { class: 'notes' });
  p.body.append(notes, list);
  return {
    el: p.el,
    update(d) {
      const evs = d.events.slice(0, SHOWN);
      if (evs.length === 0) {
        setChildren(notes, note('events-waiting', 'waiting', 'No joins or expiries yet.',
          ' A line appears here each time a peer registers or its registration expires.'));
      } else notes.replaceChildren();
      setChildren(list, evs.map((e) => {
        const kind = e.kind === 'join' || e.kind === 'expire' ? e.kind : 'other';
        return h('li', { class: `event event-${kind}`, testid: 'event-item', data: { kind: e.kind ?? '' } },
          h('span', { class: 'event-kind' }, kind === 'join' ? 'joined' : kind === 'expire' ? 'expired' : String(e.kind ?? '?')),
          h('span', { class: 'event-who' }, e.name || shortId(e.id), ' ',
            h('span', { class: 'mono muted', title: e.id ?? '' }, e.name ? shortId(e.id) : '')),
          h('time', { class: 'event-time muted', title: fmtAgo(e.t, d.now) }, fmtClock(e.t)));
      }));
    },
  };
}
