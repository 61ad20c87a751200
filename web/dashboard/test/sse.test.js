import { describe, it, expect } from 'vitest';
import { createSseParser } from '../src/lib/sse.js';
import { readEventStream } from '../src/lib/api.js';

function parseChunks(chunks, opts) {
  const out = [];
  const p = createSseParser((ev) => out.push(ev), opts);
  for (const c of chunks) p.push(c);
  p.end();
  return out;
}

const STREAM = [
  'retry: 2000\n',
  ': keep-alive comment\n',
  '\n',
  'data: {"now":1,"peers":{"count":4}}\n',
  '\n',
  'event: dashboard\n',
  'id: 42\n',
  'data: {"a":\n',
  'data: "é✓😀"}\n',
  '\n',
  'data:no-space\r\n',
  'data: crlf second line\r\n',
  '\r\n',
  'data: cr-only\r',
  '\r',
  'data\n',
  '\n',
  'event: no-data-so-not-dispatched\n',
  '\n',
  'data: unterminated at end of stream',
].join('');

const EXPECTED = [
  { event: 'message', data: '{"now":1,"peers":{"count":4}}', id: null, retry: null },
  { event: 'dashboard', data: '{"a":\n"é✓😀"}', id: '42', retry: null },
  { event: 'message', data: 'no-space\ncrlf second line', id: '42', retry: null },
  { event: 'message', data: 'cr-only', id: '42', retry: null },
  { event: 'message', data: '', id: '42', retry: null },
];

describe('SSE parser', () => {
  it('parses a whole stream in one chunk', () => {
    expect(parseChunks([STREAM])).toEqual(EXPECTED);
  });

  it('gives the same events for every split point of the stream', () => {
    for (let i = 0; i <= STREAM.length; i++) {
      expect(parseChunks([STREAM.slice(0, i), STREAM.slice(i)]), `split at ${i}`).toEqual(EXPECTED);
    }
  });

  it('gives the same events for every pair of split points', () => {
    const n = STREAM.length;
    for (let i = 0; i <= n; i += 3) {
      for (let j = i; j <= n; j += 5) {
        expect(parseChunks([STREAM.slice(0, i), STREAM.slice(i, j), STREAM.slice(j)])).toEqual(EXPECTED);
      }
    }
  });

  it('works one character at a time', () => {
    expect(parseChunks([...STREAM])).toEqual(EXPECTED);
  });

  it('treats CR LF split across chunks as one line ending', () => {
    expect(parseChunks(['data: x\r', '\n', '\r', '\n'])).toEqual([{ event: 'message', data: 'x', id: null, retry: null }]);
    expect(parseChunks(['data: a\r', '\ndata: b\r', '\n\r', '\n'])).toEqual([{ event: 'message', data: 'a\nb', id: null, retry: null }]);
    // A lone CR followed by an empty chunk and then LF is still one line ending.
    expect(parseChunks(['data: y\r', '', '\n\n'])).toEqual([{ event: 'message', data: 'y', id: null, retry: null }]);
  });

  it('reports retry values and ignores malformed ones', () => {
    const retries = [];
    parseChunks(['retry: 1500\n', 'retry: soon\n', 'retry: 3000\n\n'], { onRetry: (ms) => retries.push(ms) });
    expect(retries).toEqual([1500, 3000]);
  });

  it('strips a leading BOM and keeps a leading space only once', () => {
    expect(parseChunks(['\ufeffdata:  two spaces\n\n'])).toEqual([{ event: 'message', data: ' two spaces', id: null, retry: null }]);
  });

  it('drops a line longer than the limit and recovers at the next line', () => {
    const out = parseChunks(['data: ', 'x'.repeat(50), 'y'.repeat(50), '\n', 'data: ok\n\n'], { maxLine: 64 });
    expect(out).toEqual([{ event: 'message', data: 'ok', id: null, retry: null }]);
  });
});

describe('readEventStream (bytes → events)', () => {
  function byteStream(bytes, cuts) {
    let k = 0;
    const pieces = [];
    for (const c of [...cuts, bytes.length]) { pieces.push(bytes.slice(k, c)); k = c; }
    return new ReadableStream({
      start(ctl) { for (const p of pieces) ctl.enqueue(p); ctl.close(); },
    });
  }

  it('decodes UTF-8 characters split across network chunks', async () => {
    const bytes = new TextEncoder().encode(STREAM);
    for (let cut = 1; cut < bytes.length; cut++) {
      const out = [];
      await readEventStream(byteStream(bytes, [cut]), (ev) => out.push(ev));
      expect(out, `cut at byte ${cut}`).toEqual(EXPECTED);
    }
  });

  it('handles many tiny chunks', async () => {
    const bytes = new TextEncoder().encode(STREAM);
    const cuts = [];
    for (let i = 1; i < bytes.length; i += 2) cuts.push(i);
    const out = [];
    await readEventStream(byteStream(bytes, cuts), (ev) => out.push(ev));
    expect(out).toEqual(EXPECTED);
  });
});
