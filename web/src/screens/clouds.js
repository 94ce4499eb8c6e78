// SPDX-License-Identifier: Apache-2.0
// #/clouds, #/clouds/new, #/clouds/NAME (admins): the product-cloud connectors. One form per
// type with one input per config key (docs/connectors.md); secrets are write-only: the API
// says only "<key>Set", and an empty secret input sends nothing for that key.
import { get, post, put, del } from '../api.js';
import { h, clear, table, td, seg, loading, confirmDialog } from '../dom.js';
import { showError, clearError } from '../session.js';
import { go } from '../router.js';

const text = (key, label, more = {}) => ({ key, label, kind: 'text', ...more });
const secret = (key, label, more = {}) => ({ key, label, kind: 'secret', ...more });

// The config keys the form edits, per type; keys it does not show are kept on save.
export const TYPES = {
	webhook: [
		text('url', 'Receiver URL', { required: true, input: 'url', placeholder: 'https://cloud.example/devid/events' }),
		secret('secret', 'HMAC secret', { required: true, hint: 'Signs every push (X-Devid-Signature).' }),
	],
	cirrent: [
		text('url', 'Receiver URL', { required: true, input: 'url', hint: 'Pushes are signed with devid\'s interop key (GET /api/v1/interop-key).' }),
	],
	'aws-iot': [
		text('region', 'Region', { required: true, placeholder: 'eu-west-1' }),
		text('endpoint', 'Endpoint', { input: 'url', hint: 'Default https://iot.<region>.amazonaws.com' }),
		text('accessKeyId', 'Access key ID', { required: true }),
		secret('secretAccessKey', 'Secret access key', { required: true }),
		secret('sessionToken', 'Session token', { hint: 'Only for temporary (STS) credentials.' }),
		text('policyName', 'IoT policy name', { required: true }),
		text('thingPrefix', 'Thing name prefix', { hint: 'Thing name = prefix + UDID.' }),
		text('thingType', 'Thing type'),
	],
	'azure-dps': [
		text('endpoint', 'DPS endpoint', { required: true, input: 'url', placeholder: 'https://NAME.azure-devices-provisioning.net' }),
		text('policyName', 'Shared access policy', { required: true }),
		secret('policyKey', 'Policy key', { required: true }),
		{ key: 'iotHubs', label: 'IoT hubs', kind: 'list', hint: 'Host names, separated by commas.' },
		{ key: 'allocationPolicy', label: 'Allocation policy', kind: 'select', options: ['', 'hashed', 'geoLatency', 'static'] },
		text('apiVersion', 'API version', { placeholder: '2021-10-01' }),
	],
	mosquitto: [
		text('host', 'Broker host', { required: true }),
		{ key: 'port', label: 'Port', kind: 'number', required: true, min: 1, max: 65535 },
		{ key: 'tls', label: 'TLS', kind: 'bool', hint: 'Default: on when a CA is given.' },
		{ key: 'ca', label: 'CA certificates (PEM)', kind: 'textarea' },
		text('username', 'Dynsec admin username', { required: true }),
		secret('password', 'Dynsec admin password'),
		text('role', 'Dynsec role for devices', { required: true }),
	],
};
const COMMON = [{ key: 'ratePerSecond', label: 'Requests a second', kind: 'number', min: 1, hint: 'Optional: what the cloud accepts.' }];

function target(c) {
	const k = c.config ?? {};
	if (k.url || k.endpoint) return k.url || k.endpoint;
	if (k.host) return k.port ? `${k.host}:${k.port}` : k.host;
	return k.region ?? '';
}

export function clouds(root, params, signal) {
	const slot = h('div', {}, loading('product clouds'));
	clear(root, h('h1', {}, 'Product clouds'),
		h('p', {}, h('a', { id: 'connector-new', href: '#/clouds/new', class: 'button primary' }, 'Add a product cloud')),
		slot);
	get('/api/v1/connectors', { signal }).then((r) => {
		clear(slot, table('connectors', ['Name', 'Type', 'Mode', 'Where'],
			(r.connectors ?? []).map((c) => h('tr', { dataset: { connector: c.name } },
				td('name', h('a', { href: `#/clouds/${seg(c.name)}` }, c.name)),
				td('type', c.type), td('mode', c.mode), td('target', target(c)))),
			'No product cloud yet: add one to push claimed devices into it.'));
	}).catch((err) => { clear(slot); showError(err); });
}

