import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { createApp, MSG_401, STALE_MS } from '../src/app.js';
import { TOKEN_KEY } from '../src/lib/auth.js';
import { T0, snapshot, delta, waitingSnapshot, stubCharts, fakeJwt } from './helpers.js';

const TOKEN = fakeJwt({ role: 'viewer', exp: Math.floor(T0 / 1000) + 3600 });

/** Let pending promises and stream reads run. */
async function flush(rounds = 30) {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setTimeout(r, 0));
}

/** A controllable text/event-stream response body. */
function sseBody(signal) {
  let ctl;
  const body = new ReadableStream({ start(c) { ctl = c; } });
  const enc = new TextEncoder();
  const s = {
    open: true,
    push(text) { if (s.open) ctl.enqueue(enc.encode(text)); },
    send(obj) { s.push(`data: ${JSON.stringify(obj)}\n\n`); },
    close() { if (s.open) { s.open = false; ctl.close(); } },
  };
  signal?.addEventListener('abort', () => {
    if (s.open) { s.open = false; ctl.error(new DOMException('aborted', 'AbortError')); }
  });
  return { body, s };
}

/**
 * A fake index. Each route has a queue of responders; when it is empty the
 * default one answers. Records every request.
 */
function fakeIndex() {
  const calls = [];
  const streams = [];
  const queues = { '/v1/dashboard': [], '/v1/dashboard/stream': [] };
  const defaults = {
    '/v1/dashboard': () => new Response(JSON.stringify(snapshot()), { status: 200 }),
    '/v1/dashboard/stream': (opts) => {
      const { body, s } = sseBody(opts.signal);
      streams.push(s);
      return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
    },
  };
  const fetch = async (url, opts = {}) => {
    const u = new URL(url, 'http://index.test');
    calls.push({ path: u.pathname, search: u.search, auth: opts.headers?.Authorization ?? null });
    const q = queues[u.pathname];
    if (!q) return new Response('nope', { status: 404 });
    const responder = q.length ? q.shift() : defaults[u.pathname];
    return responder(opts);
  };
  return { fetch, calls, streams, queues, get lastStream() { return streams[streams.length - 1]; } };
}

function fakeTimers() {
  let next = 1;
  const pending = new Map();
  return {
    pending,
    setTimeout(f, ms) { const id = next++; pending.set(id, { f, ms }); return id; },
    clearTimeout(id) { pending.delete(id); },
    setInterval() { return next++; },
    clearInterval() {},
    /** run the oldest pending timeout; returns its delay */
    runNext() {
      const [id, t] = pending.entries().next().value;
      pending.delete(id);
      t.f();
      return t.ms;
    },
  };
}

const q = (id) => document.querySelector(`[data-testid="${id}"]`);
const qa = (id) => [...document.querySelectorAll(`[data-testid="${id}"]`)];

