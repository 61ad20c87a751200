// A tiny DOM builder. All text goes through textContent / text nodes: peer names,
// topics and alert summaries come from the network and are never parsed as HTML.

/**
 * h('div', {class: 'x', testid: 'panel-peers', onclick: fn}, 'text', childEl, [more])
 * `testid` sets data-testid; `data` sets data-* attributes; on* set listeners;
 * other keys are attributes (false/null/undefined are skipped).
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'testid') el.setAttribute('data-testid', v);
      else if (k === 'class') el.className = v;
      else if (k === 'data') for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = String(dv);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'value') el.value = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

/** Replace all children of el. */
export function setChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** Set text only when it changed (avoids needless layout work every second). */
export function setText(el, text) {
  const t = String(text);
  if (el.textContent !== t) el.textContent = t;
}

/** A panel: <section data-testid="panel-NAME"><header><h2>title</h2>…</header>body</section> */
export function panel(name, title, ...headerExtras) {
  const body = h('div', { class: 'panel-body' });
  const head = h('header', { class: 'panel-head' }, h('h2', null, title), ...headerExtras);
  const el = h('section', { class: `panel panel-${name}`, testid: `panel-${name}`, 'aria-label': title }, head, body);
  return { el, head, body };
}

/**
 * A friendly empty/waiting message. kind: 'waiting' (still starting, spinner-ish
 * dot) or 'empty' (nothing to show, and that is fine) or 'ok' (good news).
 */
export function note(testid, kind, text, detail) {
  return h('div', { class: `note note-${kind}`, testid, role: 'status' },
    h('span', { class: 'note-icon', 'aria-hidden': 'true' }),
    h('span', { class: 'note-text' }, text, detail ? h('span', { class: 'note-detail' }, detail) : null));
}
