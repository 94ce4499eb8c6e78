// SPDX-License-Identifier: Apache-2.0
// The devid console: restores the session (GET /api/v1/session) or asks for a token, then
// draws the frame (who, sign out, navigation, the last error) and the hash routes' screens.
import { get, del, setCsrf, onUnauthorized } from './api.js';
import { h, clear } from './dom.js';
import { route, otherwise, start, go } from './router.js';
import { session, setSession, isAdmin, showError, clearError } from './session.js';
import { signin } from './screens/signin.js';
import { claim } from './screens/claim.js';
import { batches } from './screens/batches.js';
import { batch } from './screens/batch.js';
import { device } from './screens/device.js';
import { jobs } from './screens/jobs.js';
import { suspicions } from './screens/suspicions.js';
import { clouds, cloudForm } from './screens/clouds.js';
import { audit } from './screens/audit.js';

const app = document.getElementById('app');
let stopRouter = null;

const NAV = [
	['claim', 'Claim', false],
	['batches', 'Batches', false],
	['jobs', 'Jobs', false],
	['suspicions', 'Suspicions', false],
	['clouds', 'Clouds', true],
	['audit', 'Audit', true],
];

// Screens only admins may use; an operator who types their route gets a sentence instead.
const adminOnly = (screen) => (root, params, signal) => {
	if (isAdmin()) return screen(root, params, signal);
	clear(root, h('h1', {}, 'Not for your role'),
		h('p', {}, 'Product clouds and the audit trail are for your company\'s admins.'));
	return undefined;
};

route('/claim', claim);
route('/batches', batches);
route('/batches/:vendor/:batch', batch);
route('/devices/:udid', device);
route('/jobs', jobs);
route('/suspicions', suspicions);
route('/clouds', adminOnly(clouds));
route('/clouds/new', adminOnly(cloudForm));
route('/clouds/:name', adminOnly(cloudForm));
route('/audit', adminOnly(audit));
otherwise((root) => {
	if (location.hash && location.hash !== '#' && location.hash !== '#/') {
		clear(root, h('h1', {}, 'No such page'), h('p', {}, h('a', { href: '#/claim' }, 'Go to Claim')));
		return;
	}
	go('#/claim');
});

function confirmDialogElement() {
	return h('dialog', { id: 'confirm', 'aria-labelledby': 'confirm-title' },
		h('h2', { id: 'confirm-title' }, 'Are you sure?'),
		h('p', { class: 'confirm-message' }),
		h('div', { class: 'actions' },
			h('button', { id: 'confirm-cancel', type: 'button' }, 'Cancel'),
			h('button', { id: 'confirm-ok', type: 'button', class: 'danger' }, 'OK')));
}

function frame(s) {
	const links = NAV.filter(([, , admin]) => !admin || s.role === 'admin').map(([key, label]) =>
		h('a', { href: `#/${key}`, dataset: { nav: key } }, label));
	const screen = h('main', { id: 'screen', tabindex: '-1' });
	const header = h('header', { class: 'top' },
		h('a', { href: '#/claim', class: 'brand' }, 'devid'),
		h('nav', { 'aria-label': 'Main' }, links),
		h('div', { class: 'who' },
			h('span', { id: 'whoami', title: 'Signed in as' }, `${s.name} (${s.role}, ${s.tenant})`),
			h('button', { id: 'signout', type: 'button', on: { click: signOut } }, 'Sign out')));
	const error = h('p', { id: 'error', class: 'error banner', role: 'alert', hidden: true });
	clear(app, header, error, screen, confirmDialogElement());
	return { screen, links };
}

function signedIn(s) {
	setSession(s);
	setCsrf(s.csrf);
	const { screen, links } = frame(s);
	stopRouter = start(screen, (m) => {
		clearError();
		window.scrollTo(0, 0);
		const top = (location.hash.split('/')[1] ?? '').toLowerCase();
		for (const a of links) {
			if (a.dataset.nav === top) a.setAttribute('aria-current', 'page');
			else a.removeAttribute('aria-current');
		}
		if (m.pattern !== null) document.title = `${top || 'claim'} · devid console`;
	});
}

function signedOut(notice) {
	stopRouter?.();
	stopRouter = null;
	setSession(null);
	setCsrf(null);
	document.title = 'devid console';
	clear(app, h('main', { id: 'screen' }));
	signin(app.firstChild, signedIn, notice);
}

async function signOut() {
	const btn = document.getElementById('signout');
	btn.disabled = true;
	try {
		await del('/api/v1/session', { quiet401: true });
	} catch (err) {
		if (err.status !== 401) {
			showError(`Signing out failed: ${err.message}`);
			btn.disabled = false;
			return;
		}
	}
	signedOut('Signed out.');
}

onUnauthorized(() => {
	if (session()) signedOut('Your session has ended: sign in again.');
});

async function boot() {
	try {
		const s = await get('/api/v1/session', { quiet401: true });
		signedIn(s);
	} catch (err) {
		signedOut(err.status === 401 || err.status === 404 ? '' : err.message);
	}
}

boot();