describe('app', () => {
  let root;
  let index;
  let timers;
  let clock;
  let app;

  function start({ token = TOKEN, location = null, history = null } = {}) {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    app = createApp(root, {
      fetch: index.fetch,
      storage: sessionStorage,
      chartFactory: stubCharts().factory,
      now: () => clock,
      random: () => 0,
      schedule: (f) => f(),
      ...timers,
      location,
      history,
    });
    app.start();
    return app;
  }

  beforeEach(() => {
    sessionStorage.clear();
    document.body.replaceChildren();
    root = document.createElement('div');
    document.body.append(root);
    index = fakeIndex();
    timers = fakeTimers();
    clock = T0;
  });
  afterEach(() => { app?.stop(); });

  it('asks for a token when there is none, without calling the API', async () => {
    start({ token: null });
    await flush();
    expect(q('login-form')).not.toBeNull();
    expect(index.calls).toEqual([]);
  });

  it('refuses a pasted value that is not a token', async () => {
    start({ token: null });
    q('login-token-input').value = 'hello world';
    q('login-form').dispatchEvent(new Event('submit', { cancelable: true }));
    expect(q('login-error').hidden).toBe(false);
    expect(q('login-error').textContent).toMatch(/does not look like a token/);
    expect(sessionStorage.getItem(TOKEN_KEY)).toBeNull();
    expect(index.calls).toEqual([]);
  });

  it('signs in with a pasted token, keeps it in sessionStorage and sends it as a bearer token', async () => {
    start({ token: null });
    q('login-token-input').value = `  Bearer ${TOKEN}\n`;
    q('login-form').dispatchEvent(new Event('submit', { cancelable: true }));
    await flush();
    expect(sessionStorage.getItem(TOKEN_KEY)).toBe(TOKEN);
    expect(index.calls.map((c) => [c.path, c.search, c.auth])).toEqual([
      ['/v1/dashboard', '?window=1h', `Bearer ${TOKEN}`],
      ['/v1/dashboard/stream', '?window=1h', `Bearer ${TOKEN}`],
    ]);
    expect(q('login-form')).toBeNull();
    expect(q('panel-cluster')).not.toBeNull();
    expect(q('cluster-leader').textContent).toBe('node 2');
  });

  it('goes live on stream events and appends them', async () => {
    start();
    await flush();
    expect(q('conn-status').dataset.state).toBe('connecting');
    expect(q('dashboard').hidden).toBe(false);
    clock = T0 + 1000;
    index.lastStream.send(delta(T0 + 1000, { peers: 5, p99: 7.5 }));
    await flush();
    expect(q('conn-status').dataset.state).toBe('live');
    expect(q('conn-text').textContent).toBe('Live');
    expect(q('peers-count').textContent).toBe('5');
    expect(q('latency-p99').textContent).toBe('7.50 ms');
    expect(q('kpi-p99').textContent).toBe('7.50 ms');
    expect(q('latency-chart').dataset.points).toBe('4');
    expect(qa('peer-row').length).toBe(5);
    expect(app.state.store.data.peers.history.length).toBe(4);
  });

  it('shows the login form again when the snapshot gets 401', async () => {
    index.queues['/v1/dashboard'].push(() => new Response('{"error":"unauthorized"}', { status: 401 }));
    start();
    await flush();
    expect(q('login-form')).not.toBeNull();
    expect(q('login-error').textContent).toBe(MSG_401);
    expect(sessionStorage.getItem(TOKEN_KEY)).toBeNull();
  });

  it('shows the login form again when the stream gets 401 (token expired mid-session)', async () => {
    start();
    await flush();
    index.lastStream.send(delta(T0 + 1000));
    await flush();
    expect(q('conn-status').dataset.state).toBe('live');
    // The index restarts; the reconnect finds the token expired.
    index.queues['/v1/dashboard'].push(() => new Response(JSON.stringify(snapshot()), { status: 200 }));
    index.queues['/v1/dashboard/stream'].push(() => new Response('', { status: 401 }));
    index.lastStream.close();
    await flush();
    expect(q('conn-status').dataset.state).toBe('reconnecting');
    timers.runNext();
    await flush();
    expect(q('login-form')).not.toBeNull();
    expect(q('login-error').textContent).toBe(MSG_401);
  });

  it('reconnects with growing back-off after network errors, then recovers', async () => {
    const fail = () => Promise.reject(new TypeError('Failed to fetch'));
    index.queues['/v1/dashboard'].push(fail, fail, fail);
    start();
    await flush();
    expect(q('conn-status').dataset.state).toBe('reconnecting');
    expect(q('loading-retry').textContent).toMatch(/Cannot reach the index yet: Failed to fetch/);
    expect(q('retry-button').hidden).toBe(false);
    // random() = 0 → delays are half the exponential step: 500, 1000, 2000 ms
    expect(timers.runNext()).toBe(500);
    await flush();
    expect(timers.runNext()).toBe(1000);
    await flush();
    expect(timers.runNext()).toBe(2000);
    await flush();
    index.lastStream.send(delta(T0 + 1000));
    await flush();
    expect(q('conn-status').dataset.state).toBe('live');
    expect(q('retry-button').hidden).toBe(true);
    expect(index.calls.filter((c) => c.path === '/v1/dashboard').length).toBe(4);
  });

  it('treats a silent stream as dead and reconnects', async () => {
    start();
    await flush();
    index.lastStream.send(delta(T0));
    await flush();
    expect(q('conn-status').dataset.state).toBe('live');
    clock = T0 + STALE_MS + 1;
    app.tick();
    await flush();
    expect(q('conn-status').dataset.state).toBe('reconnecting');
    expect(q('conn-status').title).toBe(`Last error: no update for ${STALE_MS / 1000} s`);
    // data stays on screen while reconnecting
    expect(q('dashboard').hidden).toBe(false);
    timers.runNext();
    await flush();
    expect(index.streams.length).toBe(2);
  });

  it('switching to 24 h asks for that window', async () => {
    start();
    await flush();
    const sel = q('window-select');
    sel.value = '24h';
    sel.dispatchEvent(new Event('change'));
    await flush();
    expect(index.calls.slice(-2).map((c) => c.search)).toEqual(['?window=24h', '?window=24h']);
  });

  it('takes a token from the URL fragment and removes it from the address bar', async () => {
    const replaced = [];
    start({
      token: null,
      location: { hash: `#token=${TOKEN}`, pathname: '/dashboard/', search: '', host: 'index.test' },
      history: { replaceState: (...a) => replaced.push(a[2]) },
    });
    await flush();
    expect(replaced).toEqual(['/dashboard/']);
    expect(index.calls[0].auth).toBe(`Bearer ${TOKEN}`);
  });

  it('sign out forgets the token', async () => {
    start();
    await flush();
    q('logout-button').click();
    expect(sessionStorage.getItem(TOKEN_KEY)).toBeNull();
    expect(q('login-form')).not.toBeNull();
  });
});

