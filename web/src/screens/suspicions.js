// SPDX-License-Identifier: Apache-2.0
// #/suspicions: the tenant's suspected clones (GET /api/v1/suspicions), newest first, each
// linking to its device, and the clone policy (GET /api/v1/clone-policy), which admins change
// here (PUT). Also the words for a suspicion that the device screen uses.
import { get, put } from '../api.js';
import { h, clear, table, td, when, seg, loading, fields } from '../dom.js';
import { showError, clearError, isAdmin } from '../session.js';

const RULES = {
	'concurrent-origins': 'Active from several networks at once',
	'superseded-certificate': 'Used a certificate that was replaced',
	'enrollment-rate': 'Enrolled more often than renewing needs',
};

export const ruleText = (rule) => RULES[rule] ?? String(rule ?? '');

// ['a', 'b', 'c'] → 'a, b and c'
function listText(xs) {
	const a = (Array.isArray(xs) ? xs : []).map(String);
	return a.length < 2 ? a.join('') : `${a.slice(0, -1).join(', ')} and ${a[a.length - 1]}`;
}

// A suspicion's detail (docs/console.md) as a sentence.
export function detailText(s) {
	const d = s.detail ?? {};
	switch (s.rule) {
	case 'concurrent-origins':
		return `Seen from ${listText(d.networks)} in turn: back on a network it had left ${d.returns} times within ${d.window} s.`;
	case 'superseded-certificate':
		return `Showed certificate serial ${d.serial} from ${d.origin} at ${when(d.seenAt)}, after serial ${d.supersededBy} replaced it at ${when(d.supersededAt)}.`;
	case 'enrollment-rate':
		return `Enrolled ${d.enrollments} times since ${when(d.since)} (at most ${d.max}), the last from ${d.origin}.`;
	default:
		return JSON.stringify(d);
	}
}

export const quarantinedText = (s) => (s.quarantined ? 'yes: revoked' : 'no');

const MODES = [
	['off', 'off: no checks'],
	['flag', 'flag: mark suspected clones'],
	['quarantine', 'quarantine: mark and revoke them'],
];

// The policy's numbers: [member, label, hint]
const NUMBERS = [
	['window', 'Window (seconds)', 'How far back sightings count.'],
	['minReturns', 'Returns before a suspicion', 'How often the device must come back to a network it left within the window.'],
	['prefixV4', 'IPv4 network (prefix bits)', 'Addresses in one such network count as one place (a NAT pool).'],
	['prefixV6', 'IPv6 network (prefix bits)', ''],
	['supersededGrace', 'Grace for a replaced certificate (seconds)', 'How long a certificate may still be seen after its renewal.'],
	['maxEnrollments', 'Enrollments per half certificate life', 'More than this many is a suspicion.'],
];

function policyFields(p) {
	return fields('clone-policy', [
		['Mode', 'mode', (MODES.find(([m]) => m === p.mode) ?? [p.mode, String(p.mode)])[1]],
		...NUMBERS.map(([key, label]) => [label, key, String(p[key] ?? '')]),
	]);
}

// An admin's form: every member is sent, since those left out would take their defaults.
function policyForm(p, signal, render) {
	const mode = h('select', { id: 'cp-mode', name: 'mode', 'aria-describedby': 'cp-mode-hint' },
		MODES.map(([m, label]) => h('option', { value: m, selected: m === p.mode }, label)));
	const inputs = NUMBERS.map(([key, label, hint]) => {
		const input = h('input', {
			id: `cp-${key}`, name: key, type: 'number', step: '1', required: true, inputmode: 'numeric',
			'aria-describedby': hint ? `cp-${key}-hint` : null,
		});
		input.value = String(p[key] ?? '');
		return { key, input, el: h('div', { class: 'field' }, h('label', { for: `cp-${key}` }, label), input,
			hint ? h('p', { id: `cp-${key}-hint`, class: 'hint' }, hint) : null) };
	});
	const save = h('button', { id: 'policy-save', type: 'submit', class: 'primary' }, 'Save policy');
	const error = h('p', { id: 'policy-error', class: 'error', role: 'alert' });
	const saved = h('p', { id: 'policy-saved', class: 'hint', role: 'status' });

	async function send(ev) {
		ev.preventDefault();
		clearError(error);
		saved.textContent = '';
		const body = { mode: mode.value };
		for (const { key, input } of inputs) body[key] = Number(input.value);
		save.disabled = true;
		try {
			const r = await put('/api/v1/clone-policy', body, { signal });
			render(r, `Saved at ${new Date().toLocaleTimeString()}.`);
		} catch (err) {
			showError(err, error);
			save.disabled = false;
		}
	}

	return h('form', { id: 'policy-form', on: { submit: send } },
		h('div', { class: 'field' }, h('label', { for: 'cp-mode' }, 'Mode'), mode,
			h('p', { id: 'cp-mode-hint', class: 'hint' }, 'Quarantine revokes a suspected clone (keyCompromise) at once.')),
		h('div', { class: 'policy-numbers' }, inputs.map((i) => i.el)),
		h('div', { class: 'actions' }, save), error, saved);
}

