// The dashboard's client-side model. A full GET /v1/dashboard object replaces the
// state ("snapshot"); each stream event ("delta") replaces the current values and
// appends the newest point of every history series, keeping each series inside
// the selected window. Everything the API sends is normalised first so a missing
// or null field never breaks rendering.

export const WINDOWS = {
  '1h': { ms: 3600 * 1000, resolution: 1000 },
  '24h': { ms: 24 * 3600 * 1000, resolution: 60 * 1000 },
};

export const MAX_EVENTS = 200;

function arr(v) { return Array.isArray(v) ? v : []; }
function obj(v) { return v !== null && typeof v === 'object' && !Array.isArray(v) ? v : {}; }
function num(v) { return typeof v === 'number' && Number.isFinite(v) ? v : null; }
function str(v) { return typeof v === 'string' ? v : null; }

/** Keep only well-formed history points: arrays whose first element is a finite time. */
export function cleanHistory(h, width) {
  const out = [];
  for (const p of arr(h)) {
    if (!Array.isArray(p) || num(p[0]) === null) continue;
    const pt = [p[0]];
    for (let i = 1; i < width; i++) pt.push(num(p[i]));
    out.push(pt);
  }
  out.sort((a, b) => a[0] - b[0]);
  return out;
}

/** Normalise one API object (snapshot or stream event) into the shape the UI reads. */
export function normalize(raw) {
  const r = obj(raw);
  const cluster = obj(r.cluster);
  const peers = obj(r.peers);
  const latency = obj(r.latency);
  const throughput = obj(r.throughput);
  const alerts = obj(r.alerts);
  const perTopic = {};
  for (const [k, v] of Object.entries(obj(latency.per_topic))) perTopic[k] = cleanHistory(v, 4);
  const sb = obj(r.served_by);
  return {
    now: num(r.now),
    state: str(r.state) ?? 'ok',
    // Which index node answered and whose figures these are (see
    // docs/DASHBOARD_API.md, "Which node answers"). null for an older index.
    served_by: r.served_by && typeof r.served_by === 'object' ? {
      node: num(sb.node),
      name: str(sb.name),
      role: str(sb.role),
      source: ['self', 'leader', 'local'].includes(sb.source) ? sb.source : 'self',
      evaluator: sb.evaluator === true,
      leader: num(sb.leader),
      leader_http: str(sb.leader_http),
      notice: str(sb.notice),
    } : null,
    waiting_for: str(r.waiting_for),
    cluster: {
      leader: num(cluster.leader),
      term: num(cluster.term),
      nodes: arr(cluster.nodes).filter((n) => n && typeof n === 'object'),
    },
    peers: {
      count: num(peers.count),
      history: cleanHistory(peers.history, 2),
      table: arr(peers.table).filter((p) => p && typeof p === 'object'),
    },
    events: arr(r.events).filter((e) => e && typeof e === 'object' && num(e.t) !== null),
    topics: arr(r.topics).filter((t) => t && typeof t === 'object'),
    latency: { history: cleanHistory(latency.history, 4), per_topic: perTopic },
    throughput: { history: cleanHistory(throughput.history, 4) },
    resources: arr(r.resources).filter((x) => x && typeof x === 'object'),
    alerts: {
      firing: arr(alerts.firing).filter((a) => a && typeof a === 'object'),
      resolved: arr(alerts.resolved).filter((a) => a && typeof a === 'object'),
    },
  };
}

/**
 * Append `incoming` points to `series` in place and return it. Points that fall in
 * the same `resolution` bucket as the newest stored point replace it (so a 24 h
 * window at 1 min resolution does not grow by one point per second); older points
 * are dropped. Then points older than `windowMs` before the newest, and anything
 * beyond `maxPoints`, are cut from the front.
 */
export function mergeHistory(series, incoming, { windowMs, resolution, maxPoints }) {
  for (const p of incoming) {
    const last = series[series.length - 1];
    if (!last) { series.push(p); continue; }
    const bNew = Math.floor(p[0] / resolution);
    const bLast = Math.floor(last[0] / resolution);
    if (bNew > bLast) series.push(p);
    else if (bNew === bLast && p[0] >= last[0]) series[series.length - 1] = p;
    // else: older than what we have; ignore
  }
  if (series.length === 0) return series;
  const cutoff = series[series.length - 1][0] - windowMs;
  let drop = 0;
  while (drop < series.length && series[drop][0] < cutoff) drop++;
  if (series.length - drop > maxPoints) drop = series.length - maxPoints;
  if (drop > 0) series.splice(0, drop);
  return series;
}

function eventKey(e) { return `${e.t}|${e.kind}|${e.id}`; }

/** Union of two event lists, newest first, without duplicates, at most MAX_EVENTS. */
export function mergeEvents(have, incoming) {
  const seen = new Set();
  const all = [];
  for (const e of [...incoming, ...have]) {
    const k = eventKey(e);
    if (seen.has(k)) continue;
    seen.add(k);
    all.push(e);
  }
  all.sort((a, b) => b.t - a.t);
  return all.slice(0, MAX_EVENTS);
}

/** A store for one window ("1h" or "24h"). */
export function createStore(windowName = '1h') {
  const win = WINDOWS[windowName] ?? WINDOWS['1h'];
  const limits = {
    windowMs: win.ms,
    resolution: win.resolution,
    maxPoints: Math.ceil(win.ms / win.resolution) + 60,
  };
  const store = {
    window: WINDOWS[windowName] ? windowName : '1h',
    limits,
    /** null until the first snapshot arrives */
    data: null,
    /** client clock (ms) when data last changed */
    updatedAt: null,
    updates: 0,

    applySnapshot(raw, clientNow = Date.now()) {
      const d = normalize(raw);
      d.events = mergeEvents([], d.events);
      const trim = (s) => mergeHistory([], s, limits);
      d.peers.history = trim(d.peers.history);
      d.latency.history = trim(d.latency.history);
      d.throughput.history = trim(d.throughput.history);
      for (const k of Object.keys(d.latency.per_topic)) d.latency.per_topic[k] = trim(d.latency.per_topic[k]);
      store.data = d;
      store.updatedAt = clientNow;
      store.updates++;
      return d;
    },

    applyDelta(raw, clientNow = Date.now()) {
      if (!store.data) return store.applySnapshot(raw, clientNow);
      const prev = store.data;
      const d = normalize(raw);
      const next = {
        ...d,
        peers: { ...d.peers, history: mergeHistory(prev.peers.history, d.peers.history, limits) },
        events: mergeEvents(prev.events, d.events),
        latency: {
          history: mergeHistory(prev.latency.history, d.latency.history, limits),
          per_topic: prev.latency.per_topic,
        },
        throughput: { history: mergeHistory(prev.throughput.history, d.throughput.history, limits) },
      };
      for (const [k, pts] of Object.entries(d.latency.per_topic)) {
        next.latency.per_topic[k] = mergeHistory(next.latency.per_topic[k] ?? [], pts, limits);
      }
      // A topic's history that has gone quiet ages out with the window.
      const newest = Math.max(
        d.now ?? 0,
        ...[next.latency.history, next.throughput.history, next.peers.history]
          .filter((s) => s.length > 0).map((s) => s[s.length - 1][0]),
      );
      for (const [k, s] of Object.entries(next.latency.per_topic)) {
        if (s.length === 0 || s[s.length - 1][0] < newest - limits.windowMs) delete next.latency.per_topic[k];
      }
      store.data = next;
      store.updatedAt = clientNow;
      store.updates++;
      return next;
    },
  };
  return store;
}
