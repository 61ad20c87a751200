#!/usr/bin/env node
// DEVELOPMENT ONLY. A stand-in for `parley-index --http` that serves the built
// dashboard (dist/) under /dashboard/ and made-up data shaped like
// docs/DASHBOARD_API.md, so the front end can be worked on before (or without)
// a real cluster. It is not a test oracle: real tests run against the daemon.
//
//   node dev/fixture-server.mjs [--port 8099] [--scenario live|starting|waiting]
//                               [--print-token]
//
// Tokens: any JWT-shaped token whose payload has role viewer or admin and an
// unexpired exp is accepted; the literal token "reject" (or an expired one)
// gets 401. --print-token prints a dev token and a ready-to-open URL.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.resolve(here, '..', 'dist');

const args = process.argv.slice(2);
function opt(name, def) {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : def;
}
const PORT = Number(opt('port', '8099'));
const HOST = opt('host', '127.0.0.1');
const SCENARIO = opt('scenario', 'live');
if (!['live', 'starting', 'waiting'].includes(SCENARIO)) {
  console.error(`unknown scenario ${SCENARIO}`);
  process.exit(2);
}

function b64url(s) { return Buffer.from(s).toString('base64url'); }
export function devToken(role = 'viewer', ttlS = 12 * 3600) {
  const now = Math.floor(Date.now() / 1000);
  return `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64url(JSON.stringify({ sub: 'dev', role, iat: now, exp: now + ttlS }))}.dev`;
}

function authorized(req) {
  const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
  if (!m || m[1] === 'reject') return false;
  const parts = m[1].split('.');
  if (parts.length !== 3) return false;
  try {
    const c = JSON.parse(Buffer.from(parts[1], 'base64url').toString());
    return (c.role === 'viewer' || c.role === 'admin') && (typeof c.exp !== 'number' || c.exp * 1000 > Date.now());
  } catch { return false; }
}

// ---- deterministic fake cluster ---------------------------------------------

const NAMES = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace', 'heidi', 'ivan', 'judy', 'mallory',
  'niaj', 'olivia', 'peggy', 'rupert', 'sybil', 'trent', 'victor', 'walter', 'yolanda', 'zoe', 'amir', 'bea',
  'chen', 'dmitri', 'elif', 'farah', 'goran', 'hana', 'ines', 'jonas', 'kofi', 'lena', 'mateo', 'noor', 'oskar',
  'priya', 'quinn', 'rosa', 'sami', 'tariq', 'uma', 'vera', 'wren', 'xia', 'yusuf', 'zara', 'kai'];
const B32 = 'abcdefghijklmnopqrstuvwxyz234567';
function hash(n) { // small integer hash -> [0, 1)
  let x = (n | 0) ^ 0x9e3779b9;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return ((x ^ (x >>> 16)) >>> 0) / 4294967296;
}
const POOL = NAMES.map((name, i) => ({
  id: Array.from({ length: 52 }, (_, k) => B32[Math.floor(hash(i * 131 + k) * 32)]).join(''),
  name,
  addr: `127.0.0.1:${40001 + i}`,
  base: 2 + hash(i + 999) * 30,
}));
const TOPICS = ['news', 'chat.general', 'metrics', 'ops.alerts', 'files', 'presence'];

function peerCount(t) {
  if (SCENARIO !== 'live') return 0;
  const s = Math.floor(t / 1000);
  return 34 + Math.round(6 * (1 + Math.sin(s / 700)) / 2 + 2 * Math.sin(s / 97));
}
function wave(t, period, phase = 0) { return Math.sin(t / 1000 / period + phase); }
function noise(t, salt) { return hash(Math.floor(t / 1000) * 7 + salt); }
function latencyAt(t, scale = 1) {
  const spike = noise(t, 11) > 0.985 ? 6 : 1;
  const p50 = scale * (0.35 + 0.08 * wave(t, 300) + 0.05 * noise(t, 1));
  const p90 = p50 * (2.6 + 0.4 * noise(t, 2));
  const p99 = p90 * (2 + 0.6 * noise(t, 3)) * spike;
  return [t, p50, p90, p99];
}
function throughputAt(t) {
  const n = peerCount(t);
  const inR = n * (9 + 3 * wave(t, 450) + 2 * noise(t, 4));
  const outR = inR * (0.96 + 0.03 * noise(t, 5));
  const err = noise(t, 6) > 0.97 ? Math.round(1 + 4 * noise(t, 7)) : 0;
  return [t, inR, outR, err];
}

