// Incremental parser for the text/event-stream format (WHATWG HTML, "Server-sent
// events", section "Parsing an event stream"). It is fed decoded text in chunks of
// any size: a chunk may end in the middle of a line, a field name, a CRLF pair or
// an event, and the result is the same as if the whole stream had come at once.
//
// Each complete event (terminated by a blank line) is delivered to onEvent as
// { event, data, id, retry } where `event` defaults to "message" and `data` is the
// data lines joined with "\n". Events with no data lines are not dispatched (as in
// browsers); comment lines (":" prefix, used as keep-alives) are ignored.

/** Longest line we accept before discarding it: protects against a runaway stream. */
export const SSE_MAX_LINE = 8 * 1024 * 1024;

/**
 * @param {(ev: {event: string, data: string, id: string|null, retry: number|null}) => void} onEvent
 * @param {{maxLine?: number, onRetry?: (ms: number) => void}} [opts]
 */
export function createSseParser(onEvent, opts = {}) {
  const maxLine = opts.maxLine ?? SSE_MAX_LINE;
  let buf = '';
  let pendingCR = false; // last chunk ended in "\r": a following "\n" belongs to it
  let dataLines = [];
  let eventType = '';
  let lastId = null;
  let retry = null;
  let first = true; // strip a UTF-8 BOM at the very start of the stream
  let overflow = false;

  function dispatch() {
    if (dataLines.length > 0) {
      onEvent({ event: eventType || 'message', data: dataLines.join('\n'), id: lastId, retry });
    }
    dataLines = [];
    eventType = '';
    retry = null;
  }

  function line(l) {
    if (l === '') { dispatch(); return; }
    if (l.charCodeAt(0) === 58 /* ':' */) return;
    const colon = l.indexOf(':');
    let field, value;
    if (colon < 0) { field = l; value = ''; } else {
      field = l.slice(0, colon);
      value = l.slice(colon + 1);
      if (value.charCodeAt(0) === 32) value = value.slice(1);
    }
    switch (field) {
      case 'data': dataLines.push(value); break;
      case 'event': eventType = value; break;
      case 'id': if (!value.includes('\0')) lastId = value; break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) {
          retry = Number(value);
          if (opts.onRetry) opts.onRetry(retry);
        }
        break;
      default: break; // unknown fields are ignored
    }
  }

  return {
    /** Feed the next piece of decoded text. */
    push(text) {
      if (first && text.length > 0) {
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        first = false;
      }
      if (pendingCR && text.length > 0) {
        if (text.charCodeAt(0) === 10) text = text.slice(1);
        pendingCR = false;
      }
      buf += text;
      let start = 0;
      for (let i = 0; i < buf.length; i++) {
        const c = buf.charCodeAt(i);
        if (c !== 10 && c !== 13) continue;
        if (overflow) overflow = false; // the oversized line ends here; drop it
        else line(buf.slice(start, i));
        if (c === 13) {
          if (i + 1 < buf.length) { if (buf.charCodeAt(i + 1) === 10) i++; } else pendingCR = true;
        }
        start = i + 1;
      }
      buf = buf.slice(start);
      if (buf.length > maxLine) { buf = ''; overflow = true; }
    },
    /** End of stream: an unterminated event is discarded, as the spec says. */
    end() {
      buf = '';
      dataLines = [];
      eventType = '';
    },
    get lastEventId() { return lastId; },
  };
}