function fieldInput(f, type, value, isSet) {
	const id = `cf-${type}-${f.key}`;
	const name = `config.${f.key}`;
	const hintId = `${id}-hint`;
	let input;
	if (f.kind === 'select' || f.kind === 'bool') {
		const opts = f.kind === 'bool' ? [['', 'default'], ['true', 'on'], ['false', 'off']]
			: f.options.map((o) => [o, o || 'default']);
		const cur = value === undefined || value === null ? '' : String(value);
		input = h('select', { id, name }, opts.map(([v, t]) => h('option', { value: v, selected: v === cur }, t)));
	} else if (f.kind === 'textarea') {
		input = h('textarea', { id, name, rows: 4, spellcheck: 'false' });
		input.value = value ?? '';
	} else {
		input = h('input', {
			id, name, autocomplete: f.kind === 'secret' ? 'new-password' : 'off', spellcheck: 'false',
			type: f.kind === 'secret' ? 'password' : f.kind === 'number' ? 'number' : f.input ?? 'text',
			min: f.min, max: f.max, placeholder: f.kind === 'secret' && isSet ? '(stored: leave empty to keep)' : f.placeholder,
			required: f.required && !(f.kind === 'secret' && isSet),
		});
		input.value = value === undefined || value === null ? '' : Array.isArray(value) ? value.join(', ') : String(value);
	}
	const hint = f.kind === 'secret'
		? (isSet ? 'Stored (write-only). Leave empty to keep it, or type a new one.' : f.hint ?? 'Write-only: never shown again.')
		: f.hint;
	if (hint) input.setAttribute('aria-describedby', hintId);
	return h('div', { class: 'field' },
		h('label', { for: id }, f.label, f.required ? '' : h('span', { class: 'optional' }, ' (optional)')),
		input,
		hint ? h('p', { id: hintId, class: 'hint' }, hint) : null);
}

