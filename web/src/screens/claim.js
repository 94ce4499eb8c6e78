// SPDX-License-Identifier: Apache-2.0
// #/claim: bind a reel's batch to the company by its label's claim code, scanned with the
// back camera, read from a photo, or typed.
import { post } from '../api.js';
import { h, clear, batchPath } from '../dom.js';
import { startCamera, decodePhoto, CODE_PREFIX } from '../scan.js';
import { showError, clearError } from '../session.js';

function claimProblem(err) {
	if (err.status === 404) return 'No batch matches this claim code: check that you scanned the right label.';
	if (err.status === 429)
		return err.retryAfter !== null && err.retryAfter !== undefined
			? `Too many claims in a short time: try again in ${err.retryAfter} s.`
			: 'Too many claims in a short time: wait a moment and try again.';
	return err.message; // 400: the server's sentence names what is wrong with the code
}

export function claim(root, params, signal) {
	let stopCamera = null;
	let busy = false;
	let lastOther = 0;

	const error = h('p', { id: 'claim-error', class: 'error', role: 'alert' });
	const status = h('p', { class: 'hint', role: 'status' });
	const result = h('div', { class: 'result-slot', 'aria-live': 'polite' });
	const video = h('video', {
		id: 'scan-video', playsinline: true, muted: true, autoplay: true,
		'aria-label': 'Camera view: point it at the QR code of the reel label',
	});
	video.muted = true; // the property, not only the attribute, lets autoplay run on phones
	const stopBtn = h('button', { id: 'scan-stop', type: 'button', on: { click: () => stopScan('Camera stopped.') } }, 'Stop camera');
	const viewer = h('div', { class: 'scanner', hidden: true }, video, h('div', { class: 'scan-frame', 'aria-hidden': 'true' }), stopBtn);
	const scanBtn = h('button', { id: 'scan', type: 'button', class: 'primary big', on: { click: startScan } }, 'Scan reel label');

	const code = h('input', {
		id: 'code', name: 'code', type: 'text', autocomplete: 'off', spellcheck: 'false',
		autocapitalize: 'off', placeholder: 'DEVID1:…', inputmode: 'text',
	});
	const submit = h('button', { id: 'claim-submit', type: 'submit' }, 'Claim');
	const typed = h('form', { class: 'row-form', on: { submit: (ev) => { ev.preventDefault(); send(code.value.trim()); } } },
		h('label', { for: 'code' }, 'Claim code'), h('div', { class: 'inline' }, code, submit));

	const photo = h('input', { id: 'photo', type: 'file', accept: 'image/*', capture: 'environment', on: { change: fromPhoto } });
	const photoBox = h('div', { class: 'row-form' },
		h('label', { for: 'photo' }, 'Or a photo of the label'), photo);

	function stopScan(msg) {
		stopCamera?.();
		stopCamera = null;
		viewer.hidden = true;
		scanBtn.disabled = false;
		if (msg) status.textContent = msg;
	}

	function startScan() {
		clearError(error);
		clear(result);
		stopScan();
		viewer.hidden = false;
		scanBtn.disabled = true;
		status.textContent = 'Starting the camera…';
		stopCamera = startCamera(video, {
			onStarted: () => { status.textContent = 'Point the camera at the QR code on the reel label.'; },
			onCode: (text) => {
				stopScan('Label read.');
				code.value = text;
				send(text);
			},
			onOther: () => {
				const now = Date.now();
				if (now - lastOther < 3000) return;
				lastOther = now;
				status.textContent = 'That QR code is not a devid reel label: look for the one that starts with DEVID1.';
			},
			onError: (msg) => {
				stopScan();
				showError(msg, error);
				status.textContent = '';
			},
		});
	}

	async function fromPhoto() {
		const file = photo.files?.[0];
		if (!file) return;
		stopScan();
		clearError(error);
		clear(result);
		status.textContent = 'Reading the photo…';
		try {
			const text = await decodePhoto(file);
			if (signal.aborted) return;
			status.textContent = '';
			if (text === null) showError('No QR code found in this photo: take it closer, in focus and with the whole label in view.', error);
			else if (!text.startsWith(CODE_PREFIX)) showError('The QR code in this photo is not a devid reel label: look for the one that starts with DEVID1.', error);
			else {
				code.value = text;
				await send(text);
			}
		} catch (err) {
			status.textContent = '';
			showError(err?.name === 'AbortError' ? err : 'This file cannot be read as a picture: take a photo (JPEG or PNG) of the label.', error);
		} finally {
			photo.value = '';
		}
	}

	async function send(text) {
		if (busy) return;
		clearError(error);
		clear(result);
		if (!text) {
			showError('Scan the label, or type or paste its code first.', error);
			code.focus();
			return;
		}
		if (!text.startsWith(CODE_PREFIX)) {
			showError('A claim code starts with DEVID1: check that you copied the whole code.', error);
			return;
		}
		busy = true;
		submit.disabled = true;
		status.textContent = 'Claiming…';
		try {
			const r = await post('/api/v1/claims', { code: text }, { signal });
			status.textContent = '';
			code.value = '';
			const [vendor, name] = r.vendor && r.name ? [r.vendor, r.name] : String(r.batch).split('/');
			clear(result, h('section', { id: 'claim-result', class: 'card ok' },
				h('h2', {}, r.claimed === false ? 'Already yours' : 'Claimed'),
				h('dl', { class: 'fields' },
					h('dt', {}, 'Batch'),
					h('dd', { dataset: { field: 'batch' } },
						h('a', { href: `#/batches/${batchPath(vendor, name)}` }, r.batch)),
					h('dt', {}, 'Vendor'), h('dd', { dataset: { field: 'vendor' } }, r.vendor ?? vendor),
					h('dt', {}, 'Part number'), h('dd', { dataset: { field: 'partNumber' } }, r.partNumber ?? ''),
					h('dt', {}, 'Devices'), h('dd', { dataset: { field: 'count' } }, r.count ?? '')),
				h('p', { class: 'hint' }, r.claimed === false
					? 'Your company owned this batch already: nothing changed.'
					: 'The batch is now your company\'s.')));
			result.scrollIntoView?.({ block: 'nearest', behavior: 'smooth' });
		} catch (err) {
			status.textContent = '';
			showError(claimProblem(err), error);
		} finally {
			busy = false;
			submit.disabled = false;
		}
	}

	clear(root,
		h('h1', {}, 'Claim a reel'),
		h('section', { class: 'card' }, scanBtn, viewer, status),
		h('section', { class: 'card' }, typed, photoBox),
		error,
		result);

	return () => stopScan();
}
