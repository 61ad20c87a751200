// The dashboard controller: sign-in, the connection loop (snapshot, then the
// live stream, then reconnect with back-off), and rendering of the panels.
//
// Everything that touches the outside world (fetch, storage, timers, the clock,
// randomness, chart drawing, frame scheduling) comes in through `deps`, so the
// whole app runs under test with fakes.

import { createApi, isAuthError } from './lib/api.js';
import { createTokenStore, checkToken, readClaims } from './lib/auth.js';
import { backoffDelay } from './lib/backoff.js';
import { createStore, WINDOWS } from './lib/store.js';
import { fmtClock, fmtDuration } from './lib/format.js';
import { h, note, setChildren, setText } from './ui/dom.js';
import { createLogin } from './ui/login.js';
import { createSummary } from './ui/summary.js';
import { createClusterPanel } from './ui/panels/cluster.js';
import { createPeersPanel } from './ui/panels/peers.js';
import { createEventsPanel } from './ui/panels/events.js';
import { createTopicsPanel } from './ui/panels/topics.js';
import { createLatencyPanel } from './ui/panels/latency.js';
import { createThroughputPanel } from './ui/panels/throughput.js';
import { createResourcesPanel } from './ui/panels/resources.js';
import { createAlertsPanel } from './ui/panels/alerts.js';

/** No stream event for this long while live: the connection is treated as dead. */
export const STALE_MS = 5000;
/** Connecting (snapshot + first event) may take this long before we retry. */
export const CONNECT_TIMEOUT_MS = 15000;

export const MSG_401 = 'The index did not accept the token (401): it may have expired or been revoked. Paste a new viewer token.';
export const MSG_403 = 'This token is not allowed to view the dashboard (403). Use a token with role viewer or admin.';

/**
 * @param {HTMLElement} root
 * @param {object} deps  fetch, storage, chartFactory (required); now, random,
 *   setTimeout, clearTimeout, setInterval, clearInterval, schedule, location,
 *   history, apiBase, title (document) (optional)
 */
