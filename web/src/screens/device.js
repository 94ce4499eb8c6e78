// SPDX-License-Identifier: Apache-2.0
// #/devices/UDID: one device's birth certificate, its batch, whether it is a suspected clone
// and why, what each product cloud did with it, its operational certificates and (admins)
// revoke.
import { get, post } from '../api.js';
import { h, clear, table, td, when, seg, batchPath, loading, fields, confirmDialog } from '../dom.js';
import { showError, clearError, isAdmin } from '../session.js';
import { ruleText, detailText, quarantinedText } from './suspicions.js';

export const REASONS = ['unspecified', 'keyCompromise', 'affiliationChanged', 'superseded',
	'cessationOfOperation', 'privilegeWithdrawn'];

export function device(root, { udid }, signal) {
	const path = `/api/v1/devices/${seg(udid)}`;
	const body = h('div', {}, loading('the device'));

	function revokeBox(d) {
		const reason = h('select', { id: 'revoke-reason', name: 'reason' },
			REASONS.map((r) => h('option', { value: r }, r)));
		const submit = h('button', { id: 'revoke-submit', type: 'submit', class: 'danger' }, 'Revoke device');
		const out = h('p', { class: 'error', role: 'alert' });
		async function send(ev) {
			ev.preventDefault();
			const why = reason.value;
			const ok = await confirmDialog(`Revoke this device (${why})? It can no longer enroll, its operational certificates are revoked and every product cloud is told to remove it. This cannot be undone.`, 'Revoke');
			if (!ok) return;
			submit.disabled = true;
			clearError(out);
			try {
				await post(`${path}/revoke`, { reason: why }, { signal });
				load();
			} catch (err) {
				showError(err, out);
				submit.disabled = false;
			}
		}
		return h('form', { class: 'card row-form', on: { submit: send } },
			h('h2', {}, 'Revoke'),
			h('label', { for: 'revoke-reason' }, 'Reason (RFC 5280)'),
			h('div', { class: 'inline' }, reason, submit), out);
	}

	async function load() {
		try {
			const d = await get(path, { signal });
			const bc = d.birthCertificate ?? {};
			const batchId = `${d.vendor}/${d.batch}`;
			clear(body,
				d.suspectedClone ? h('p', { id: 'clone-flag', class: 'card bad', role: 'status' },
					h('strong', {}, 'Suspected clone'),
					': another device may be using this identity. The suspicions below say why; ',
					h('a', { href: '#/suspicions' }, 'all suspicions'), '.') : null,
				fields('device', [
					['UDID', 'udid', h('span', { class: 'mono' }, d.udid)],
					['Chip serial', 'serial', d.serial ?? ''],
					['State', 'state', d.state ?? ''],
					d.state === 'revoked' ? ['Revoked because', 'revokeReason', d.revokeReason ?? ''] : null,
					['Batch', 'batch', d.vendor && d.batch
						? h('a', { href: `#/batches/${batchPath(d.vendor, d.batch)}` }, batchId) : ''],
					['Subject', 'subject', bc.subject ?? ''],
					['Issuer', 'issuer', bc.issuer ?? ''],
					['Certificate serial', 'certSerial', bc.serial ?? ''],
					['Valid from', 'notBefore', when(bc.notBefore)],
					['Valid until', 'notAfter', when(bc.notAfter)],
					['Key', 'keyType', bc.keyType ?? ''],
					['SHA-256', 'sha256', h('span', { class: 'mono' }, bc.sha256 ?? '')],
				]),
				h('section', { class: 'card' }, h('h2', {}, 'Clone suspicions'),
					table('device-suspicions', ['When', 'Rule', 'What was seen', 'Quarantined'],
						(d.suspicions ?? []).map((s) => h('tr', { dataset: { suspicion: s.id, rule: s.rule } },
							td('at', when(s.at)), td('rule', ruleText(s.rule)), td('detail', detailText(s)),
							td('quarantined', quarantinedText(s)))),
						'No suspicion: nothing suggests another device uses this identity.')),
				h('section', { class: 'card' }, h('h2', {}, 'Product clouds'),
					table('device-clouds', ['Cloud', 'Type', 'Action', 'Status', 'Job', 'When', 'Message'],
						(d.clouds ?? []).map((c) => h('tr', { dataset: { connector: c.connector, status: c.status } },
							td('connector', c.connector), td('type', c.type ?? ''), td('action', c.action ?? ''),
							td('status', h('span', { class: `badge ${c.status}` }, c.status ?? '')),
							td('job', c.job ?? ''), td('at', when(c.at)), td('message', c.message ?? ''))),
						'No product cloud has been sent this device yet.')),
				h('section', { class: 'card' }, h('h2', {}, 'Operational certificates'),
					table('device-certs', ['Serial', 'Valid from', 'Valid until', 'Revoked', 'Reason'],
						(d.certificates ?? []).map((c) => h('tr', { dataset: { serial: c.serial } },
							td('serial', h('span', { class: 'mono' }, c.serial)), td('notBefore', when(c.notBefore)),
							td('notAfter', when(c.notAfter)), td('revokedAt', when(c.revokedAt)), td('reason', c.reason ?? ''))),
						'Your company\'s CA has issued no certificate to this device.')),
				isAdmin() && d.state !== 'revoked' ? revokeBox(d) : null);
		} catch (err) {
			clear(body);
			showError(err);
		}
	}

	clear(root,
		h('p', { class: 'crumbs' }, h('a', { href: '#/batches' }, 'Batches'), ' / device'),
		h('h1', { class: 'mono wrap' }, udid),
		body);
	load();
}
