// Number, size, rate, duration and time formatting for the dashboard.
// Every function accepts anything (the API may send null or omit a field) and
// returns a display string; "–" stands for "no value".

export const NONE = '–';

function isNum(v) { return typeof v === 'number' && Number.isFinite(v); }

/** 1536 -> "1.5 KiB"; binary units, three significant digits. */
export function fmtBytes(n) {
  if (!isNum(n) || n < 0) return NONE;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  if (i === 0) return `${Math.round(v)} B`;
  return `${sig3(v)} ${units[i]}`;
}

function sig3(v) {
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

/** Plain count with thousands separators: 12345 -> "12,345". */
export function fmtCount(n) {
  if (!isNum(n)) return NONE;
  return Math.round(n).toLocaleString('en-US');
}

/** A per-second rate: 0 -> "0/s", 0.25 -> "0.25/s", 12.34 -> "12.3/s", 15300 -> "15.3k/s". */
export function fmtRate(n) {
  if (!isNum(n) || n < 0) return NONE;
  return `${compact(n)}/s`;
}

/** Compact number: 999 -> "999", 1234 -> "1234", 12345 -> "12.3k", 2500000 -> "2.50M". */
export function compact(n) {
  if (!isNum(n)) return NONE;
  const a = Math.abs(n);
  if (a === 0) return '0';
  if (a >= 1e9) return `${sig3(n / 1e9)}G`;
  if (a >= 1e6) return `${sig3(n / 1e6)}M`;
  if (a >= 1e4) return `${sig3(n / 1e3)}k`;
  if (a >= 1000) return Math.round(n).toString();
  if (a >= 100) return n.toFixed(0);
  if (a >= 10) return n.toFixed(1);
  if (a >= 0.01) return n.toFixed(2);
  return n.toExponential(1);
}

/** Milliseconds of latency: 0.4 -> "0.40 ms", 12.3 -> "12.3 ms", 1500 -> "1.50 s", 0.004 -> "4 µs". */
export function fmtMs(ms) {
  if (!isNum(ms) || ms < 0) return NONE;
  if (ms === 0) return '0 ms';
  if (ms < 0.01) return `${Math.round(ms * 1000)} µs`;
  if (ms < 1000) return `${sig3(ms)} ms`;
  return `${sig3(ms / 1000)} s`;
}

/** Short tick label for a latency axis: 12 -> "12 ms", 2.5 -> "2.5 ms", 0.25 -> "0.25 ms", 1500 -> "1.5 s". */
export function fmtMsTick(ms) {
  if (!isNum(ms)) return '';
  if (ms === 0) return '0';
  if (Math.abs(ms) >= 1000) return `${Number((ms / 1000).toPrecision(3))} s`;
  return `${Number(ms.toPrecision(3))} ms`;
}

/** Percent with one decimal: 1.5 -> "1.5%". */
export function fmtPercent(p) {
  if (!isNum(p)) return NONE;
  return `${p >= 100 ? p.toFixed(0) : p.toFixed(1)}%`;
}

/** A duration in ms as a short human string: 900 -> "0.9 s", 65000 -> "1m 5s", 7200000 -> "2h 0m". */
export function fmtDuration(ms) {
  if (!isNum(ms)) return NONE;
  if (ms < 0) ms = 0;
  if (ms < 10000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

/** How long ago `t` was, seen from `now` (both Unix ms): "0.5 s ago", "3m 2s ago". */
export function fmtAgo(t, now) {
  if (!isNum(t) || !isNum(now)) return NONE;
  const d = now - t;
  if (d < -2000) return 'in the future';
  return `${fmtDuration(Math.max(0, d))} ago`;
}

/** Local wall-clock time of a Unix ms timestamp, "HH:MM:SS". */
export function fmtClock(t) {
  if (!isNum(t)) return NONE;
  const d = new Date(t);
  const p = (x) => String(x).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** Shorten a long peer id for a table cell: first 8 and last 4 characters. */
export function shortId(id) {
  if (typeof id !== 'string') return NONE;
  if (id.length <= 16) return id;
  return `${id.slice(0, 8)}…${id.slice(-4)}`;
}
