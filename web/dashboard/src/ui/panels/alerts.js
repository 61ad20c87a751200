// Alerts: firing (most severe first) and recently resolved.

import { h, panel, note, setChildren, setText } from '../dom.js';
import { fmtClock, fmtDuration } from '../../lib/format.js';

const SEVERITY_ORDER = { critical: 0, warning: 1, info: 2 };

function sev(a) { return typeof a.severity === 'string' ? a.severity : 'info'; }

export function createAlertsPanel() {
  const count = h('span', { class: 'head-value', testid: 'alerts-firing-count' }, '0');
  const p = panel('alerts', 'Alerts', count);
  const firing = h('ul', { class: 'alert-list', testid: 'alerts-firing-list' });
  const firingNote = h('div', { class: 'notes' });
  const resolved = h('ul', { class: 'alert-list resolved', testid: 'alerts-resolved-list' });
  const resolvedNote = h('div', { class: 'notes' });
  p.body.append(h('h3', null, 'Firing'), firingNote, firing, h('h3', null, 'Resolved'), resolvedNote, resolved);
  return {
    el: p.el,
    update(d) {
      const f = d.alerts.firing.slice().sort((a, b) => (SEVERITY_ORDER[sev(a)] ?? 3) - (SEVERITY_ORDER[sev(b)] ?? 3)
        || (a.since ?? 0) - (b.since ?? 0));
      const r = d.alerts.resolved.slice().sort((a, b) => (b.until ?? 0) - (a.until ?? 0)).slice(0, 20);
      setText(count, String(f.length));
      count.classList.toggle('bad', f.length > 0);
      p.el.classList.toggle('has-firing', f.length > 0);
      if (f.length === 0) setChildren(firingNote, note('alerts-none', 'ok', 'No alerts firing.'));
      else firingNote.replaceChildren();
      setChildren(firing, f.map((a) => h('li', { class: `alert sev-${sev(a)}`, testid: 'alert-firing', data: { name: a.name ?? '', severity: sev(a) } },
        h('div', { class: 'alert-top' },
          h('span', { class: `badge sev sev-${sev(a)}` }, sev(a)),
          h('strong', { class: 'alert-name' }, String(a.name ?? 'alert')),
          h('span', { class: 'muted alert-since' }, typeof a.since === 'number'
            ? `since ${fmtClock(a.since)} (${fmtDuration((d.now ?? a.since) - a.since)})` : '')),
        a.summary ? h('div', { class: 'alert-summary' }, String(a.summary)) : null,
        typeof a.value === 'number' ? h('div', { class: 'muted small' }, `value ${a.value}`,
          typeof a.threshold === 'number' ? ` · threshold ${a.threshold}` : '') : null)));
      if (r.length === 0) setChildren(resolvedNote, note('alerts-resolved-none', 'empty', 'Nothing resolved in this window.'));
      else resolvedNote.replaceChildren();
      setChildren(resolved, r.map((a) => h('li', { class: 'alert', testid: 'alert-resolved', data: { name: a.name ?? '', severity: sev(a) } },
        h('div', { class: 'alert-top' },
          h('span', { class: `badge sev sev-${sev(a)}` }, sev(a)),
          h('strong', { class: 'alert-name' }, String(a.name ?? 'alert')),
          h('span', { class: 'muted alert-since' },
            `${fmtClock(a.since)} → ${fmtClock(a.until)}`,
            typeof a.since === 'number' && typeof a.until === 'number' ? ` (${fmtDuration(a.until - a.since)})` : '')),
        a.summary ? h('div', { class: 'alert-summary muted' }, String(a.summary)) : null)));
    },
  };
}