export function suspicions(root, params, signal) {
	const slot = h('div', {}, loading('suspicions'));
	const policy = h('div', {}, loading('the clone policy'));
	const pageInfo = h('span', { class: 'hint', 'aria-live': 'polite' });
	const older = h('button', { id: 'suspicions-older', type: 'button', disabled: true, on: { click: () => show(shown - 1) } }, '← Older');
	const newer = h('button', { id: 'suspicions-newer', type: 'button', disabled: true, on: { click: () => show(shown + 1) } }, 'Newer →');
	// The API pages oldest first: cursors[i] is the after= of page i; the screen opens on the
	// last page that has any, shown newest first.
	const cursors = [0];
	let shown = 0;

	const page = (i) => get(`/api/v1/suspicions${cursors[i] ? `?after=${cursors[i]}` : ''}`, { signal });

	function draw(list) {
		clear(slot, table('suspicions', ['When', 'Device', 'Rule', 'What was seen', 'Quarantined'],
			[...list].reverse().map((s) => h('tr', { dataset: { suspicion: s.id, udid: s.udid, rule: s.rule } },
				td('at', when(s.at)),
				td('udid', h('a', { href: `#/devices/${seg(s.udid)}`, class: 'mono' }, s.udid)),
				td('rule', ruleText(s.rule)),
				td('detail', detailText(s)),
				td('quarantined', quarantinedText(s)))),
			'No suspected clone: no device has been seen where another copy of it was.'));
		pageInfo.textContent = cursors.length > 1 ? `Page ${shown + 1} of ${cursors.length}` : '';
		pagerState();
	}

	function pagerState() {
		older.disabled = shown === 0;
		newer.disabled = shown === cursors.length - 1;
	}

	async function show(i) {
		older.disabled = newer.disabled = true;
		try {
			const r = await page(i);
			shown = i;
			draw(r.suspicions ?? []);
		} catch (err) {
			showError(err); // the page shown stays, and so does the way to others
			pagerState();
		}
	}

	async function newest() {
		try {
			let r = await page(0);
			while (r.next !== null && r.next !== undefined) {
				cursors.push(r.next);
				const after = await page(cursors.length - 1);
				if (!(after.suspicions ?? []).length) { // the last page was exactly full
					cursors.pop();
					break;
				}
				r = after;
			}
			shown = cursors.length - 1;
			draw(r.suspicions ?? []);
		} catch (err) {
			clear(slot);
			showError(err);
		}
	}

	function renderPolicy(p, notice) {
		if (!isAdmin()) {
			clear(policy, policyFields(p), h('p', { class: 'hint' }, 'Your company\'s admins change the policy.'));
			return;
		}
		clear(policy, policyForm(p, signal, renderPolicy));
		if (notice) policy.querySelector('#policy-saved').textContent = notice;
	}

	clear(root, h('h1', {}, 'Suspected clones'),
		h('section', { class: 'card' }, h('h2', {}, 'Suspicions'),
			h('p', { class: 'hint' }, 'A device seen where it cannot be, or with a certificate it should no longer have, is suspected of being a copy. Newest first.'),
			slot,
			h('div', { class: 'pager' }, older, pageInfo, newer)),
		h('section', { class: 'card' }, h('h2', {}, 'Clone policy'), policy));
	newest();
	get('/api/v1/clone-policy', { signal }).then((p) => renderPolicy(p)).catch((err) => { clear(policy); showError(err); });
}