describe('waiting states', () => {
  let app;
  afterEach(() => app?.stop());

  function mount(snap) {
    sessionStorage.setItem(TOKEN_KEY, TOKEN);
    document.body.replaceChildren();
    const root = document.createElement('div');
    document.body.append(root);
    const index = fakeIndex();
    if (snap) index.queues['/v1/dashboard'].push(() => new Response(JSON.stringify(snap), { status: 200 }));
    else index.queues['/v1/dashboard'].push(() => new Promise(() => {})); // never answers
    app = createApp(root, {
      fetch: index.fetch, storage: sessionStorage, chartFactory: stubCharts().factory,
      now: () => T0, schedule: (f) => f(), ...fakeTimers(),
      location: { hash: '', pathname: '/dashboard/', search: '', host: 'index.test:7481' },
    });
    app.start();
  }

  it('says it is connecting before the first answer', async () => {
    mount(null);
    await flush();
    expect(q('loading-connecting').textContent).toBe('Connecting to the index at index.test:7481… Waiting for its first update.');
    expect(q('dashboard').hidden).toBe(true);
  });

  it('a new cluster says what it is waiting for in every panel', async () => {
    mount(waitingSnapshot());
    await flush();
    expect(q('waiting-banner').hidden).toBe(false);
    expect(q('waiting-text').textContent).toBe('no peer has registered yet');
    expect(q('cluster-waiting').textContent).toMatch(/Waiting for the index nodes to report\. Index: no peer has registered yet\./);
    expect(q('peers-waiting').textContent).toMatch(/No peer has registered yet/);
    expect(q('events-waiting').textContent).toMatch(/No joins or expiries yet/);
    expect(q('topics-waiting').textContent).toMatch(/No topics yet/);
    expect(q('resources-waiting').textContent).toMatch(/Waiting for daemons/);
    expect(q('alerts-none').textContent).toBe('No alerts firing.');
    for (const c of ['peers-chart', 'latency-chart', 'throughput-chart']) {
      expect(q(`${c}-waiting`).hidden, c).toBe(false);
      expect(q(`${c}-waiting`).textContent, c).toMatch(/Collecting/);
    }
    // Empty tables are hidden, not shown as bare headers.
    expect(q('peers-table').closest('.table-wrap').hidden).toBe(true);
    expect(q('topics-table').closest('.table-wrap').hidden).toBe(true);
    // Nothing reads like a failure.
    const bad = /\berror\b(?! ratio| rate)|failed|undefined|NaN|null/i.exec(document.body.textContent);
    expect(bad && document.body.textContent.slice(bad.index - 40, bad.index + 40)).toBeNull();
  });

  it('a cluster without a leader says an election is in progress', async () => {
    const s = snapshot();
    s.state = 'waiting';
    s.waiting_for = 'no leader elected yet';
    s.cluster.leader = null;
    mount(s);
    await flush();
    expect(q('cluster-no-leader').textContent).toMatch(/No leader yet — an election is in progress \(term 7\)/);
    expect(q('kpi-leader').textContent).toBe('none');
    expect(q('waiting-text').textContent).toBe('no leader elected yet');
  });

  it('hides the banner when the cluster is ok', async () => {
    mount(snapshot());
    await flush();
    expect(q('waiting-banner').hidden).toBe(true);
    expect(qa('cluster-node-row').length).toBe(3);
    expect(qa('alert-firing').map((e) => e.dataset.name)).toEqual(['outbox_depth']);
    expect(qa('alert-resolved').map((e) => e.dataset.name)).toEqual(['no_leader']);
  });
});

