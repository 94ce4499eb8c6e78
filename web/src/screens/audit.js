// SPDX-License-Identifier: Apache-2.0
// #/audit (admins): whether the tenant's hash-chained audit trail is intact, and its records
// page by page (after=SEQ).
import { get } from '../api.js';
import { h, clear, table, td, when, loading } from '../dom.js';
import { showError } from '../session.js';

// A record's detail in one short line: key=value pairs, each value cut at 60 characters (a
// CA's certificate is a detail too); the whole JSON is the cell's tooltip.
const cut = (t, n) => (t.length > n ? `${t.slice(0, n - 1)}…` : t);
function detailText(d) {
	if (d === undefined || d === null) return '';
	if (typeof d !== 'object' || Array.isArray(d)) return cut(typeof d === 'string' ? d : JSON.stringify(d), 200);
	return Object.entries(d).map(([k, v]) =>
		`${k}=${cut(typeof v === 'string' ? v : JSON.stringify(v), 60)}`).join(', ');
}

export function audit(root, params, signal) {
	const status = h('p', { id: 'audit-status', role: 'status', class: 'card' }, 'Checking the chain…');
	const slot = h('div', {}, loading('audit records'));
	const more = h('button', { id: 'audit-more', type: 'button', hidden: true, on: { click: () => load(next) } }, 'More records');
	let rows = [];
	let next = null;

	get('/api/v1/audit/verify', { signal }).then((v) => {
		status.dataset.ok = String(!!v.ok);
		status.className = `card ${v.ok ? 'ok' : 'bad'}`;
		status.textContent = v.ok
			? `chain intact, ${v.records} records`
			: `chain broken at record ${v.brokenAt} (of ${v.records})${v.message ? `: ${v.message}` : ''}`;
		if (v.ok && v.head) status.title = `head ${v.head}`;
	}).catch((err) => {
		status.textContent = 'The chain could not be checked.';
		showError(err);
	});

	async function load(after) {
		more.disabled = true;
		try {
			const r = await get(`/api/v1/audit${after ? `?after=${encodeURIComponent(after)}` : ''}`, { signal });
			rows = rows.concat(r.records ?? []);
			next = r.next ?? null;
			clear(slot, table('audit', ['#', 'When', 'Who', 'Action', 'Object', 'Detail'],
				rows.map((a) => h('tr', { dataset: { seq: a.seq } },
					td('seq', a.seq), td('at', when(a.time)), td('actor', a.actor ?? ''),
					td('action', a.action ?? ''), td('object', a.object ?? ''),
					h('td', { dataset: { field: 'detail' }, title: a.detail ? cut(JSON.stringify(a.detail), 2000) : null },
						h('span', { class: 'mono small' }, detailText(a.detail))))),
				'No audit records yet.'));
			more.hidden = next === null;
		} catch (err) {
			clear(slot);
			showError(err);
		} finally {
			more.disabled = false;
		}
	}

	clear(root, h('h1', {}, 'Audit trail'), status, slot, more);
	load(null);
}