export function createApp(root, deps) {
  const d = {
    now: () => Date.now(),
    random: Math.random,
    setTimeout: (f, ms) => globalThis.setTimeout(f, ms),
    clearTimeout: (t) => globalThis.clearTimeout(t),
    setInterval: (f, ms) => globalThis.setInterval(f, ms),
    clearInterval: (t) => globalThis.clearInterval(t),
    schedule: (f) => (typeof requestAnimationFrame === 'function' ? requestAnimationFrame(f) : globalThis.setTimeout(f, 16)),
    apiBase: '',
    location: null,
    history: null,
    doc: typeof document !== 'undefined' ? document : null,
    ...deps,
  };
  const tokens = createTokenStore(d.storage);
  const api = createApi({ fetch: d.fetch, base: d.apiBase, getToken: () => tokens.get() });

  let windowName = '1h';
  let store = createStore(windowName);
  const conn = { state: 'idle', attempt: 0, retryAt: null, lastEventAt: null, activityAt: null, error: null };
  let run = 0; // generation: bumping it cancels the running connection loop
  let abortCtl = null;
  let wake = null; // resolves the current back-off sleep early ("Retry now")
  let retryBase = 1000;
  let ticker = null;
  let renderPending = false;
  let ui = null; // dashboard DOM, null while the login form is shown

  // ---- sign-in ---------------------------------------------------------------

  function takeTokenFromFragment() {
    const loc = d.location;
    if (!loc || typeof loc.hash !== 'string') return;
    const m = /^#(?:.*&)?token=([^&]+)/.exec(loc.hash);
    if (!m) return;
    tokens.set(decodeURIComponent(m[1]));
    // Drop the token from the address bar and from this history entry.
    if (d.history && typeof d.history.replaceState === 'function') {
      d.history.replaceState(null, '', `${loc.pathname ?? ''}${loc.search ?? ''}`);
    }
  }

  function showLogin(message) {
    stopConnection();
    ui = null;
    const login = createLogin({
      message,
      onSubmit(pasted) {
        const c = checkToken(pasted, d.now());
        if (!c.ok) return c.error;
        tokens.set(c.token);
        showDashboard();
        connect();
        return null;
      },
    });
    root.replaceChildren(login.el);
    if (d.doc) d.doc.title = 'Sign in · Parley dashboard';
    try { login.input.focus(); } catch { /* not focusable in some environments */ }
  }

  function signOut() {
    tokens.clear();
    showLogin(null);
  }

  // ---- dashboard DOM ---------------------------------------------------------

  function showDashboard() {
    const connDot = h('span', { class: 'conn-dot', 'aria-hidden': 'true' });
    const connText = h('span', { class: 'conn-text', testid: 'conn-text' }, 'Connecting…');
    const lastUpdate = h('span', { class: 'conn-age muted', testid: 'last-update' });
    const retry = h('button', { type: 'button', class: 'btn btn-small', testid: 'retry-button', onclick: () => retryNow() }, 'Retry now');
    retry.hidden = true;
    const connEl = h('div', { class: 'conn', testid: 'conn-status', role: 'status', 'aria-live': 'polite', data: { state: 'connecting' } },
      connDot, connText, lastUpdate, retry);
    const windowSelect = h('select', { class: 'select', testid: 'window-select', 'aria-label': 'History window',
      onchange: (e) => setWindow(e.target.value) },
    Object.keys(WINDOWS).map((w) => h('option', { value: w }, w === '1h' ? 'Last hour' : 'Last 24 h')));
    windowSelect.value = windowName;
    const claims = readClaims(tokens.get());
    const tokenInfo = h('span', { class: 'token-info muted', testid: 'token-info' },
      claims ? [typeof claims.role === 'string' ? claims.role : 'token',
        typeof claims.exp === 'number' ? ` · until ${fmtClock(claims.exp * 1000)}` : ''] : '');
    const logout = h('button', { type: 'button', class: 'btn btn-small', testid: 'logout-button', onclick: signOut }, 'Sign out');
    const servedBy = h('span', { class: 'served-by', testid: 'served-by' });
    servedBy.hidden = true;
    const topbar = h('header', { class: 'topbar' },
      h('div', { class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }), h('span', null, 'Parley'), h('span', { class: 'muted brand-sub' }, 'index dashboard')),
      connEl, servedBy,
      h('div', { class: 'topbar-tools' }, windowSelect, tokenInfo, logout));

    const banner = h('div', { class: 'banner', testid: 'waiting-banner', role: 'status' });
    banner.hidden = true;
    const sourceBanner = h('div', { class: 'banner banner-warn', testid: 'source-notice', role: 'status' });
    sourceBanner.hidden = true;
    const loading = h('div', { class: 'loading', testid: 'loading' });

    const summary = createSummary();
    const latency = createLatencyPanel({ chartFactory: d.chartFactory });
    const panels = {
      cluster: createClusterPanel(),
      alerts: createAlertsPanel(),
      peers: createPeersPanel({ chartFactory: d.chartFactory }),
      events: createEventsPanel(),
      latency,
      throughput: createThroughputPanel({ chartFactory: d.chartFactory }),
      topics: createTopicsPanel({ onSelect: (t) => { latency.selectTopic(t); latency.el.scrollIntoView?.({ behavior: 'smooth', block: 'nearest' }); } }),
      resources: createResourcesPanel(),
    };
    const grid = h('main', { class: 'grid', testid: 'dashboard' }, summary.el, ...Object.values(panels).map((p) => p.el));
    grid.hidden = true;
    const footer = h('footer', { class: 'footer muted small' }, 'Parley index · live view, one update per second');
    root.replaceChildren(h('div', { class: 'app', testid: 'app' }, topbar, sourceBanner, banner, loading, grid, footer));
    ui = { connEl, connText, lastUpdate, retry, windowSelect, servedBy, sourceBanner, banner, loading, grid, summary, panels };
    renderLoading();
  }

  function renderLoading() {
    if (!ui) return;
    const origin = d.location && d.location.host ? ` at ${d.location.host}` : '';
    if (conn.state === 'reconnecting' && conn.error) {
      setChildren(ui.loading, note('loading-retry', 'waiting', `Cannot reach the index${origin} yet: ${conn.error}.`,
        ` Retrying in ${fmtDuration(Math.max(0, (conn.retryAt ?? d.now()) - d.now()))}.`));
    } else {
      setChildren(ui.loading, note('loading-connecting', 'waiting', `Connecting to the index${origin}…`, ' Waiting for its first update.'));
    }
  }

  function render() {
    renderPending = false;
    if (!ui) return;
    const data = store.data;
    if (!data) { ui.grid.hidden = true; ui.loading.hidden = false; renderLoading(); return; }
    ui.loading.hidden = true;
    ui.grid.hidden = false;
    const waiting = data.state === 'waiting';
    ui.banner.hidden = !waiting;
    if (waiting) {
      setChildren(ui.banner, h('strong', null, 'Waiting: '),
        h('span', { testid: 'waiting-text' }, data.waiting_for || 'the cluster is still starting (no leader or no peer yet)'),
        h('span', { class: 'muted' }, ' — panels fill in as soon as there is something to show.'));
    }
    renderSource(data.served_by);
    const view = { window: store.window, resolution: store.limits.resolution };
    ui.summary.update(data);
    for (const p of Object.values(ui.panels)) p.update(data, view);
    if (d.doc) {
      const n = data.alerts.firing.length;
      d.doc.title = `${n > 0 ? `(${n}) ` : ''}Parley dashboard`;
    }
  }

  // Which node answered: "node 3 · follower · cluster view from leader node 2".
  // When a follower could not reach the leader it shows only its own view: a
  // banner says so and links to the leader's dashboard.
  function renderSource(sb) {
    ui.servedBy.hidden = !sb;
    ui.sourceBanner.hidden = !(sb && sb.source === 'local' && sb.notice);
    if (!sb) return;
    ui.servedBy.dataset.source = sb.source;
    const who = sb.role === 'standalone' ? 'single index node'
      : `node ${sb.node ?? '?'}${sb.role ? ` · ${sb.role}` : ''}`;
    const from = sb.source === 'leader' ? ` · cluster view from leader node ${sb.leader ?? '?'}`
      : sb.source === 'local' ? ' · this node\u2019s own view' : '';
    setText(ui.servedBy, `${who}${from}`);
    ui.servedBy.title = sb.source === 'leader'
      ? 'This node is a follower: the figures come from the leader, which the peers report to.'
      : sb.source === 'self' ? 'This node holds the cluster\u2019s figures.' : (sb.notice ?? '');
    if (ui.sourceBanner.hidden) return;
    const link = sb.leader_http && /^[0-9A-Za-z.:[\]-]+$/.test(sb.leader_http)
      ? h('a', { href: `http://${sb.leader_http}/dashboard/`, testid: 'leader-link', rel: 'noreferrer' },
        `Open the leader\u2019s dashboard (node ${sb.leader ?? '?'})`)
      : null;
    setChildren(ui.sourceBanner, h('strong', null, 'Partial view: '),
      h('span', { testid: 'source-notice-text' }, `${sb.notice}.`),
      link ? ' ' : null, link);
  }

  function scheduleRender() {
    if (renderPending) return;
    renderPending = true;
    d.schedule(render);
  }

  function renderConn() {
    if (!ui) return;
    ui.connEl.dataset.state = conn.state;
    const now = d.now();
    if (conn.state === 'live') setText(ui.connText, 'Live');
    else if (conn.state === 'reconnecting') {
      const s = Math.max(0, Math.ceil(((conn.retryAt ?? now) - now) / 1000));
      setText(ui.connText, s > 0 ? `Reconnecting in ${s} s` : 'Reconnecting…');
    } else setText(ui.connText, 'Connecting…');
    ui.connEl.title = conn.error ? `Last error: ${conn.error}` : '';
    setText(ui.lastUpdate, store.updatedAt ? `updated ${fmtDuration(now - store.updatedAt)} ago` : '');
    ui.retry.hidden = conn.state !== 'reconnecting';
    if (!store.data) renderLoading();
  }

  function setConn(state) {
    conn.state = state;
    renderConn();
  }

  // ---- connection loop -------------------------------------------------------

  function stopConnection() {
    run++;
    if (abortCtl) abortCtl.abort();
    abortCtl = null;
    if (wake) wake();
    if (ticker !== null) { d.clearInterval(ticker); ticker = null; }
  }

  function retryNow() {
    conn.attempt = 0;
    if (wake) wake();
  }

  function sleep(ms, myRun) {
    return new Promise((resolve) => {
      const t = d.setTimeout(() => { wake = null; resolve(); }, ms);
      wake = () => { d.clearTimeout(t); wake = null; resolve(); };
      if (myRun !== run) wake();
    });
  }

  function tick() {
    const now = d.now();
    const limit = conn.state === 'live' ? STALE_MS : CONNECT_TIMEOUT_MS;
    if (abortCtl && conn.activityAt !== null && now - conn.activityAt > limit) {
      conn.error = conn.state === 'live' ? `no update for ${Math.round(STALE_MS / 1000)} s` : 'the index did not answer in time';
      abortCtl.abort();
    }
    renderConn();
  }

  function describe(e) {
    if (e && typeof e.message === 'string' && e.message) return e.message;
    return String(e);
  }

  async function connect() {
    stopConnection();
    const my = ++run;
    ticker = d.setInterval(tick, 1000);
    conn.attempt = 0;
    while (my === run) {
      const ac = new AbortController();
      abortCtl = ac;
      conn.activityAt = d.now();
      setConn(store.data && conn.lastEventAt ? 'reconnecting' : 'connecting');
      try {
        const snap = await api.snapshot(store.window, ac.signal);
        if (my !== run) return;
        store.applySnapshot(snap, d.now());
        conn.activityAt = d.now();
        scheduleRender();
        await api.stream(store.window, ac.signal, (obj) => {
          if (my !== run) return;
          store.applyDelta(obj, d.now());
          conn.lastEventAt = conn.activityAt = d.now();
          conn.attempt = 0;
          conn.error = null;
          if (conn.state !== 'live') setConn('live');
          scheduleRender();
        }, (ms) => { retryBase = Math.max(250, Math.min(ms, 60000)); });
        if (my !== run) return;
        conn.error = 'the index closed the stream';
      } catch (e) {
        if (my !== run) return;
        if (isAuthError(e)) {
          tokens.clear();
          showLogin(e.status === 401 ? MSG_401 : MSG_403);
          return;
        }
        if (!ac.signal.aborted || !conn.error) conn.error = describe(e);
      }
      if (abortCtl === ac) abortCtl = null;
      const delay = backoffDelay(conn.attempt++, { base: retryBase, random: d.random });
      conn.retryAt = d.now() + delay;
      setConn('reconnecting');
      await sleep(delay, my);
    }
  }

  function setWindow(w) {
    if (!WINDOWS[w] || w === windowName) return;
    windowName = w;
    store = createStore(w);
    conn.lastEventAt = null;
    render();
    connect();
  }

  return {
    start() {
      takeTokenFromFragment();
      if (!tokens.get()) { showLogin(null); return; }
      showDashboard();
      connect();
    },
    stop() { stopConnection(); },
    /** For tests and debugging. */
    get state() { return { conn: { ...conn }, store, window: windowName, signedIn: ui !== null }; },
    render,
    tick,
  };
}
