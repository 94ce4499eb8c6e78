// SPDX-License-Identifier: Apache-2.0
// #/batches/VENDOR/BATCH: one batch, its devices (cursor-paged, searchable) and, for admins,
// the manifest downloads, a provisioning trigger, transfer and release.
import { get, post } from '../api.js';
import { h, clear, table, td, when, seg, batchPath, loading, fields, confirmDialog } from '../dom.js';
import { showError, clearError, isAdmin } from '../session.js';
import { stateText } from './batches.js';
import { go } from '../router.js';

const PAGE = 50;

export function batch(root, { vendor, batch: name }, signal) {
	const id = `${vendor}/${name}`;
	const api = `/api/v1/batches/${batchPath(vendor, name)}`;
	const info = h('div', {}, loading('the batch'));
	const admin = h('div', {});
	const devices = h('div', {}, loading('devices'));
	const pageInfo = h('span', { class: 'hint', 'aria-live': 'polite' });
	const prev = h('button', { id: 'prev-page', type: 'button', disabled: true, on: { click: () => page(-1) } }, '← Previous');
	const nextBtn = h('button', { id: 'next-page', type: 'button', disabled: true, on: { click: () => page(1) } }, 'Next →');
	const search = h('input', {
		id: 'device-search', type: 'search', autocomplete: 'off', spellcheck: 'false',
		placeholder: 'UDID (4+ hex digits) or chip serial', on: { input: searchSoon },
	});
	// cursors[i]: the after= of page i (page 0: none); next: the API's cursor past this page
	let cursors = [null];
	let pageNo = 0;
	let next = null;
	let timer = 0;
	let seq = 0;

	function searchSoon() {
		clearTimeout(timer);
		timer = setTimeout(() => {
			cursors = [null];
			pageNo = 0;
			loadDevices();
		}, 300);
	}

	function page(d) {
		if (d > 0 && next === null) return;
		if (d > 0) {
			cursors[pageNo + 1] = next;
			pageNo++;
		} else if (pageNo > 0) {
			pageNo--;
		}
		loadDevices();
	}

	async function loadDevices() {
		const mine = ++seq;
		const qs = new URLSearchParams({ batch: id, limit: String(PAGE) });
		const after = cursors[pageNo];
		if (after !== null && after !== undefined) qs.set('after', String(after));
		const q = search.value.trim();
		if (q) qs.set('q', q);
		prev.disabled = nextBtn.disabled = true;
		try {
			const r = await get(`/api/v1/devices?${qs}`, { signal });
			if (mine !== seq) return;
			next = r.next ?? null;
			const list = r.devices ?? [];
			clear(devices, table('batch-devices', ['UDID', 'Chip serial', 'State'], list.map((d) =>
				h('tr', { dataset: { udid: d.udid } },
					td('udid', h('a', { href: `#/devices/${seg(d.udid)}`, class: 'mono' }, d.udid)),
					td('serial', d.serial ?? ''),
					td('state', d.state ?? ''))),
			q ? 'No device of this batch matches the search.' : 'This batch has no devices.'));
			const from = list.length ? pageNo * PAGE + 1 : 0;
			pageInfo.textContent = list.length ? `Devices ${from}–${from + list.length - 1}` : '';
			prev.disabled = pageNo === 0;
			nextBtn.disabled = next === null;
		} catch (err) {
			if (mine !== seq) return;
			clear(devices);
			showError(err);
			prev.disabled = pageNo === 0;
		}
	}

	function downloads() {
		const base = `${api}/manifest?format=`;
		const file = `${vendor}-${name}`.replace(/[^A-Za-z0-9._-]/g, '_');
		return h('p', { class: 'downloads' }, 'Manifest: ',
			h('a', { id: 'download-csv', href: `${base}csv`, download: `${file}.csv`, class: 'button' }, 'CSV'), ' ',
			h('a', { id: 'download-pem', href: `${base}pem`, download: `${file}.pem`, class: 'button' }, 'PEM certificates'), ' ',
			h('a', { id: 'download-json', href: `${base}json`, download: `${file}.json`, class: 'button' }, 'Signed JSON'));
	}

	async function provisionBox() {
		const out = h('p', { class: 'hint', role: 'status' });
		const select = h('select', { id: 'provision-connector', name: 'connector' });
		const submit = h('button', { id: 'provision-submit', type: 'submit', disabled: true }, 'Push to cloud');
		const box = h('form', { class: 'row-form', on: { submit: send } },
			h('label', { for: 'provision-connector' }, 'Push this batch\'s devices into a product cloud'),
			h('div', { class: 'inline' }, select, submit), out);
		async function send(ev) {
			ev.preventDefault();
			if (!select.value) return;
			submit.disabled = true;
			clearError(out);
			try {
				const r = await post('/api/v1/provision', { connector: select.value, batch: id }, { signal });
				clear(out, `Queued ${r.jobs} job${r.jobs === 1 ? '' : 's'} for ${r.connector}: follow it on `, h('a', { href: '#/jobs' }, 'Jobs'), '.');
			} catch (err) {
				showError(err, out);
			} finally {
				submit.disabled = false;
			}
		}
		get('/api/v1/connectors', { signal }).then((r) => {
			const list = (r.connectors ?? []).slice().sort((a, b) =>
				(a.mode === 'manual' ? 0 : 1) - (b.mode === 'manual' ? 0 : 1) || a.name.localeCompare(b.name));
			if (!list.length) {
				select.appendChild(h('option', { value: '' }, 'no product clouds'));
				clear(out, 'No product cloud is set up: add one under ', h('a', { href: '#/clouds/new' }, 'Clouds'), '.');
				return;
			}
			for (const c of list) select.appendChild(h('option', { value: c.name }, `${c.name} (${c.type}, ${c.mode})`));
			submit.disabled = false;
		}).catch((err) => showError(err, out));
		return box;
	}

	function ownerActions(b) {
		const out = h('div', { class: 'result-slot', 'aria-live': 'polite' });
		const transfer = h('button', { id: 'transfer', type: 'button', on: { click: doTransfer } }, 'Transfer to another company');
		const release = h('button', { id: 'release', type: 'button', class: 'danger', on: { click: doRelease } }, 'Release');
		async function doTransfer() {
			const ok = await confirmDialog(`Make a one-time transfer code for ${id}? The batch stays yours until the next owner claims it with the code; then your certificates for its devices are revoked.`, 'Make transfer code');
			if (!ok) return;
			transfer.disabled = true;
			clearError();
			try {
				const r = await post(`${api}/transfer`, {}, { signal });
				clear(out, h('div', { class: 'card ok' },
					h('p', {}, 'Give this code to the next owner (it works once; a new code replaces it):'),
					h('code', { id: 'transfer-code', class: 'code-box' }, r.code)));
				load(false);
			} catch (err) {
				showError(err);
			} finally {
				transfer.disabled = false;
			}
		}
		async function doRelease() {
			const ok = await confirmDialog(`Release ${id}? It stops being your company's, your operational certificates for its devices are revoked, and pending pushes stop. The label's code can claim it again.`, 'Release batch');
			if (!ok) return;
			release.disabled = true;
			clearError();
			try {
				await post(`${api}/release`, {}, { signal });
				go('#/batches');
			} catch (err) {
				showError(err);
				release.disabled = false;
			}
		}
		return h('div', { class: 'actions' }, transfer, release, out);
	}

	async function load(withAdmin = true) {
		try {
			const b = await get(api, { signal });
			const d = b.devices ?? {};
			clear(info, fields('batch', [
				['Batch', 'batch', id],
				['Part number', 'partNumber', b.partNumber ?? ''],
				['Devices', 'count', b.count ?? ''],
				['State', 'state', stateText(b)],
				b.devices ? ['Active / revoked', 'devices', `${d.active ?? 0} / ${d.revoked ?? 0}`] : null,
				['Claimed', 'claimedAt', when(b.claimedAt)],
				['Source', 'source', b.source ?? ''],
				b.signer ? ['Manifest signer', 'signer', b.signer.signer] : null,
			]));
			if (withAdmin && isAdmin()) {
				clear(admin, h('section', { class: 'card' }, h('h2', {}, 'Manage'),
					downloads(), await provisionBox(), ownerActions(b)));
			}
		} catch (err) {
			clear(info);
			showError(err);
		}
	}

	clear(root,
		h('p', { class: 'crumbs' }, h('a', { href: '#/batches' }, 'Batches'), ' / '),
		h('h1', {}, id),
		info,
		admin,
		h('section', { class: 'card' },
			h('h2', {}, 'Devices'),
			h('label', { for: 'device-search' }, 'Search'), search,
			devices,
			h('div', { class: 'pager' }, prev, pageInfo, nextBtn)));
	load();
	loadDevices();
	return () => clearTimeout(timer);
}
