// SPDX-License-Identifier: Apache-2.0
// Hash routes: '#/batches/ACME/B1' → the screen whose pattern matches, with its decoded
// parameters. A screen's render returns a cleanup function, called when the page leaves it
// (it stops timers, the camera and pending requests).

const routes = [];
let current = null;
let fallback = null;

// pattern: '/batches/:vendor/:batch'
export function route(pattern, screen) {
	const names = [];
	const re = new RegExp('^' + pattern.replace(/:(\w+)/g, (_, n) => {
		names.push(n);
		return '([^/]+)';
	}) + '/?$');
	routes.push({ re, names, screen, pattern });
}

export function otherwise(screen) {
	fallback = screen;
}

export function match(hash) {
	const path = (hash || '').replace(/^#/, '') || '/';
	for (const r of routes) {
		const m = r.re.exec(path);
		if (!m) continue;
		const params = {};
		try {
			r.names.forEach((n, i) => { params[n] = decodeURIComponent(m[i + 1]); });
		} catch {
			continue; // a malformed %-escape matches nothing
		}
		return { screen: r.screen, params, pattern: r.pattern };
	}
	return { screen: fallback, params: {}, pattern: null };
}

export function leave() {
	if (current?.cleanup) {
		try {
			current.cleanup();
		} catch (err) {
			console.error(err);
		}
	}
	current = null;
}

// Renders the route of location.hash into root; before(m) runs first (main.js updates the
// navigation and clears the last error there).
export function start(root, before) {
	const show = () => {
		leave();
		const m = match(location.hash);
		before?.(m);
		const controller = new AbortController();
		const cleanup = m.screen?.(root, m.params, controller.signal);
		current = {
			cleanup: () => {
				controller.abort();
				if (typeof cleanup === 'function') cleanup();
			},
		};
	};
	window.addEventListener('hashchange', show);
	show();
	return () => {
		window.removeEventListener('hashchange', show);
		leave();
	};
}

export function go(hash) {
	if (location.hash === hash) window.dispatchEvent(new HashChangeEvent('hashchange'));
	else location.hash = hash;
}
