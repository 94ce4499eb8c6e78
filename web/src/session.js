// SPDX-License-Identifier: Apache-2.0
// Who is signed in (the session object of GET/POST /api/v1/session), and the page-wide
// error line #error.
import { isAbort } from './api.js';

let who = null;

export const session = () => who;
export const setSession = (s) => { who = s; };
export const isAdmin = () => who?.role === 'admin';

// Keeps err (an ApiError, an Error or a string) as the page's last error in #error, shown
// there, or, when el is given, shown in el instead (#error then holds it unseen).
// Aborted requests (the page moved on) show nothing. Returns the message.
export function showError(err, el) {
	if (isAbort(err)) return '';
	const msg = typeof err === 'string' ? err : err?.message || 'Something went wrong.';
	if (err instanceof Error && err.status === undefined) console.error(err); // a bug, not an answer
	const global = document.getElementById('error');
	if (global) {
		global.textContent = msg;
		global.hidden = !!el; // shown once: next to what failed when the screen has a place for it
	}
	if (el) el.textContent = msg;
	return msg;
}

export function clearError(el) {
	const global = document.getElementById('error');
	if (global) {
		global.textContent = '';
		global.hidden = true;
	}
	if (el) el.textContent = '';
}
