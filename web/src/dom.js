// SPDX-License-Identifier: Apache-2.0
// The only way the console builds its DOM: createElement, textContent and setAttribute.
// Nothing here parses HTML, so every string from the server renders as text. Attributes
// that could run script (on*, style, srcdoc) are refused; href/src accept only relative
// URLs and http(s): anything else becomes "#".

const forbidden = /^(on|style$|srcdoc$|formaction$)/i;
const props = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'required', 'readOnly', 'multiple']);

export function safeUrl(url) {
	const s = String(url).trim();
	if (/^(#|\/(?!\/)|https?:\/\/)/i.test(s)) return s;
	if (!/^[^/?#]*:/.test(s) && !s.startsWith('//')) return s; // relative, no scheme
	return '#';
}

// h('a', {href: '#/x', on: {click: fn}, dataset: {batch: 'A/B'}}, 'text', child, [more])
export function h(tag, attrs, ...children) {
	const el = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs ?? {})) {
		if (v === undefined || v === null || v === false) continue;
		if (k === 'on') {
			for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
		} else if (k === 'dataset') {
			for (const [dk, dv] of Object.entries(v))
				if (dv !== undefined && dv !== null) el.dataset[dk] = String(dv);
		} else if (k === 'class') {
			el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : String(v);
		} else if (props.has(k)) {
			el[k] = v;
		} else if (forbidden.test(k)) {
			throw new Error(`h: attribute ${k} is not allowed`);
		} else {
			const s = v === true ? '' : String(v);
			el.setAttribute(k, k === 'href' || k === 'src' ? safeUrl(s) : s);
		}
	}
	append(el, children);
	return el;
}

function append(el, children) {
	for (const c of children) {
		if (c === undefined || c === null || c === false) continue;
		if (Array.isArray(c)) append(el, c);
		else if (c instanceof Node) el.appendChild(c);
		else el.appendChild(document.createTextNode(String(c)));
	}
}

export function clear(el, ...children) {
	while (el.firstChild) el.removeChild(el.firstChild);
	append(el, children);
	return el;
}

export function $(sel, root = document) {
	return root.querySelector(sel);
}

// An RFC 3339 time from the API (or null) as a date in the browser's time zone.
export function when(rfc3339) {
	if (rfc3339 === undefined || rfc3339 === null || rfc3339 === '') return '';
	const d = new Date(rfc3339);
	return Number.isNaN(d.getTime()) ? String(rfc3339) : d.toLocaleString();
}

// A path segment of the API or of a hash route, taken from data.
export const seg = (s) => encodeURIComponent(String(s));

// A "VENDOR/BATCH" pair as its two encoded path segments.
export const batchPath = (vendor, batch) => `${seg(vendor)}/${seg(batch)}`;

// A table with a header row; rows are <tr> elements (or null, skipped). An empty body shows
// the empty message in one wide cell.
export function table(id, headings, rows, empty) {
	const body = rows.filter(Boolean);
	return h('div', { class: 'table-wrap' },
		h('table', { id },
			h('thead', {}, h('tr', {}, headings.map((t) => h('th', { scope: 'col' }, t)))),
			h('tbody', {}, body.length ? body
				: h('tr', { class: 'empty' }, h('td', { colspan: headings.length }, empty ?? 'Nothing here yet.')))));
}

export const td = (field, ...children) => h('td', field ? { dataset: { field } } : {}, ...children);

export const loading = (what) => h('p', { class: 'loading', role: 'status' }, `Loading ${what}…`);

// A definition list of [label, field, value] rows for one object.
export function fields(id, rows) {
	return h('dl', { id, class: 'fields' },
		rows.filter(Boolean).map(([label, field, value]) => [
			h('dt', {}, label),
			h('dd', { dataset: { field } }, value ?? ''),
		]));
}

// Asks in dialog#confirm (one per page, made by main.js); resolves true for #confirm-ok.
export function confirmDialog(message, okLabel = 'OK') {
	const dlg = document.getElementById('confirm');
	clear(dlg.querySelector('.confirm-message'), message);
	dlg.querySelector('#confirm-ok').textContent = okLabel;
	return new Promise((resolve) => {
		let answer = false;
		const ok = () => { answer = true; dlg.close(); };
		const cancel = () => dlg.close();
		const closed = () => {
			dlg.querySelector('#confirm-ok').removeEventListener('click', ok);
			dlg.querySelector('#confirm-cancel').removeEventListener('click', cancel);
			dlg.removeEventListener('close', closed);
			resolve(answer);
		};
		dlg.querySelector('#confirm-ok').addEventListener('click', ok);
		dlg.querySelector('#confirm-cancel').addEventListener('click', cancel);
		dlg.addEventListener('close', closed);
		dlg.showModal();
		dlg.querySelector('#confirm-cancel').focus();
	});
}
