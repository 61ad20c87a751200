// Reconnect delays: exponential from `base`, capped at `max`, with "equal jitter"
// (half fixed, half random) so many open dashboards do not reconnect in lockstep
// after an index restart.

/**
 * @param {number} attempt 0 for the first retry
 * @param {{base?: number, max?: number, random?: () => number}} [o]
 */
export function backoffDelay(attempt, o = {}) {
  const base = o.base ?? 1000;
  const max = o.max ?? 30000;
  const random = o.random ?? Math.random;
  const exp = Math.min(max, base * 2 ** Math.min(attempt, 20));
  return Math.round(exp / 2 + (exp / 2) * random());
}
