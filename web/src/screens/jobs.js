// SPDX-License-Identifier: Apache-2.0
// #/jobs: the outbox jobs pushing devices into product clouds. Refreshes every 2 s while a
// job is pending and this screen is shown.
import { get } from '../api.js';
import { h, clear, table, td, seg, loading } from '../dom.js';
import { showError } from '../session.js';

const POLL_MS = 2000;

export function jobs(root, params, signal) {
	const slot = h('div', {}, loading('jobs'));
	const updated = h('p', { class: 'hint', role: 'status' });
	const filter = h('select', { id: 'jobs-state', on: { change: () => load() } },
		h('option', { value: '' }, 'all'), h('option', { value: 'pending' }, 'pending'),
		h('option', { value: 'done' }, 'done'), h('option', { value: 'dead' }, 'dead'));
	let timer = 0;
	let gone = false;
	let seq = 0;

	const row = (j) => {
		const total = Number(j.total ?? 0);
		const delivered = Number(j.delivered ?? 0);
		const dev = j.devices && (j.devices.ok || j.devices.failed)
			? ` (${j.devices.ok} ok, ${j.devices.failed} failed)` : '';
		return h('tr', { dataset: { job: j.id, state: j.state } },
			td('id', j.id),
			td('connector', j.connector ?? ''),
			td('action', j.action ?? ''),
			td('subject', j.udid ? h('a', { href: `#/devices/${seg(j.udid)}`, class: 'mono' }, `${String(j.udid).slice(0, 12)}…`) : (j.reason ?? '')),
			td('state', h('span', { class: `badge ${j.state}` }, j.state ?? '')),
			h('td', { dataset: { field: 'progress' } },
				h('progress', { max: String(Math.max(total, 1)), value: String(total ? delivered : 0), 'aria-label': `${delivered} of ${total} delivered` }),
				h('span', { class: 'progress-text' }, `${delivered}/${total}`)),
			td('devices', dev.trim()),
			td('attempts', j.attempts ?? 0),
			td('lastError', j.lastError ?? ''));
	};

	async function load() {
		const mine = ++seq;
		clearTimeout(timer);
		try {
			const q = filter.value ? `?state=${encodeURIComponent(filter.value)}` : '';
			const r = await get(`/api/v1/jobs${q}`, { signal });
			if (gone || mine !== seq) return;
			const list = r.jobs ?? [];
			clear(slot, table('jobs', ['Job', 'Cloud', 'Action', 'Device / why', 'State', 'Delivered', 'Per device', 'Attempts', 'Last error'],
				list.map(row), filter.value ? `No ${filter.value} jobs.` : 'No jobs yet: claiming a batch with an automatic cloud, or pushing one, makes one.'));
			const pending = list.some((j) => j.state === 'pending');
			updated.textContent = `Updated ${new Date().toLocaleTimeString()}${pending ? ', refreshing every 2 s while jobs are pending' : ''}.`;
			if (pending) timer = setTimeout(load, POLL_MS);
		} catch (err) {
			if (gone || mine !== seq) return;
			showError(err);
			// a passing network failure should not end the refresh: try again, slower
			if (err?.status === 0) timer = setTimeout(load, POLL_MS * 3);
		}
	}

	clear(root, h('h1', {}, 'Jobs'),
		h('p', { class: 'inline' }, h('label', { for: 'jobs-state' }, 'Show'), filter),
		slot, updated);
	load();
	return () => {
		gone = true;
		clearTimeout(timer);
	};
}