function history(now, windowMs, res, fn) {
  const out = [];
  const start = Math.floor((now - windowMs) / res) * res + res;
  for (let t = start; t <= now; t += res) out.push(fn(t));
  return out;
}

function events(now) {
  const out = [];
  if (SCENARIO !== 'live') return out;
  let prev = peerCount(now - 3600 * 1000);
  for (let t = now - 3599 * 1000; t <= now; t += 1000) {
    const c = peerCount(t);
    for (let i = prev; i < c; i++) out.push({ t, kind: 'join', id: POOL[i].id, name: POOL[i].name });
    for (let i = c; i < prev; i++) out.push({ t, kind: 'expire', id: POOL[i].id, name: POOL[i].name });
    prev = c;
  }
  return out.slice(-100);
}

function picture(now, windowName, full) {
  const windowMs = windowName === '24h' ? 24 * 3600 * 1000 : 3600 * 1000;
  const res = windowName === '24h' ? 60 * 1000 : 1000;
  const t = Math.floor(now / 1000) * 1000;
  const hist = (fn) => (full ? history(t, windowMs, res, fn) : [fn(t)]);
  const live = SCENARIO === 'live';
  const leader = SCENARIO === 'waiting' ? null : 2;
  const nodes = [1, 2, 3].map((id) => ({
    id,
    role: leader === null ? (id === 3 ? 'candidate' : 'follower') : id === leader ? 'leader' : 'follower',
    term: 7,
    commit_index: leader === null ? 118 : 120 + (Math.floor(t / 1000) % 100000) - (id === 3 ? 2 : 0),
    listen: `127.0.0.1:${7400 + id}`,
    http: `127.0.0.1:${7480 + id}`,
    health: SCENARIO === 'waiting' && id === 2 ? 'down' : 'up',
  }));
  const n = peerCount(t);
  const table = POOL.slice(0, n).map((p, i) => ({
    id: p.id, name: p.name, addr: p.addr,
    last_seen: t - Math.floor(noise(t, 20 + i) * 1500) - (i === 5 ? 14000 : 0),
    msgs_in_per_s: p.base * (1 + 0.3 * wave(t, 60, i)),
    msgs_out_per_s: p.base * 0.4 * (1 + 0.3 * wave(t, 80, i)),
    latency_p50_ms: 0.3 + 0.2 * noise(t, 40 + i),
    latency_p99_ms: 1.5 + 2 * noise(t, 80 + i),
    outbox: i === 1 ? 1200 + Math.floor(100 * noise(t, 9)) : (noise(t, 60 + i) > 0.9 ? Math.floor(noise(t, 61 + i) * 20) : 0),
  }));
  const perTopic = {};
  if (live) TOPICS.forEach((name, i) => { perTopic[name] = hist((x) => latencyAt(x, 0.7 + i * 0.25)); });
  const resources = live || SCENARIO === 'starting' ? [
    ...nodes.map((nd) => ({ daemon: `index-${nd.id}`, kind: 'index', cpu_percent: 2 + 6 * noise(t, 100 + nd.id), rss_bytes: 24e6 + nd.id * 3e6, open_fds: 40 + nd.id })),
    ...POOL.slice(0, Math.min(n, 12)).map((p, i) => ({ daemon: p.name, kind: 'peer', cpu_percent: 0.5 + 3 * noise(t, 120 + i), rss_bytes: 9e6 + hash(i) * 8e6, open_fds: 18 + (i % 7) })),
  ] : [];
  return {
    now: t,
    state: live ? 'ok' : 'waiting',
    waiting_for: SCENARIO === 'waiting' ? 'no leader elected yet (2 of 3 index nodes reachable)'
      : SCENARIO === 'starting' ? 'no peer has registered yet' : null,
    cluster: { leader, term: 7, nodes },
    peers: { count: n, history: hist((x) => [x, peerCount(x)]), table },
    events: full ? events(t) : events(t).filter((e) => e.t > t - 5000),
    topics: live ? TOPICS.map((topic, i) => ({ topic, subscribers: 2 + ((i * 5) % 9), publishers: 1 + (i % 3), msgs_per_s: (TOPICS.length - i) * 11.5 * (1 + 0.2 * wave(t, 120, i)) })) : [],
    latency: { history: live ? hist((x) => latencyAt(x)) : [], per_topic: perTopic },
    throughput: { history: live ? hist(throughputAt) : (SCENARIO === 'starting' ? hist((x) => [x, 0, 0, 0]) : []) },
    resources,
    alerts: live ? {
      firing: [{ name: 'outbox_depth', severity: 'warning', since: t - 130000, value: table[1]?.outbox ?? 1200, threshold: 1000, summary: `outbox depth ${table[1]?.outbox ?? 1200} > 1000 for 10s on ${POOL[1].name}` },
        { name: 'peer_heartbeat_late', severity: 'info', since: t - 14000, value: 14, threshold: 10, summary: `no heartbeat from ${POOL[5].name} for 14s` }],
      resolved: [{ name: 'no_leader', severity: 'critical', since: t - 2400000, until: t - 2390000, summary: 'no index leader for 10s (election in term 7)' }],
    } : SCENARIO === 'waiting' ? {
      firing: [{ name: 'no_leader', severity: 'critical', since: t - 8000, value: 8, threshold: 5, summary: 'no index leader for 8s' }],
      resolved: [],
    } : { firing: [], resolved: [] },
  };
}

