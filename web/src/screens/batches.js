// SPDX-License-Identifier: Apache-2.0
// #/batches: the company's batches, newest API page first, with "More" for the next page.
import { get } from '../api.js';
import { h, clear, table, td, when, batchPath, loading } from '../dom.js';
import { showError } from '../session.js';
import { go } from '../router.js';

// The API's word ("claimed" or "transfer"), as tests read it; the title explains it.
export function stateText(b) {
	const s = b.state ?? 'claimed';
	return h('span', { title: s === 'transfer' ? 'A transfer code is out: the batch is yours until it is used' : 'Your company owns it' }, s);
}

function devicesText(d) {
	if (!d) return '';
	return d.revoked ? `${d.active} active, ${d.revoked} revoked` : `${d.active} active`;
}

export function batches(root, params, signal) {
	const slot = h('div', {}, loading('batches'));
	const more = h('button', { type: 'button', id: 'batches-more', hidden: true, on: { click: () => load(next) } }, 'More batches');
	let rows = [];
	let next = null;

	const row = (b) => {
		const id = `${b.vendor}/${b.batch}`;
		const href = `#/batches/${batchPath(b.vendor, b.batch)}`;
		return h('tr', { dataset: { batch: id }, class: 'link', on: { click: (ev) => { if (!ev.target.closest('a')) go(href); } } },
			td('batch', h('a', { href }, id)),
			td('partNumber', b.partNumber ?? ''),
			td('count', b.count ?? ''),
			td('state', stateText(b)),
			td('devices', devicesText(b.devices)),
			td('claimedAt', when(b.claimedAt)));
	};

	async function load(after) {
		more.disabled = true;
		try {
			const q = after ? `?after=${encodeURIComponent(after)}` : '';
			const r = await get(`/api/v1/batches${q}`, { signal });
			rows = rows.concat(r.batches ?? []);
			next = r.next ?? null;
			clear(slot, table('batches', ['Batch', 'Part number', 'Devices', 'State', 'Active / revoked', 'Claimed'],
				rows.map(row), 'No batches yet: claim a reel to add its batch.'));
			more.hidden = next === null;
		} catch (err) {
			clear(slot);
			showError(err);
		} finally {
			more.disabled = false;
		}
	}

	clear(root, h('h1', {}, 'Batches'), slot, more);
	load(null);
}
