import { describe, it, expect, beforeEach } from 'vitest';
import { filterPeers, sortPeers } from '../src/lib/peers.js';
import { createPeersPanel } from '../src/ui/panels/peers.js';
import { normalize } from '../src/lib/store.js';
import { snapshot, peer, stubCharts } from './helpers.js';

const rows = [
  { id: 'AAAA1111', name: 'alice', addr: '127.0.0.1:40001', msgs_in_per_s: 5, outbox: 0 },
  { id: 'BBBB2222', name: 'Bob', addr: '10.0.0.2:40002', msgs_in_per_s: 50, outbox: 3 },
  { id: 'CCCC3333', name: 'carol', addr: '127.0.0.1:40003', msgs_in_per_s: null, outbox: 1 },
  { id: 'DDDD4444', addr: '127.0.0.1:40004', msgs_in_per_s: 7 },
];

describe('filterPeers', () => {
  it('matches name, id and address, case-insensitively', () => {
    expect(filterPeers(rows, 'bob').map((p) => p.id)).toEqual(['BBBB2222']);
    expect(filterPeers(rows, 'cccc').map((p) => p.id)).toEqual(['CCCC3333']);
    expect(filterPeers(rows, '10.0.0').map((p) => p.id)).toEqual(['BBBB2222']);
    expect(filterPeers(rows, ':4000').length).toBe(4);
  });

  it('needs every term to match', () => {
    expect(filterPeers(rows, '127.0.0.1 carol').map((p) => p.id)).toEqual(['CCCC3333']);
    expect(filterPeers(rows, 'alice carol')).toEqual([]);
  });

  it('an empty or blank query keeps everything (as a copy)', () => {
    const all = filterPeers(rows, '   ');
    expect(all).toEqual(rows);
    expect(all).not.toBe(rows);
    expect(filterPeers(rows, undefined).length).toBe(4);
  });

  it('copes with peers missing fields', () => {
    expect(filterPeers(rows, 'dddd').length).toBe(1);
    expect(filterPeers(rows, 'undefined')).toEqual([]);
  });
});

describe('sortPeers', () => {
  it('sorts numbers in both directions with missing values last', () => {
    expect(sortPeers(rows, 'msgs_in_per_s', 'desc').map((p) => p.id)).toEqual(['BBBB2222', 'DDDD4444', 'AAAA1111', 'CCCC3333']);
    expect(sortPeers(rows, 'msgs_in_per_s', 'asc').map((p) => p.id)).toEqual(['AAAA1111', 'DDDD4444', 'BBBB2222', 'CCCC3333']);
  });

  it('sorts names case-insensitively, unnamed last', () => {
    expect(sortPeers(rows, 'name', 'asc').map((p) => p.name ?? '-')).toEqual(['alice', 'Bob', 'carol', '-']);
  });
});

describe('peers panel', () => {
  let panel;
  const view = { window: '1h', resolution: 1000 };
  beforeEach(() => {
    document.body.replaceChildren();
    panel = createPeersPanel({ chartFactory: stubCharts().factory });
    document.body.append(panel.el);
  });

  const q = (id) => document.querySelector(`[data-testid="${id}"]`);
  const names = () => [...document.querySelectorAll('[data-testid="peer-row"] [data-testid="peer-name"]')].map((e) => e.textContent);

  it('filters the table as the user types, and keeps the filter across updates', () => {
    const d = normalize(snapshot({ peers: 4 }));
    panel.update(d, view);
    expect(names()).toEqual(['alice', 'bob', 'carol', 'dave']);
    expect(q('peers-count').textContent).toBe('4');

    const input = q('peers-search');
    input.value = 'CAR';
    input.dispatchEvent(new Event('input'));
    expect(names()).toEqual(['carol']);
    expect(q('peers-match-count').textContent).toBe('1 of 4 peers');

    panel.update(normalize(snapshot({ peers: 4 })), view); // next second
    expect(names()).toEqual(['carol']);

    input.value = 'nobody';
    input.dispatchEvent(new Event('input'));
    expect(names()).toEqual([]);
    expect(q('peers-no-match').textContent).toContain('No peer matches “nobody”');
  });

  it('sorts when a heading is clicked', () => {
    const s = snapshot({ peers: 3 });
    s.peers.table = [peer(0, { outbox: 5 }), peer(1, { outbox: 50 }), peer(2, { outbox: 0 })];
    panel.update(normalize(s), view);
    q('peers-sort-outbox').click();
    expect(names()).toEqual(['bob', 'alice', 'carol']);
    q('peers-sort-outbox').click();
    expect(names()).toEqual(['carol', 'alice', 'bob']);
    expect(q('peers-sort-outbox').parentElement.getAttribute('aria-sort')).toBe('ascending');
  });

  it('renders peer-supplied text as text, never as HTML', () => {
    const s = snapshot({ peers: 1 });
    s.peers.table = [peer(0, { name: '<img src=x onerror=alert(1)>' })];
    panel.update(normalize(s), view);
    expect(document.querySelector('img')).toBeNull();
    expect(names()).toEqual(['<img src=x onerror=alert(1)>']);
  });
});
