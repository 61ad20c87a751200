import { describe, it, expect } from 'vitest';
import { createStore, mergeHistory, mergeEvents, normalize, MAX_EVENTS } from '../src/lib/store.js';
import { T0, snapshot, delta } from './helpers.js';

describe('normalize', () => {
  it('fills every field from an empty or junk object', () => {
    for (const raw of [{}, null, 'x', { cluster: 5, peers: [], latency: { per_topic: [] } }]) {
      const d = normalize(raw);
      expect(d.state).toBe('ok');
      expect(d.cluster).toEqual({ leader: null, term: null, nodes: [] });
      expect(d.peers).toEqual({ count: null, history: [], table: [] });
      expect(d.latency).toEqual({ history: [], per_topic: {} });
      expect(d.throughput.history).toEqual([]);
      expect(d.alerts).toEqual({ firing: [], resolved: [] });
      expect(d.events).toEqual([]);
    }
  });

  it('drops malformed history points and pads short ones with null', () => {
    const d = normalize({ latency: { history: [[T0 + 1000, 1, 2, 3], 'x', [null, 1], [T0, 1], [T0 + 2000, 'a', 2, 3]] } });
    expect(d.latency.history).toEqual([[T0, 1, null, null], [T0 + 1000, 1, 2, 3], [T0 + 2000, null, 2, 3]]);
  });
});

describe('mergeHistory', () => {
  const lim1h = { windowMs: 3600000, resolution: 1000, maxPoints: 3660 };

  it('appends newer points, replaces a point in the same second, ignores older ones', () => {
    const s = [[T0, 1], [T0 + 1000, 2]];
    mergeHistory(s, [[T0 + 2000, 3]], lim1h);
    mergeHistory(s, [[T0 + 2500, 4]], lim1h); // same 1 s bucket as T0+2000
    mergeHistory(s, [[T0 + 500, 99]], lim1h); // older: ignored
    expect(s).toEqual([[T0, 1], [T0 + 1000, 2], [T0 + 2500, 4]]);
  });

  it('keeps a 1 h window at 1 s resolution: exactly 3601 points after 4000 deltas', () => {
    const s = [];
    for (let i = 0; i < 4000; i++) mergeHistory(s, [[T0 + i * 1000, i]], lim1h);
    expect(s.length).toBe(3601);
    expect(s[0]).toEqual([T0 + 399 * 1000, 399]);
    expect(s[s.length - 1]).toEqual([T0 + 3999 * 1000, 3999]);
  });

  it('caps by point count too', () => {
    const s = [];
    for (let i = 0; i < 50; i++) mergeHistory(s, [[T0 + i * 1000, i]], { windowMs: 3600000, resolution: 1000, maxPoints: 10 });
    expect(s.length).toBe(10);
    expect(s[0][1]).toBe(40);
  });

  it('folds per-second stream points into 1 min buckets for the 24 h window', () => {
    const lim24 = { windowMs: 86400000, resolution: 60000, maxPoints: 1500 };
    const start = Math.ceil(T0 / 60000) * 60000;
    const s = [];
    for (let i = 0; i < 180; i++) mergeHistory(s, [[start + i * 1000, i]], lim24);
    expect(s).toEqual([[start + 59000, 59], [start + 119000, 119], [start + 179000, 179]]);
  });
});

describe('mergeEvents', () => {
  it('deduplicates, sorts newest first and caps', () => {
    const a = { t: 1, kind: 'join', id: 'x' };
    const b = { t: 2, kind: 'expire', id: 'x' };
    expect(mergeEvents([a], [b, a])).toEqual([b, a]);
    const many = Array.from({ length: 300 }, (_, i) => ({ t: i, kind: 'join', id: `p${i}` }));
    const m = mergeEvents([], many);
    expect(m.length).toBe(MAX_EVENTS);
    expect(m[0].t).toBe(299);
  });
});

describe('store', () => {
  it('replaces values and appends history from stream deltas', () => {
    const st = createStore('1h');
    st.applySnapshot(snapshot({ now: T0, n: 3 }), 1);
    expect(st.data.latency.history.length).toBe(3);

    const d1 = delta(T0 + 1000, { peers: 5, p99: 9.5 });
    d1.cluster.leader = 3;
    d1.events = [{ t: T0 + 1000, kind: 'join', id: 'new', name: 'eve' }];
    st.applyDelta(d1, 2);

    expect(st.data.cluster.leader).toBe(3);
    expect(st.data.peers.count).toBe(5);
    expect(st.data.peers.table.length).toBe(5);
    expect(st.data.peers.history.map((p) => p[1])).toEqual([4, 4, 4, 5]);
    expect(st.data.latency.history[st.data.latency.history.length - 1]).toEqual([T0 + 1000, 0.4, 1.2, 9.5]);
    expect(st.data.latency.per_topic.news.length).toBe(4);
    expect(st.data.throughput.history.length).toBe(4);
    expect(st.data.events.map((e) => e.name)).toEqual(['eve', 'bob']);
    expect(st.updatedAt).toBe(2);
    expect(st.updates).toBe(2);
  });

  it('a delta before any snapshot acts as a snapshot', () => {
    const st = createStore('1h');
    st.applyDelta(delta(T0));
    expect(st.data.latency.history).toEqual([[T0, 0.4, 1.2, 2.5]]);
  });

  it('keeps the history windows capped under a long stream', () => {
    const st = createStore('1h');
    st.applySnapshot(snapshot({ now: T0, n: 3600 }));
    for (let i = 1; i <= 120; i++) st.applyDelta(delta(T0 + i * 1000));
    for (const s of [st.data.peers.history, st.data.latency.history, st.data.throughput.history, st.data.latency.per_topic.news]) {
      expect(s.length).toBe(3601);
      expect(s[0][0]).toBe(T0 + 120000 - 3600000);
    }
  });

  it('ages out the latency history of a topic that went away', () => {
    const st = createStore('1h');
    st.applySnapshot(snapshot({ now: T0, n: 2 }));
    const later = delta(T0 + 3601 * 1000);
    later.latency.per_topic = { chat: [[T0 + 3601 * 1000, 1, 2, 3]] };
    st.applyDelta(later);
    expect(Object.keys(st.data.latency.per_topic)).toEqual(['chat']);
  });

  it('unknown window names fall back to 1h', () => {
    expect(createStore('7d').window).toBe('1h');
    expect(createStore('24h').limits.resolution).toBe(60000);
  });
});
