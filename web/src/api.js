// SPDX-License-Identifier: Apache-2.0
// The console's one door to the API: same-origin fetch with the session cookie, JSON both
// ways, the CSRF token (kept only in this module's memory) on every change, and errors
// turned into sentences a person can act on.

let csrf = null;
let onSessionEnd = () => {};

export function setCsrf(token) {
	csrf = token ?? null;
}

// Called when a request of a signed-in page answers 401: the session expired or was ended.
export function onUnauthorized(fn) {
	onSessionEnd = fn;
}

export class ApiError extends Error {
	constructor(status, code, message, body) {
		super(message);
		this.status = status;
		this.code = code;
		this.body = body;
	}
}

function retryAfter(res) {
	const v = res.headers.get('Retry-After');
	if (!v) return null;
	const n = Number(v);
	if (Number.isFinite(n)) return Math.max(0, Math.ceil(n));
	const t = Date.parse(v);
	return Number.isNaN(t) ? null : Math.max(0, Math.ceil((t - Date.now()) / 1000));
}

// "no batch matches this code" → "No batch matches this code."
export function sentence(s) {
	const t = String(s ?? '').trim();
	if (!t) return '';
	return t[0].toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? '' : '.');
}

// Plain words for an answer that is not 2xx. The server's message is already a sentence;
// statuses where it would not help the reader get ours.
export function describe(status, code, message, res) {
	switch (status) {
	case 401:
		return 'You are not signed in any more: sign in again.';
	case 403:
		return sentence(message) || 'Your role may not do this.';
	case 404:
		return sentence(message) || 'Not found.';
	case 413:
		return 'That is too large for the server.';
	case 429: {
		const s = res ? retryAfter(res) : null;
		return s === null ? 'Too many attempts: wait a moment and try again.'
			: `Too many attempts: try again in ${s} s.`;
	}
	default:
		if (status >= 500) return `The server failed${message ? `: ${message}` : ''}. Try again later.`;
		return sentence(message) || `The server answered ${status}${code ? ` (${code})` : ''}.`;
	}
}

// api('GET', '/api/v1/batches') → parsed JSON (null for 204). Throws ApiError with a
// readable message; an aborted request throws the AbortError as it is.
// opts: {signal, quiet401: true to not end the session on 401}
export async function api(method, path, body, opts = {}) {
	const headers = { Accept: 'application/json' };
	const init = { method, headers, credentials: 'same-origin', cache: 'no-store', signal: opts.signal };
	if (body !== undefined) {
		headers['Content-Type'] = 'application/json';
		init.body = JSON.stringify(body);
	}
	if (method !== 'GET' && method !== 'HEAD' && csrf) headers['X-CSRF-Token'] = csrf;
	let res;
	try {
		res = await fetch(path, init);
	} catch (err) {
		if (err?.name === 'AbortError') throw err;
		throw new ApiError(0, 'network', 'The devid server cannot be reached: check the network and try again.');
	}
	if (res.status === 204) return null;
	let json = null;
	const text = await res.text();
	if (text) {
		try {
			json = JSON.parse(text);
		} catch {
			json = null;
		}
	}
	if (res.ok) return json;
	const code = json?.error ?? '';
	const message = typeof json?.message === 'string' ? json.message.replace(/\.$/, '') : '';
	const err = new ApiError(res.status, code, describe(res.status, code, message, res), json);
	err.serverMessage = message;
	err.retryAfter = res.status === 429 ? retryAfter(res) : null;
	if (res.status === 401 && !opts.quiet401) onSessionEnd();
	throw err;
}

export const get = (path, opts) => api('GET', path, undefined, opts);
export const post = (path, body, opts) => api('POST', path, body ?? {}, opts);
export const put = (path, body, opts) => api('PUT', path, body, opts);
export const del = (path, opts) => api('DELETE', path, undefined, opts);

export const isAbort = (err) => err?.name === 'AbortError';