describe('which node answered', () => {
  let app;
  afterEach(() => app?.stop());

  function mount(snap) {
    sessionStorage.setItem(TOKEN_KEY, TOKEN);
    document.body.replaceChildren();
    const root = document.createElement('div');
    document.body.append(root);
    const index = fakeIndex();
    index.queues['/v1/dashboard'].push(() => new Response(JSON.stringify(snap), { status: 200 }));
    app = createApp(root, {
      fetch: index.fetch, storage: sessionStorage, chartFactory: stubCharts().factory,
      now: () => T0, schedule: (f) => f(), ...fakeTimers(),
      location: { hash: '', pathname: '/dashboard/', search: '', host: 'index.test:7483' },
    });
    app.start();
  }

  const sb = (extra) => ({ node: 3, name: 'idx3', role: 'follower', source: 'leader', evaluator: false,
    leader: 2, leader_http: '127.0.0.1:7482', notice: null, ...extra });

  it('a follower says the figures are the leader\u2019s', async () => {
    const s = snapshot();
    s.served_by = sb();
    mount(s);
    await flush();
    expect(q('served-by').hidden).toBe(false);
    expect(q('served-by').dataset.source).toBe('leader');
    expect(q('served-by').textContent).toBe('node 3 · follower · cluster view from leader node 2');
    expect(q('source-notice').hidden).toBe(true);
  });

  it('the leader and a single node say who they are', async () => {
    const s = snapshot();
    s.served_by = sb({ node: 2, role: 'leader', source: 'self', evaluator: true });
    mount(s);
    await flush();
    expect(q('served-by').textContent).toBe('node 2 · leader');
    const one = snapshot();
    one.served_by = sb({ node: 1, role: 'standalone', source: 'self', leader: 1 });
    mount(one);
    await flush();
    expect(q('served-by').textContent).toBe('single index node');
  });

  it('a follower that cannot reach the leader says so and links to it', async () => {
    const s = snapshot();
    s.served_by = sb({ source: 'local', notice: 'the leader (node 2, http 127.0.0.1:7482) did not answer (timed out)' });
    mount(s);
    await flush();
    expect(q('served-by').dataset.source).toBe('local');
    expect(q('served-by').textContent).toBe('node 3 · follower · this node\u2019s own view');
    expect(q('source-notice').hidden).toBe(false);
    expect(q('source-notice-text').textContent).toBe('the leader (node 2, http 127.0.0.1:7482) did not answer (timed out).');
    expect(q('leader-link').getAttribute('href')).toBe('http://127.0.0.1:7482/dashboard/');
  });

  it('an index without served_by shows nothing about it', async () => {
    mount(snapshot());
    await flush();
    expect(q('served-by').hidden).toBe(true);
    expect(q('source-notice').hidden).toBe(true);
  });
});

describe('latency topic selector', () => {
  it('always offers "All topics", then every known topic, and follows a click in the topics table', async () => {
    sessionStorage.setItem(TOKEN_KEY, TOKEN);
    document.body.replaceChildren();
    const root = document.createElement('div');
    document.body.append(root);
    const index = fakeIndex();
    index.queues['/v1/dashboard'].push(() => new Response(JSON.stringify(waitingSnapshot()), { status: 200 }));
    const app = createApp(root, { fetch: index.fetch, storage: sessionStorage, chartFactory: stubCharts().factory,
      now: () => T0, schedule: (f) => f(), ...fakeTimers() });
    app.start();
    await flush();
    const sel = q('latency-topic-select');
    expect([...sel.options].map((o) => o.textContent)).toEqual(['All topics']);
    index.lastStream.send(delta(T0 + 1000));
    await flush();
    expect([...sel.options].map((o) => o.textContent)).toEqual(['All topics', 'Topic: news']);
    q('topic-row').click();
    expect(sel.value).toBe('news');
    expect(q('latency-scope').textContent).toBe('Delivery latency on topic “news”.');
    expect(q('latency-p99').textContent).toBe('2.00 ms');
    app.stop();
  });
});
