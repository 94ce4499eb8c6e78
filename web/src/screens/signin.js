// SPDX-License-Identifier: Apache-2.0
// Sign in with an API token: POST /api/v1/session trades it for an HttpOnly cookie and a
// CSRF token. The token never leaves this form: not in storage, not in the URL, and the
// input is emptied as soon as it is sent.
import { post, setCsrf } from '../api.js';
import { h, clear } from '../dom.js';

export function signin(root, onSignedIn, notice) {
	const token = h('input', {
		id: 'signin-token', type: 'password', name: 'token', autocomplete: 'off',
		spellcheck: 'false', autocapitalize: 'off', required: true,
		'aria-describedby': 'signin-help',
	});
	const error = h('p', { id: 'signin-error', class: 'error', role: 'alert' }, notice ?? '');
	const submit = h('button', { id: 'signin-submit', type: 'submit', class: 'primary' }, 'Sign in');
	const form = h('form', { class: 'card signin', on: { submit: go } },
		h('h1', {}, 'devid console'),
		h('label', { for: 'signin-token' }, 'API token'),
		token,
		h('p', { id: 'signin-help', class: 'hint' },
			'A token of your company (admin or operator), from devid admin token add. The console keeps only a session.'),
		submit,
		error);

	async function go(ev) {
		ev.preventDefault();
		const value = token.value.trim();
		token.value = '';
		if (!value) {
			error.textContent = 'Paste your API token first.';
			token.focus();
			return;
		}
		submit.disabled = true;
		error.textContent = '';
		try {
			const s = await post('/api/v1/session', { token: value }, { quiet401: true });
			setCsrf(s.csrf);
			onSignedIn(s);
		} catch (err) {
			error.textContent = err.status === 401
				? 'This token is not valid: it is wrong, revoked or expired.'
				: err.status === 403
					? 'This token cannot sign in here: the console is for product companies (admin or operator tokens).'
					: err.message;
			submit.disabled = false;
			token.focus();
		}
	}

	clear(root, form);
	token.focus();
}