export function cloudForm(root, { name }, signal) {
	const isNew = name === undefined;
	const slot = h('div', {}, isNew ? null : loading('the product cloud'));
	clear(root,
		h('p', { class: 'crumbs' }, h('a', { href: '#/clouds' }, 'Product clouds'), ' / '),
		h('h1', {}, isNew ? 'Add a product cloud' : name),
		slot);
	if (isNew) render(null);
	else get(`/api/v1/connectors/${seg(name)}`, { signal }).then(render).catch((err) => { clear(slot); showError(err); });

	function render(c, notice) {
		const original = c?.config ?? {};
		const nameIn = h('input', {
			id: 'cf-name', name: 'name', required: true, autocomplete: 'off', spellcheck: 'false',
			autocapitalize: 'characters', pattern: '[A-Z0-9.\\-]{1,64}', readOnly: !isNew,
			'aria-describedby': 'cf-name-hint',
		});
		nameIn.value = c?.name ?? '';
		const typeSel = h('select', { id: 'cf-type', name: 'type', on: { change: () => drawFields() } },
			Object.keys(TYPES).map((t) => h('option', { value: t, selected: t === (c?.type ?? 'webhook') }, t)));
		const modeSel = h('select', { id: 'cf-mode', name: 'mode', 'aria-describedby': 'cf-mode-hint' },
			h('option', { value: 'auto', selected: (c?.mode ?? 'auto') === 'auto' }, 'auto'),
			h('option', { value: 'manual', selected: c?.mode === 'manual' }, 'manual'));
		const configBox = h('fieldset', { class: 'config' });
		const saved = h('p', { class: 'hint', role: 'status' }, notice ?? '');
		const error = h('p', { class: 'error', role: 'alert' });
		const testOut = h('p', { id: 'connector-test-result', role: 'status', 'aria-live': 'polite' });
		const save = h('button', { id: 'connector-save', type: 'submit', class: 'primary' }, isNew ? 'Add' : 'Save');
		const test = h('button', { id: 'connector-test', type: 'button', disabled: isNew, on: { click: doTest } }, 'Test connection');
		const remove = h('button', { id: 'connector-delete', type: 'button', class: 'danger', disabled: isNew, on: { click: doDelete } }, 'Delete');

		function drawFields() {
			const type = typeSel.value;
			const same = c && c.type === type;
			clear(configBox, h('legend', {}, `${type} settings`),
				[...TYPES[type], ...COMMON].map((f) => fieldInput(f, type,
					same ? original[f.key] : undefined,
					same && f.kind === 'secret' && original[`${f.key}Set`] === true)));
		}

		function collect() {
			const type = typeSel.value;
			const config = {};
			if (c && c.type === type) { // keep the keys this form does not show (attributes, rates, initialTwin…)
				for (const [k, v] of Object.entries(original)) if (!/Set$/.test(k)) config[k] = v;
			}
			for (const f of [...TYPES[type], ...COMMON]) {
				const el = configBox.querySelector(`[name="config.${f.key}"]`);
				const raw = el.value.trim();
				delete config[f.key];
				if (raw === '') continue; // empty: absent (for a stored secret: unchanged)
				if (f.kind === 'number') config[f.key] = Number(raw);
				else if (f.kind === 'bool') config[f.key] = raw === 'true';
				else if (f.kind === 'list') config[f.key] = raw.split(/[\s,]+/).filter(Boolean);
				else if (f.kind === 'textarea' || f.kind === 'secret') config[f.key] = el.value;
				else config[f.key] = raw;
			}
			return { type, mode: modeSel.value, config };
		}

		async function doSave(ev) {
			ev.preventDefault();
			clearError(error);
			saved.textContent = '';
			const body = collect();
			save.disabled = true;
			try {
				if (isNew) {
					const n = nameIn.value.trim();
					await post('/api/v1/connectors', { name: n, ...body }, { signal });
					go(`#/clouds/${seg(n)}`);
				} else {
					const r = await put(`/api/v1/connectors/${seg(name)}`, body, { signal });
					render(r, `Saved at ${new Date().toLocaleTimeString()}.`);
				}
			} catch (err) {
				showError(err, error);
			} finally {
				save.disabled = false;
			}
		}

		async function doTest() {
			test.disabled = true;
			clearError(error);
			delete testOut.dataset.ok;
			testOut.className = '';
			testOut.textContent = 'Asking the cloud…';
			try {
				const r = await post(`/api/v1/connectors/${seg(name)}/test`, {}, { signal });
				testOut.dataset.ok = String(!!r.ok);
				testOut.className = r.ok ? 'ok-text' : 'error';
				testOut.textContent = `${r.ok ? 'ok' : 'failed'}: ${r.message ?? ''}`;
			} catch (err) {
				testOut.dataset.ok = 'false';
				testOut.className = 'error';
				testOut.textContent = `failed: ${err.message}`;
				showError(err);
			} finally {
				test.disabled = false;
			}
		}

		async function doDelete() {
			const ok = await confirmDialog(`Delete the product cloud ${name}? Its pending jobs stop; devices already in the cloud stay there.`, 'Delete');
			if (!ok) return;
			remove.disabled = true;
			try {
				await del(`/api/v1/connectors/${seg(name)}`, { signal });
				go('#/clouds');
			} catch (err) {
				showError(err, error);
				remove.disabled = false;
			}
		}

		drawFields();
		clear(slot,
			h('form', { id: 'connector-form', class: 'card', novalidate: false, on: { submit: doSave } },
				h('div', { class: 'field' }, h('label', { for: 'cf-name' }, 'Name'), nameIn,
					h('p', { id: 'cf-name-hint', class: 'hint' }, isNew ? 'Capital letters, digits, "." and "-".' : 'A product cloud keeps its name.')),
				h('div', { class: 'field' }, h('label', { for: 'cf-type' }, 'Type'), typeSel),
				h('div', { class: 'field' }, h('label', { for: 'cf-mode' }, 'Mode'), modeSel,
					h('p', { id: 'cf-mode-hint', class: 'hint' }, 'auto: push each batch when it is claimed; manual: only when you push it from the batch page.')),
				configBox,
				h('div', { class: 'actions' }, save, test, remove),
				isNew ? h('p', { class: 'hint' }, 'Add the cloud first, then test its connection.') : h('p', { class: 'hint' }, 'Test connection uses the saved settings.'),
				error, testOut),
			saved);
	}
}
