// Client for the index's dashboard API (docs/DASHBOARD_API.md):
//   GET /v1/dashboard          one JSON object (snapshot with history)
//   GET /v1/dashboard/stream   text/event-stream, one object per second
// Both send "Authorization: Bearer <token>". EventSource cannot set that header,
// so the stream is read with fetch() and the response body's ReadableStream.

import { createSseParser } from './sse.js';

export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
  }
}

/** True for the answers that mean "your token is not (or no longer) good". */
export function isAuthError(e) {
  return e instanceof HttpError && (e.status === 401 || e.status === 403);
}

async function failure(res, what) {
  let detail = '';
  try { detail = (await res.text()).slice(0, 200).trim(); } catch { /* ignore */ }
  return new HttpError(res.status, `${what}: HTTP ${res.status}${detail ? ` — ${detail}` : ''}`);
}

/**
 * @param {{fetch: typeof fetch, base?: string, getToken: () => string|null}} deps
 */
export function createApi({ fetch, base = '', getToken }) {
  function headers(accept) {
    const h = { Accept: accept };
    const t = getToken();
    if (t) h.Authorization = `Bearer ${t}`;
    return h;
  }

  return {
    /** GET /v1/dashboard?window=… → parsed object. Throws HttpError or a network error. */
    async snapshot(windowName, signal) {
      const res = await fetch(`${base}/v1/dashboard?window=${encodeURIComponent(windowName)}`, {
        headers: headers('application/json'),
        cache: 'no-store',
        signal,
      });
      if (!res.ok) throw await failure(res, 'GET /v1/dashboard');
      return res.json();
    },

    /**
     * Open the stream and call onData(object) for each JSON event until the server
     * closes it (resolves) or it fails / is aborted (rejects). onRetry receives a
     * server-sent "retry:" value in ms.
     */
    async stream(windowName, signal, onData, onRetry) {
      const res = await fetch(`${base}/v1/dashboard/stream?window=${encodeURIComponent(windowName)}`, {
        headers: headers('text/event-stream'),
        cache: 'no-store',
        signal,
      });
      if (!res.ok) throw await failure(res, 'GET /v1/dashboard/stream');
      if (!res.body) throw new Error('the stream response has no body');
      await readEventStream(res.body, (ev) => {
        let obj;
        try { obj = JSON.parse(ev.data); } catch { return; } // not ours (keep-alive text etc.)
        if (obj && typeof obj === 'object') onData(obj, ev);
      }, { onRetry });
    },
  };
}

/**
 * Decode a byte stream as UTF-8 and feed it to an SSE parser. Multi-byte
 * characters split across chunks are handled by TextDecoder's stream mode.
 * @param {ReadableStream<Uint8Array>} body
 */
export async function readEventStream(body, onEvent, opts = {}) {
  const reader = body.getReader();
  const decoder = new TextDecoder('utf-8');
  const parser = createSseParser(onEvent, { onRetry: opts.onRetry });
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.push(decoder.decode(value, { stream: true }));
    }
    parser.push(decoder.decode());
    parser.end();
  } finally {
    try { reader.releaseLock(); } catch { /* already released */ }
  }
}
