// SPDX-License-Identifier: Apache-2.0
// QR decoding for reel labels with jsQR: continuously from the back camera, or once from a
// photo. Only text starting with DEVID1: is taken as a claim code.
import jsQR from 'jsqr';

export const CODE_PREFIX = 'DEVID1:';
const FRAME_MS = 100; // decode at most ten frames a second
const FRAME_MAX = 800; // px, the longer side of a frame handed to jsQR

// Why the camera did not start, in words a line operator can act on.
export function cameraProblem(err) {
	switch (err?.name) {
	case 'NotAllowedError':
	case 'SecurityError':
		return 'The camera was refused: allow this site to use the camera in the browser settings, or type the code or take a photo instead.';
	case 'NotFoundError':
	case 'OverconstrainedError':
	case 'DevicesNotFoundError':
		return 'This device has no camera the browser can use: type the code or upload a photo of the label instead.';
	case 'NotReadableError':
	case 'TrackStartError':
		return 'The camera is busy in another app: close it and try again, or type the code instead.';
	default:
		return `The camera could not start${err?.message ? ` (${err.message})` : ''}: type the code or upload a photo instead.`;
	}
}

function decodeCanvas(ctx, w, h, inversion) {
	const img = ctx.getImageData(0, 0, w, h);
	const r = jsQR(img.data, w, h, { inversionAttempts: inversion });
	return r ? r.data : null;
}

// Opens the back camera into video and decodes frames until one holds a DEVID1: code.
// Calls onCode(code) once, after stopping the camera; onOther(text) for another QR code
// (throttled by the caller); onError(message) when the camera cannot start. Returns stop().
export function startCamera(video, { onCode, onOther, onError, onStarted }) {
	let stream = null;
	let stopped = false;
	let raf = 0;
	let last = 0;
	const canvas = document.createElement('canvas');
	const ctx = canvas.getContext('2d', { willReadFrequently: true });

	const stop = () => {
		stopped = true;
		cancelAnimationFrame(raf);
		if (stream) for (const t of stream.getTracks()) t.stop();
		stream = null;
		video.pause?.();
		video.srcObject = null;
	};

	const frame = (now) => {
		if (stopped) return;
		raf = requestAnimationFrame(frame);
		if (now - last < FRAME_MS || video.readyState < 2 || !video.videoWidth) return;
		last = now;
		const scale = Math.min(1, FRAME_MAX / Math.max(video.videoWidth, video.videoHeight));
		const w = Math.round(video.videoWidth * scale);
		const h = Math.round(video.videoHeight * scale);
		if (canvas.width !== w || canvas.height !== h) {
			canvas.width = w;
			canvas.height = h;
		}
		ctx.drawImage(video, 0, 0, w, h);
		const text = decodeCanvas(ctx, w, h, 'dontInvert');
		if (text === null) return;
		if (text.startsWith(CODE_PREFIX)) {
			stop();
			onCode(text);
		} else {
			onOther?.(text);
		}
	};

	if (!navigator.mediaDevices?.getUserMedia) {
		onError(window.isSecureContext
			? 'This browser cannot use a camera: type the code or upload a photo instead.'
			: 'The camera needs a secure connection (HTTPS): type the code or upload a photo instead.');
		return stop;
	}
	navigator.mediaDevices.getUserMedia({ video: { facingMode: { ideal: 'environment' } }, audio: false })
		.then(async (s) => {
			if (stopped) {
				for (const t of s.getTracks()) t.stop();
				return;
			}
			stream = s;
			video.srcObject = s;
			try {
				await video.play();
			} catch (err) {
				if (stopped) return;
				if (err?.name !== 'AbortError') throw err;
			}
			onStarted?.();
			raf = requestAnimationFrame(frame);
		})
		.catch((err) => {
			if (stopped) return;
			stop();
			onError(cameraProblem(err));
		});
	return stop;
}

async function loadImage(file) {
	if (typeof createImageBitmap === 'function') {
		try {
			return await createImageBitmap(file);
		} catch {
			// some browsers decode only through an <img>; fall through
		}
	}
	const url = URL.createObjectURL(file);
	try {
		const img = new Image();
		img.src = url;
		await img.decode();
		return img;
	} finally {
		URL.revokeObjectURL(url);
	}
}

// Decodes a photo of a label: the whole photo at up to 2000 px, then smaller (a large,
// slightly blurred label often decodes better downscaled). Resolves the text of the first
// QR code found (any text: the caller checks the prefix), or null.
export async function decodePhoto(file) {
	const img = await loadImage(file);
	const iw = img.width ?? img.naturalWidth;
	const ih = img.height ?? img.naturalHeight;
	const canvas = document.createElement('canvas');
	const ctx = canvas.getContext('2d', { willReadFrequently: true });
	let found = null;
	let tried = 0;
	for (const side of [2000, 1200, 700]) {
		const scale = Math.min(1, side / Math.max(iw, ih));
		const w = Math.max(1, Math.round(iw * scale));
		const h = Math.max(1, Math.round(ih * scale));
		if (w === tried) continue; // the photo is smaller than this step: decoded already
		tried = w;
		canvas.width = w;
		canvas.height = h;
		ctx.drawImage(img, 0, 0, w, h);
		const text = decodeCanvas(ctx, w, h, 'attemptBoth');
		if (text !== null) {
			found = text;
			if (text.startsWith(CODE_PREFIX)) break;
		}
	}
	img.close?.();
	return found;
}
