// The viewer token: pasted by the user, kept in sessionStorage (so it is gone
// when the tab closes), sent as "Authorization: Bearer <token>", and dropped
// whenever the index answers 401.

export const TOKEN_KEY = 'parley.dashboard.token';

/** @param {Storage|null|undefined} storage */
export function createTokenStore(storage) {
  let memory = null; // used when sessionStorage is unavailable (privacy modes)
  return {
    get() {
      try { return storage ? storage.getItem(TOKEN_KEY) : memory; } catch { return memory; }
    },
    set(token) {
      memory = token;
      try { if (storage) storage.setItem(TOKEN_KEY, token); } catch { /* keep in memory */ }
    },
    clear() {
      memory = null;
      try { if (storage) storage.removeItem(TOKEN_KEY); } catch { /* nothing to do */ }
    },
  };
}

function b64urlDecode(s) {
  let t = s.replace(/-/g, '+').replace(/_/g, '/');
  while (t.length % 4) t += '=';
  const bin = atob(t);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new TextDecoder().decode(bytes);
}

/**
 * Trim what the user pasted: whitespace, a leading "Bearer ", surrounding quotes.
 * Returns '' when nothing is left.
 */
export function cleanToken(pasted) {
  if (typeof pasted !== 'string') return '';
  let t = pasted.trim();
  if (/^bearer\s+/i.test(t)) t = t.replace(/^bearer\s+/i, '');
  t = t.replace(/^["']|["']$/g, '').trim();
  return t.replace(/\s+/g, '');
}

/**
 * Read the (unverified) claims of a JWT for display only: role and expiry.
 * The index verifies the signature; the dashboard never trusts these claims
 * for anything but messages to the user. Returns null if it is not a JWT.
 */
export function readClaims(token) {
  if (typeof token !== 'string') return null;
  const parts = token.split('.');
  if (parts.length !== 3 || !/^[A-Za-z0-9_-]+$/.test(parts[1])) return null;
  try {
    const c = JSON.parse(b64urlDecode(parts[1]));
    return c && typeof c === 'object' ? c : null;
  } catch {
    return null;
  }
}

/**
 * Check a pasted token before using it. Returns {ok, token, error}.
 * @param {string} pasted
 * @param {number} nowMs
 */
export function checkToken(pasted, nowMs) {
  const token = cleanToken(pasted);
  if (!token) return { ok: false, token, error: 'Paste a token first.' };
  const claims = readClaims(token);
  if (!claims) {
    return { ok: false, token, error: 'That does not look like a token (expected three dot-separated parts, as printed by "parley-index token create").' };
  }
  if (typeof claims.exp === 'number' && claims.exp * 1000 < nowMs - 60000) {
    return { ok: false, token, error: `This token expired at ${new Date(claims.exp * 1000).toLocaleString()}. Create a new one.` };
  }
  return { ok: true, token, claims, error: null };
}