// ---- HTTP -------------------------------------------------------------------

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.json': 'application/json' };

function sendFile(res, file) {
  fs.readFile(file, (err, body) => {
    if (err) { res.writeHead(404, { 'Content-Type': 'text/plain' }); res.end('not found\n'); return; }
    res.writeHead(200, {
      'Content-Type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'Cache-Control': 'no-cache',
      // As strict as the index should be: no inline script or style allowed.
      'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'",
      'X-Content-Type-Options': 'nosniff',
    });
    res.end(body);
  });
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, `http://${req.headers.host ?? 'localhost'}`);
  const windowName = url.searchParams.get('window') === '24h' ? '24h' : '1h';
  if (url.pathname === '/' || url.pathname === '/dashboard') {
    res.writeHead(302, { Location: '/dashboard/' }); res.end(); return;
  }
  if (url.pathname.startsWith('/dashboard/')) {
    const rel = decodeURIComponent(url.pathname.slice('/dashboard/'.length)) || 'index.html';
    const file = path.resolve(DIST, rel);
    if (!file.startsWith(DIST + path.sep)) { res.writeHead(403); res.end(); return; }
    sendFile(res, file);
    return;
  }
  if (url.pathname === '/v1/dashboard' || url.pathname === '/v1/dashboard/stream') {
    if (!authorized(req)) {
      res.writeHead(401, { 'Content-Type': 'application/json', 'WWW-Authenticate': 'Bearer' });
      res.end('{"error":"unauthorized"}\n');
      return;
    }
    if (url.pathname === '/v1/dashboard') {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(JSON.stringify(picture(Date.now(), windowName, true)));
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
    res.write('retry: 2000\n: fixture stream\n\n');
    const timer = setInterval(() => {
      res.write(`data: ${JSON.stringify(picture(Date.now(), windowName, false))}\n\n`);
    }, 1000);
    req.on('close', () => clearInterval(timer));
    return;
  }
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('not found\n');
});

if (args.includes('--print-token')) {
  const tok = devToken();
  console.log(tok);
  console.log(`http://${HOST}:${PORT}/dashboard/#token=${tok}`);
}
server.listen(PORT, HOST, () => {
  console.log(`fixture (${SCENARIO}) serving ${DIST} at http://${HOST}:${PORT}/dashboard/ — development only`);
});
