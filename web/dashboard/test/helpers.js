// Shared test data shaped like docs/DASHBOARD_API.md.

export const T0 = 1795514400000;

export function peer(i, extra = {}) {
  return {
    id: `${'p'.repeat(40)}${String(i).padStart(12, '0')}`,
    name: ['alice', 'bob', 'carol', 'dave'][i] ?? `peer${i}`,
    addr: `127.0.0.1:${40001 + i}`,
    last_seen: T0 - 500,
    msgs_in_per_s: 10 + i,
    msgs_out_per_s: 3.5,
    latency_p50_ms: 0.4,
    latency_p99_ms: 2.1,
    outbox: 0,
    ...extra,
  };
}

/** A healthy cluster: full snapshot with `n` seconds of history ending at `now`. */
export function snapshot({ now = T0, n = 3, peers = 4 } = {}) {
  const ts = Array.from({ length: n }, (_, i) => now - (n - 1 - i) * 1000);
  return {
    now,
    state: 'ok',
    waiting_for: null,
    cluster: {
      leader: 2,
      term: 7,
      nodes: [1, 2, 3].map((id) => ({ id, role: id === 2 ? 'leader' : 'follower', term: 7, commit_index: 120,
        listen: `127.0.0.1:740${id}`, http: `127.0.0.1:748${id}`, health: 'up' })),
    },
    peers: {
      count: peers,
      history: ts.map((t) => [t, peers]),
      table: Array.from({ length: peers }, (_, i) => peer(i)),
    },
    events: [{ t: now - 100000, kind: 'join', id: peer(1).id, name: 'bob' }],
    topics: [{ topic: 'news', subscribers: 3, publishers: 1, msgs_per_s: 40 }],
    latency: {
      history: ts.map((t) => [t, 0.4, 1.2, 2.5]),
      per_topic: { news: ts.map((t) => [t, 0.5, 1.1, 2.0]) },
    },
    throughput: { history: ts.map((t) => [t, 120, 118, 0]) },
    resources: [{ daemon: 'bob', kind: 'peer', cpu_percent: 1.5, rss_bytes: 9000000, open_fds: 21 }],
    alerts: {
      firing: [{ name: 'outbox_depth', severity: 'warning', since: now - 10000, value: 1200, threshold: 1000,
        summary: 'outbox depth 1200 > 1000 for 10s on bob' }],
      resolved: [{ name: 'no_leader', severity: 'critical', since: now - 400000, until: now - 390000, summary: 'no leader for 10s' }],
    },
  };
}

/** A stream event: the same object with only the newest history point. */
export function delta(now, { peers = 4, p99 = 2.5 } = {}) {
  const s = snapshot({ now, n: 1, peers });
  s.latency.history = [[now, 0.4, 1.2, p99]];
  s.events = [];
  return s;
}

/** A brand-new cluster: leader elected, nobody registered yet. */
export function waitingSnapshot(now = T0) {
  return {
    now,
    state: 'waiting',
    waiting_for: 'no peer has registered yet',
    cluster: { leader: null, term: 1, nodes: [] },
    peers: { count: 0, history: [], table: [] },
    events: [],
    topics: [],
    latency: { history: [], per_topic: {} },
    throughput: { history: [] },
    resources: [],
    alerts: { firing: [], resolved: [] },
  };
}

/** A chart factory that records what it was given instead of drawing. */
export function stubCharts() {
  const made = [];
  const factory = (el, spec) => {
    const c = { spec, data: null, setData(cols) { c.data = cols; }, destroy() {} };
    made.push(c);
    return c;
  };
  return { factory, made };
}

/** A fake JWT with the given claims (not signed: the dashboard never verifies). */
export function fakeJwt(claims) {
  const b = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${b({ alg: 'HS256', typ: 'JWT' })}.${b(claims)}.c2ln`;
}
