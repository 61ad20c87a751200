// The sign-in form: paste a viewer token.

import { h } from './dom.js';

/**
 * @param {{message?: string|null, onSubmit: (pasted: string) => string|null}} o
 *   onSubmit returns an error text to show, or null when the token was accepted.
 */
export function createLogin({ message, onSubmit }) {
  const input = h('textarea', {
    id: 'token', class: 'token-input', testid: 'login-token-input', rows: '4', required: true,
    autocomplete: 'off', autocapitalize: 'off', spellcheck: 'false', placeholder: 'eyJhbGciOi…',
  });
  const error = h('p', { class: 'login-error', testid: 'login-error', role: 'alert' });
  error.hidden = !message;
  if (message) error.textContent = message;
  const form = h('form', {
    class: 'login', testid: 'login-form',
    onsubmit: (e) => {
      e.preventDefault();
      const err = onSubmit(input.value);
      error.hidden = !err;
      error.textContent = err ?? '';
    },
  },
  h('h1', null, 'Parley index dashboard'),
  h('p', null, 'Paste a viewer token to see the cluster live. Create one on an index host with:'),
  h('pre', { class: 'cmd' }, 'parley-index token create --role viewer --ttl 12h'),
  h('label', { for: 'token' }, 'Token'),
  input,
  error,
  h('button', { type: 'submit', class: 'btn btn-primary', testid: 'login-submit' }, 'Open dashboard'),
  h('p', { class: 'muted small' }, 'The token stays in this browser tab only (session storage) and is sent to this index alone.'));
  return { el: h('main', { class: 'login-wrap', testid: 'login' }, form), input, error };
}
