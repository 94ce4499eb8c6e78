// SPDX-License-Identifier: Apache-2.0
// The console in headless Chromium (docs/console.md), run by console.sh with the server, the
// gateway, the tokens and the reels in DEVID_* variables. Plain Node: one line per step, and
// the first failed step ends the run with exit status 1 and what differed. Elements are found
// only by the ids and data- attributes of docs/console.md's table, which stay stable.
import assert from 'node:assert/strict';
import { createHash, createHmac, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const env = (name) => {
	const v = process.env[name];
	if (v === undefined || v === '') {
		console.error(`console: ${name} is not set (console.sh sets it)`);
		process.exit(2);
	}
	return v;
};
const url = env('DEVID_URL');
const origin = new URL(url).origin;
const consoleUrl = `${origin}/console/`;
const adminToken = env('DEVID_ADMIN_TOKEN');
const operatorToken = env('DEVID_OPERATOR_TOKEN');
const gatewayEvents = env('DEVID_GATEWAY_EVENTS');
const gatewayAcl = env('DEVID_GATEWAY_ACL');
const gatewaySecret = env('DEVID_GATEWAY_SECRET');
const camera = env('DEVID_CAMERA');
const b1 = { name: env('DEVID_B1'), count: Number(env('DEVID_B1_COUNT')), dir: env('DEVID_B1_DIR') };
const b2 = { name: env('DEVID_B2'), count: Number(env('DEVID_B2_COUNT')), code: env('DEVID_B2_CODE') };
const b3 = { name: env('DEVID_B3'), code: env('DEVID_B3_CODE'), photo: env('DEVID_B3_PHOTO') };
const shots = env('DEVID_SHOTS');
const { chromium } = createRequire(path.join(env('DEVID_WEB'), 'package.json'))('playwright-core');

// the acceptance bounds of issue 12; everything else waits for a condition
const MAX_PAGE_BYTES = 300 * 1024;
const MAX_INTERACTIVE_MS = 1000;
const WAIT_MS = 30000; // one element or answer, generous for a loaded 2-core machine
const JOB_WAIT_MS = 120000; // a push through the outbox to the gateway
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

// ---- what must never happen, watched during the whole run ----

const incidents = []; // CSP violations, page errors, dialogs, API answers without their headers

function watch(page, who) {
	page.on('console', (m) => {
		const t = m.text();
		if (/Content Security Policy|CSP violation/i.test(t))
			incidents.push(`${who}: CSP violation: ${t}`);
	});
	page.on('pageerror', (err) => incidents.push(`${who}: page error: ${err.message}`));
	page.on('dialog', (d) => {
		incidents.push(`${who}: a ${d.type()} dialog opened: ${d.message()}`);
		d.dismiss().catch(() => {});
	});
	page.on('response', (r) => {
		const u = new URL(r.url());
		const h = r.headers();
		if (u.origin !== origin || !u.pathname.startsWith('/api/')) return;
		if (!(h['content-type'] ?? '').startsWith('application/json')) return;
		if (h['x-content-type-options'] !== 'nosniff' || !/no-store/.test(h['cache-control'] ?? ''))
			incidents.push(`${who}: ${r.request().method()} ${u.pathname}: JSON answer without ` +
			    `nosniff and no-store (${JSON.stringify(h)})`);
	});
	// requests in flight, so a screen can be awaited until it settled (see settle)
	page.__inflight = 0;
	page.on('request', () => page.__inflight++);
	page.on('requestfinished', () => page.__inflight--);
	page.on('requestfailed', () => page.__inflight--);
}

// The page reports CSP violations to its console too, so none hides in a console that logs
// nothing: the listener is installed by the DevTools protocol, which the CSP does not govern.
const REPORT_CSP = () => {
	document.addEventListener('securitypolicyviolation', (e) =>
		console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'} ` +
		    `at ${e.sourceFile}:${e.lineNumber}`));
};

// ---- helpers ----

let browser;
const pages = {}; // the pages to describe when a step fails

async function step(name, fn) {
	const t0 = Date.now();
	try {
		await fn();
		if (incidents.length) throw new Error(incidents.join('\n'));
	} catch (err) {
		console.error(`console: FAIL: ${name}: ${err.message}`);
		for (const [who, p] of Object.entries(pages)) {
			if (p.isClosed()) continue;
			const text = await p.evaluate(() => document.body?.innerText ?? '').catch(() => '?');
			console.error(`console: ${who} page at ${p.url()} shows: ${text.slice(0, 600).replace(/\s+/g, ' ')}`);
			await p.screenshot({ path: path.join(shots, `failed-${who}.png`) }).catch(() => {});
		}
		await browser?.close().catch(() => {});
		process.exit(1);
	}
	console.log(`console: ok ${name} (${Date.now() - t0} ms)`);
}

async function newContext() {
	const context = await browser.newContext({ viewport: DESKTOP, acceptDownloads: true });
	await context.grantPermissions(['camera'], { origin });
	await context.addInitScript(REPORT_CSP);
	context.setDefaultTimeout(WAIT_MS);
	return context;
}

// the API with a bearer token, from outside the browser
async function api(token, method, p, body) {
	const r = await fetch(`${origin}${p}`, {
		method,
		headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
		body: body ? JSON.stringify(body) : undefined,
	});
	const text = await r.text();
	let json = null;
	try { json = JSON.parse(text); } catch { /* not JSON */ }
	return { status: r.status, json, text };
}

// fetch() from inside the page: same origin, so with its session cookie
function pageFetch(page, p, init = {}) {
	return page.evaluate(async ([p, init]) => {
		const r = await fetch(p, init);
		return { status: r.status, type: r.headers.get('content-type'), text: await r.text() };
	}, [p, init]);
}

// goes to a hash route; the caller waits for what the screen must show (or settles)
async function go(page, hash) {
	await page.evaluate((h) => { location.hash = h; }, hash);
}

// follows a table row's link, or clicks the row when it is the link
async function openRow(row) {
	await row.waitFor();
	const link = row.locator('a');
	await ((await link.count()) > 0 ? link.first() : row).click();
}

async function text(page, selector) {
	return (await page.locator(selector).first().textContent())?.trim() ?? '';
}

// waits until SELECTOR's text, trimmed, satisfies WANT (a string or a RegExp)
async function waitText(page, selector, want, timeout = WAIT_MS) {
	try {
		await page.waitForFunction(([s, w, isRe]) => {
			const el = document.querySelector(s);
			const t = el?.textContent.trim();
			return t !== undefined && (isRe ? new RegExp(w, 'i').test(t) : t === w);
		}, [selector, want instanceof RegExp ? want.source : want, want instanceof RegExp],
		{ timeout, polling: 100 });
	} catch {
		const got = await page.locator(selector).first().textContent({ timeout: 1000 }).catch(() => null);
		throw new Error(`${selector}: ${got === null ? 'no such element' : JSON.stringify(got.trim())}, want ${want}`);
	}
}

// waits until the page has no request in flight and rendered twice since: the screen settled,
// so an element that is absent now is absent by the screen's choice, not by being late
async function settle(page) {
	const t0 = Date.now();
	for (;;) {
		if (page.__inflight <= 0) {
			await page.evaluate(() => new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok))));
			if (page.__inflight <= 0) return;
		}
		if (Date.now() - t0 > WAIT_MS) throw new Error(`${page.__inflight} requests still in flight`);
		await page.waitForTimeout(50); // polling the condition, not deciding anything
	}
}

async function shot(page, name, size = DESKTOP) {
	const old = page.viewportSize();
	if (old.width !== size.width || old.height !== size.height) await page.setViewportSize(size);
	await page.screenshot({ path: path.join(shots, `${name}.png`) });
	if (old.width !== size.width || old.height !== size.height) await page.setViewportSize(old);
}

async function signIn(page, token, name) {
	await page.locator('#signin-token').fill(token);
	await page.locator('#signin-submit').click();
	await waitText(page, '#whoami', new RegExp(name));
}

// the birth certificates of a reel, from its manifest: UDID (SHA-256 of the SPKI) → DER
function reelCertificates(dir) {
	return new Map(JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8')).map((entry) => {
		const payload = JSON.parse(Buffer.from(entry.payload, 'base64url').toString('utf8'));
		const der = Buffer.from(payload.publicKeySet.keys[0].x5c[0], 'base64');
		return [udidOf(new X509Certificate(der)), der];
	}));
}

const reelUdids = (dir) => [...reelCertificates(dir).keys()].sort();

function udidOf(cert) {
	return createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

// A product cloud's signed seen report (docs/clone-detection.md): the device with certificate
// DER active from 127.0.0.2 and 127.0.0.3 in turn during the last 30 s
async function reportSeenTwice(tenant, secret, udid, der) {
	const now = Date.now();
	const t = (s) => new Date(now + s * 1000).toISOString();
	const certificate = createHash('sha256').update(der).digest('hex');
	const seen = (origin, first, last) =>
		({ udid, origin, first: t(first), last: t(last), count: 2, certificate, identity: 'key' });
	const body = JSON.stringify({ report: `console-${now}`, tenant, sentAt: t(0),
		sightings: [seen('127.0.0.2', -30, -10), seen('127.0.0.3', -25, -5)] });
	const sig = createHmac('sha256', secret).update(body).digest('hex');
	const r = await fetch(`${origin}/api/v1/sightings`, {
		method: 'POST', body,
		headers: { 'Content-Type': 'application/json', 'X-Devid-Signature': `sha256=${sig}` },
	});
	const text = await r.text();
	return { status: r.status, text };
}

async function gatewayAclDevices() {
	const sig = createHmac('sha256', gatewaySecret).update('').digest('hex');
	const r = await fetch(gatewayAcl, { headers: { 'X-Devid-Signature': `sha256=${sig}` } });
	assert.equal(r.status, 200, `gateway ACL: HTTP ${r.status}`);
	return (await r.json()).devices;
}

// polls FN (an async predicate) until it holds; the last value explains a timeout
async function until(what, fn, timeout = WAIT_MS) {
	const t0 = Date.now();
	let last;
	for (;;) {
		last = await fn();
		if (last === true) return;
		if (Date.now() - t0 > timeout) throw new Error(`${what}: not after ${timeout} ms (${last})`);
		await new Promise((ok) => setTimeout(ok, 200));
	}
}

// RFC 4180: quoted fields may hold commas, newlines and doubled quotes
function parseCsv(s) {
	const rows = [];
	let row = [], field = '', i = 0, quoted = false;
	while (i < s.length) {
		const c = s[i];
		if (quoted) {
			if (c === '"' && s[i + 1] === '"') { field += '"'; i += 2; continue; }
			if (c === '"') { quoted = false; i++; continue; }
			field += c; i++; continue;
		}
		if (c === '"') { quoted = true; i++; continue; }
		if (c === ',') { row.push(field); field = ''; i++; continue; }
		if (c === '\r' && s[i + 1] === '\n') i++;
		if (s[i] === '\n') { row.push(field); rows.push(row); row = []; field = ''; i++; continue; }
		field += c; i++;
	}
	if (field !== '' || row.length) { row.push(field); rows.push(row); }
	return rows;
}

// ---- the run ----

browser = await chromium.launch({
	executablePath: '/usr/bin/chromium',
	headless: true,
	args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
		'--disable-background-networking', '--disable-component-update', '--disable-sync',
		'--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
		`--use-file-for-fake-video-capture=${camera}`],
});
console.log(`console: chromium ${browser.version()}, ${consoleUrl}`);
const adminContext = await newContext();
const page = await adminContext.newPage();
pages.admin = page;
watch(page, 'admin');
const b1Udids = reelUdids(b1.dir);
assert.equal(b1Udids.length, b1.count);
let adminCookie;

// One load of /console/ in a fresh context (empty cache, and the cache disabled): the bytes
// transferred (encodedDataLength of every response, headers included) and the time from the
// navigation's start to #signin-token visible and enabled, in the page's own clock, checked
// every few ms from the first script that runs.
async function freshLoad() {
	const context = await newContext();
	const p = await context.newPage();
	pages.fresh = p;
	watch(p, 'fresh');
	const cdp = await context.newCDPSession(p);
	await cdp.send('Network.enable');
	await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
	const sizes = new Map();
	const urls = new Map();
	cdp.on('Network.requestWillBeSent', (e) => urls.set(e.requestId, e.request.url));
	cdp.on('Network.loadingFinished', (e) => sizes.set(e.requestId, e.encodedDataLength));
	await p.addInitScript(() => {
		const poll = () => {
			const el = document.getElementById('signin-token');
			if (el && !el.disabled && el.checkVisibility()) {
				window.__interactiveMs = performance.now();
				return;
			}
			setTimeout(poll, 2);
		};
		poll();
	});
	const doc = await p.goto(consoleUrl);
	assert.equal(doc.status(), 200, `GET /console/: ${doc.status()}`);
	await p.waitForLoadState('networkidle');
	let bytes = 0;
	const parts = [];
	for (const [id, n] of sizes) {
		bytes += n;
		parts.push(`${new URL(urls.get(id) ?? 'about:blank').pathname} ${n}`);
	}
	let ms;
	try {
		await p.waitForFunction(() => window.__interactiveMs !== undefined);
		ms = await p.evaluate(() => window.__interactiveMs);
	} catch {
		ms = Infinity;
	}
	await context.close();
	delete pages.fresh;
	return { bytes, parts, ms, headers: doc.headers() };
}

await step('page weight, time to interactive and headers of a fresh /console/', async () => {
	const first = await freshLoad();
	console.log(`console: page weight ${first.bytes} bytes (${(first.bytes / 1024).toFixed(1)} KB) ` +
	    `in ${first.parts.length} responses: ${first.parts.join(', ')}`);
	assert.ok(first.bytes < MAX_PAGE_BYTES, `the page weighs ${first.bytes} bytes, over ${MAX_PAGE_BYTES}`);
	assert.ok(first.ms !== Infinity, '#signin-token never became visible and enabled');
	// The bound is the page's; a machine busy with other work can delay one load past it, so
	// a slow load is measured again (fresh each time), at most three loads, every one printed.
	const times = [first.ms];
	while (Math.min(...times) >= MAX_INTERACTIVE_MS && times.length < 3)
		times.push((await freshLoad()).ms);
	console.log(`console: time to interactive ${times.map((t) => t.toFixed(0)).join(' ms, ')} ms ` +
	    '(navigation start to #signin-token visible and enabled, fresh context and cache)');
	assert.ok(Math.min(...times) < MAX_INTERACTIVE_MS,
	    `interactive after ${times.map((t) => t.toFixed(0)).join(', ')} ms: over ${MAX_INTERACTIVE_MS}`);

	const h = first.headers;
	const csp = h['content-security-policy'];
	assert.ok(csp, 'no Content-Security-Policy on /console/');
	assert.ok(!/unsafe-inline|unsafe-eval|unsafe-hashes|strict-dynamic/.test(csp), `CSP allows inline or eval: ${csp}`);
	const dir = Object.fromEntries(csp.split(';').map((d) => d.trim().split(/\s+/)).filter((d) => d[0])
		.map(([k, ...v]) => [k.toLowerCase(), v.join(' ')]));
	assert.equal(dir['frame-ancestors'], "'none'", `CSP frame-ancestors: ${csp}`);
	assert.equal(dir['default-src'], "'none'", `CSP default-src: ${csp}`);
	assert.equal(dir['script-src'], "'self'", `CSP script-src: ${csp}`);
	assert.equal(h['x-frame-options'], 'DENY');
	assert.equal(h['x-content-type-options'], 'nosniff');
	assert.equal(h['referrer-policy'], 'no-referrer');
	for (const f of ['app.js', 'app.css']) {
		const r = await fetch(`${consoleUrl}${f}`);
		assert.equal(r.status, 200, `GET /console/${f}: ${r.status}`);
		assert.equal(r.headers.get('x-content-type-options'), 'nosniff', `/console/${f} nosniff`);
		assert.ok(r.headers.get('content-security-policy'), `/console/${f} has no CSP`);
	}
	await page.goto(consoleUrl);
	await page.locator('#signin-token').waitFor();
	await shot(page, 'signin');
});

await step('a wrong token is refused in plain words', async () => {
	await page.locator('#signin-token').fill('devid_not-a-token-0000000000000000');
	await page.locator('#signin-submit').click();
	await waitText(page, '#signin-error', /\S/);
	assert.ok(await page.locator('#signin-token').isVisible(), 'the sign-in form went away');
	assert.ok(!(await adminContext.cookies(origin)).some((c) => c.name === 'devid_session'),
	    'a wrong token got a session cookie');
});

await step('sign in as admin: HttpOnly SameSite=Strict cookie, the token kept nowhere', async () => {
	await signIn(page, adminToken, 'alice');
	const whoami = await text(page, '#whoami');
	assert.match(whoami, /admin/, `#whoami: ${whoami}`);
	assert.match(whoami, /OEM1/, `#whoami: ${whoami}`);
	const cookies = await adminContext.cookies(origin);
	const c = cookies.find((x) => x.name === 'devid_session');
	assert.ok(c, `no devid_session cookie: ${cookies.map((x) => x.name)}`);
	assert.equal(c.httpOnly, true, 'the session cookie is not HttpOnly');
	assert.equal(c.sameSite, 'Strict', `the session cookie is SameSite=${c.sameSite}`);
	assert.equal(c.path, '/');
	assert.match(c.value, /^[A-Za-z0-9_-]{43}$/);
	adminCookie = `devid_session=${c.value}`;
	const seen = await page.evaluate(() => ({
		cookie: document.cookie,
		storage: JSON.stringify([{ ...localStorage }, { ...sessionStorage }]),
		url: location.href,
		inputs: [...document.querySelectorAll('input')].map((i) => i.value).join(' '),
	}));
	assert.ok(!seen.cookie.includes('devid_session'), `document.cookie shows the session: ${seen.cookie}`);
	for (const [where, v] of Object.entries(seen)) {
		assert.ok(!v.includes(adminToken), `the token is kept in ${where}`);
		assert.ok(!v.includes(c.value), `the session is kept in ${where}`);
	}
	const r = await fetch(`${origin}/api/v1/session`, { headers: { Cookie: adminCookie } });
	assert.equal(r.status, 200, `GET /api/v1/session with the cookie: ${r.status}`);
});

await step('create the webhook connector to the gateway; its test says ok', async () => {
	await page.locator('a[data-nav=clouds]').click();
	await page.locator('#connector-new').click();
	const form = page.locator('form#connector-form');
	await form.waitFor();
	await setField(form, 'name', 'GW');
	await setField(form, 'type', 'webhook');
	await setField(form, 'mode', 'auto');
	await setField(form, 'config.url', gatewayEvents);
	await setField(form, 'config.secret', gatewaySecret);
	await page.locator('#connector-save').click();
	await until('GW in GET /api/v1/connectors', async () => {
		const r = await api(adminToken, 'GET', '/api/v1/connectors/GW');
		return r.status === 200 || `HTTP ${r.status} ${r.text}`;
	});
	const r = await api(adminToken, 'GET', '/api/v1/connectors/GW');
	assert.equal(r.json.mode, 'auto');
	assert.equal(r.json.config.url, gatewayEvents);
	await go(page, '#/clouds/GW');
	await page.locator('#connector-test').click();
	await waitText(page, '#connector-test-result', /\bok\b/);
	const result = await text(page, '#connector-test-result');
	assert.ok(!/fail|false|not ok|refus|error/i.test(result), `#connector-test-result: ${result}`);
	// the secret is write-only: the form shows it to nobody
	const shown = await page.evaluate(() => document.body.innerText + [...document.querySelectorAll('input')].map((i) => i.value).join(' '));
	assert.ok(!shown.includes(gatewaySecret), 'the connector page shows its secret');
	await page.locator('a[data-nav=clouds]').click();
	await page.locator('table#connectors tr[data-connector=GW]').waitFor();
	await shot(page, 'clouds');
});

// sets the form's field NAME to VALUE, whether it is an input, a select or a set of radios
async function setField(form, name, value) {
	const all = form.locator(`[name="${name}"]`);
	await all.first().waitFor();
	const { tag, type } = await all.first().evaluate((el) => ({ tag: el.tagName, type: el.type }));
	if (type === 'radio') await form.locator(`[name="${name}"][value="${value}"]`).check();
	else if (tag === 'SELECT') await all.first().selectOption(value);
	else await all.first().fill(value);
}

await step('claim the first reel by its label in front of the camera', async () => {
	await page.locator('a[data-nav=claim]').click();
	await page.locator('#scan').click();
	await waitText(page, `#claim-result [data-field=batch]`, b1.name);
	assert.equal(await text(page, '#claim-result [data-field=count]'), String(b1.count));
	assert.equal(await text(page, '#claim-result [data-field=vendor]'), b1.name.split('/')[0]);
	assert.equal(await text(page, '#claim-result [data-field=partNumber]'), 'DEVID-SE1-P256');
	const r = await api(adminToken, 'GET', `/api/v1/batches/${b1.name}`);
	assert.equal(r.status, 200, `the API does not show ${b1.name} claimed: ${r.status}`);
	await shot(page, 'claim');
	await shot(page, 'claim-phone', PHONE);
});

await step('the job reaches total/total and the gateway admits every device', async () => {
	await page.locator('a[data-nav=jobs]').click();
	const row = page.locator('table#jobs tr[data-job]', {
		has: page.locator('[data-field=connector]', { hasText: 'GW' }),
	}).first();
	await row.waitFor();
	const id = await row.getAttribute('data-job');
	const sel = `table#jobs tr[data-job="${id}"]`;
	// the page refreshes itself while the job is pending: no reload here
	await waitText(page, `${sel} [data-field=progress]`, `${b1.count}/${b1.count}`, JOB_WAIT_MS);
	await page.waitForFunction((s) => {
		const p = document.querySelector(`${s} progress`);
		return p && p.max > 0 && p.value === p.max;
	}, sel);
	const acl = await gatewayAclDevices();
	const active = new Set(acl.filter((d) => d.state === 'active').map((d) => d.udid));
	const missing = b1Udids.filter((u) => !active.has(u));
	assert.deepEqual(missing, [], `the gateway lacks ${missing.length} devices of ${b1.name}`);
	await shot(page, 'jobs');
});

await step('claim the second reel by its typed code; a wrong code is refused in plain words', async () => {
	await page.locator('a[data-nav=claim]').click();
	// the same code with another secret: well formed, matches no batch
	const wrong = b2.code.replace(/[A-Z2-7]{6}$/, (s) => (s === 'AAAAAA' ? 'BBBBBB' : 'AAAAAA'));
	await page.locator('#code').fill(wrong);
	await page.locator('#claim-submit').click();
	await waitText(page, '#claim-error', /no batch matches this claim code/);
	const said = await text(page, '#claim-error');
	assert.ok(!/[{}]|not_found|HTTP|404/.test(said), `#claim-error is not plain words: ${said}`);
	await page.locator('#code').fill(b2.code);
	await page.locator('#claim-submit').click();
	await waitText(page, '#claim-result [data-field=batch]', b2.name);
	assert.equal(await text(page, '#claim-result [data-field=count]'), String(b2.count));
});

let revokeUdid;
await step('batches, the batch, and its CSV: one row per device, each certificate parses', async () => {
	await page.locator('a[data-nav=batches]').click();
	await page.locator(`table#batches tr[data-batch="${b2.name}"]`).waitFor();
	await page.locator(`table#batches tr[data-batch="${b1.name}"]`).waitFor();
	assert.equal(await page.locator(`table#batches tr[data-batch="${b3.name}"]`).count(), 0,
	    `${b3.name} (unclaimed) is listed`);
	await shot(page, 'batches');
	await openRow(page.locator(`table#batches tr[data-batch="${b1.name}"]`));
	await waitText(page, '#batch [data-field=count]', String(b1.count));
	await waitText(page, '#batch [data-field=state]', 'claimed');
	await page.locator('table#batch-devices tr[data-udid]').first().waitFor();
	const listed = await page.locator('table#batch-devices tr[data-udid]').evaluateAll(
		(rows) => rows.map((r) => r.getAttribute('data-udid')));
	assert.ok(listed.every((u) => b1Udids.includes(u)), `the batch lists devices not of ${b1.name}`);
	revokeUdid = listed[0];
	await shot(page, 'batch');

	const href = await page.locator('a#download-csv').getAttribute('href');
	assert.ok(href, 'a#download-csv has no href');
	assert.equal(new URL(href, page.url()).origin, origin, `the CSV link leaves the server: ${href}`);
	const csv = await pageFetch(page, new URL(href, page.url()).href);
	assert.equal(csv.status, 200, `the CSV link answers ${csv.status}: ${csv.text.slice(0, 200)}`);
	const rows = parseCsv(csv.text).filter((r) => !(r.length === 1 && r[0] === ''));
	assert.deepEqual(rows[0], ['device_id', 'group_id', 'certificate'], `CSV header: ${rows[0]}`);
	const body = rows.slice(1);
	assert.equal(body.length, b1.count, `CSV: ${body.length} rows, want ${b1.count}`);
	const ids = [];
	for (const [id, group, pem] of body) {
		const cert = new X509Certificate(pem);
		assert.equal(udidOf(cert), id, `CSV: device_id ${id} is not its certificate's UDID`);
		assert.ok([b1.name, b1.name.split('/')[1]].includes(group), `CSV: group_id ${group}`);
		ids.push(id);
	}
	assert.deepEqual(ids.sort(), b1Udids, 'the CSV does not list exactly the reel');
});

await step('revoke a device with a reason; the page and the API say revoked', async () => {
	await openRow(page.locator(`table#batch-devices tr[data-udid="${revokeUdid}"]`));
	await waitText(page, '#device [data-field=udid]', revokeUdid);
	await waitText(page, '#device [data-field=state]', 'active');
	await waitText(page, '#device [data-field=batch]', b1.name);
	// the device's outcome in the push to the gateway
	await waitText(page, 'table#device-clouds', /GW/);
	await shot(page, 'device');
	await page.locator('#revoke-reason').selectOption('keyCompromise');
	// cancel first: nothing happens
	await page.locator('#revoke-submit').click();
	await page.locator('dialog#confirm[open]').waitFor();
	await page.locator('#confirm-cancel').click();
	await page.locator('dialog#confirm[open]').waitFor({ state: 'hidden' });
	await settle(page);
	let r = await api(adminToken, 'GET', `/api/v1/devices/${revokeUdid}`);
	assert.equal(r.json.state, 'active', 'a cancelled revoke revoked the device');
	await page.locator('#revoke-submit').click();
	await page.locator('dialog#confirm[open]').waitFor();
	await page.locator('#confirm-ok').click();
	await waitText(page, '#device [data-field=state]', 'revoked');
	await waitText(page, '#device [data-field=revokeReason]', 'keyCompromise');
	r = await api(adminToken, 'GET', `/api/v1/devices/${revokeUdid}`);
	assert.equal(r.json.state, 'revoked');
	assert.equal(r.json.revokeReason, 'keyCompromise');
	await until('the gateway removes the revoked device', async () => {
		const d = (await gatewayAclDevices()).find((x) => x.udid === revokeUdid);
		return d?.state === 'removed' || `state ${d?.state}`;
	}, JOB_WAIT_MS);
});

await step('the suspicions screen: an admin changes the clone policy; a refused value shows the server\'s words', async () => {
	await page.locator('a[data-nav=suspicions]').click();
	await waitText(page, 'table#suspicions', /No suspected clone/);
	const form = page.locator('form#policy-form');
	await form.waitFor();
	assert.equal(await form.locator('[name=mode]').inputValue(), 'flag', 'the default mode');
	assert.equal(await form.locator('[name=prefixV4]').inputValue(), '24', 'the default IPv4 prefix');
	// one address, one network: 127.0.0.2 and 127.0.0.3 become two places
	await setField(form, 'prefixV4', '32');
	await page.locator('#policy-save').click();
	await waitText(page, '#policy-saved', /^Saved/);
	let r = await api(adminToken, 'GET', '/api/v1/clone-policy');
	assert.equal(r.status, 200, `GET /api/v1/clone-policy: ${r.status} ${r.text}`);
	assert.deepEqual([r.json.mode, r.json.prefixV4, r.json.window, r.json.maxEnrollments], ['flag', 32, 300, 3],
	    `the form saved ${r.text}`);
	await setField(form, 'window', '5');
	await page.locator('#policy-save').click();
	await waitText(page, '#policy-error', /"window" is 5, allowed 10 to 86400/);
	r = await api(adminToken, 'GET', '/api/v1/clone-policy');
	assert.equal(r.json.window, 300, `a refused policy changed the window: ${r.text}`);
});

let cloneUdid;
await step('a device seen from two networks at once: its screen flags it, the suspicions screen lists it', async () => {
	cloneUdid = b1Udids.filter((u) => u !== revokeUdid).at(-1);
	// the gateway's connector GW is a webhook, so its secret signs the tenant's seen reports
	const r = await reportSeenTwice('OEM1', gatewaySecret, cloneUdid, reelCertificates(b1.dir).get(cloneUdid));
	assert.equal(r.status, 200, `POST /api/v1/sightings: ${r.status} ${r.text}`);
	assert.match(r.text, /"suspicions": *1\b/, `POST /api/v1/sightings: ${r.text}`);
	await go(page, `#/devices/${cloneUdid}`);
	await waitText(page, '#clone-flag', /^Suspected clone\b/);
	await waitText(page, '#device [data-field=state]', 'active');
	const row = page.locator('table#device-suspicions tr[data-rule="concurrent-origins"]');
	await row.waitFor();
	assert.match(await text(row, '[data-field=rule]'), /several networks/);
	assert.match(await text(row, '[data-field=detail]'), /127\.0\.0\.2\/32 and 127\.0\.0\.3\/32/);
	assert.equal(await text(row, '[data-field=quarantined]'), 'no');
	await shot(page, 'device-clone');
	await page.locator('a[data-nav=suspicions]').click();
	const listed = page.locator(`table#suspicions tr[data-udid="${cloneUdid}"]`);
	await listed.waitFor();
	assert.equal(await listed.count(), 1, 'the suspicions screen lists the suspicion more than once');
	assert.equal(await listed.getAttribute('data-rule'), 'concurrent-origins');
	assert.match(await text(listed, '[data-field=rule]'), /several networks/);
	await shot(page, 'suspicions');
	await openRow(listed);
	await waitText(page, '#device [data-field=udid]', cloneUdid);
	await page.locator('#clone-flag').waitFor();
	// a device nobody suspects has no flag
	await go(page, `#/devices/${revokeUdid}`);
	await waitText(page, '#device [data-field=udid]', revokeUdid);
	await settle(page);
	assert.equal(await page.locator('#clone-flag').count(), 0, 'a device without suspicion is flagged');
	await waitText(page, 'table#device-suspicions', /No suspicion/);
});

await step('in quarantine mode a suspected clone is revoked at once, and the console says so', async () => {
	let r = await api(adminToken, 'PUT', '/api/v1/clone-policy', { mode: 'quarantine', prefixV4: 32 });
	assert.equal(r.status, 200, `PUT /api/v1/clone-policy: ${r.status} ${r.text}`);
	const udid = b1Udids.filter((u) => u !== revokeUdid && u !== cloneUdid).at(-1);
	r = await reportSeenTwice('OEM1', gatewaySecret, udid, reelCertificates(b1.dir).get(udid));
	assert.equal(r.status, 200, `POST /api/v1/sightings: ${r.status} ${r.text}`);
	assert.match(r.text, /"suspicions": *1\b/, `POST /api/v1/sightings: ${r.text}`);
	await go(page, `#/devices/${udid}`);
	await waitText(page, '#clone-flag', /^Suspected clone\b/);
	await waitText(page, '#device [data-field=state]', 'revoked');
	await waitText(page, '#device [data-field=revokeReason]', 'keyCompromise');
	await waitText(page, 'table#device-suspicions tr[data-rule="concurrent-origins"] [data-field=quarantined]', 'yes: revoked');
	await page.locator('a[data-nav=suspicions]').click();
	await waitText(page, `table#suspicions tr[data-udid="${udid}"] [data-field=quarantined]`, 'yes: revoked');
	const order = await page.locator('table#suspicions tr[data-udid]').evaluateAll(
		(rows) => rows.map((row) => row.getAttribute('data-udid')));
	assert.deepEqual(order, [udid, cloneUdid], 'the suspicions are not listed newest first');
});

// Names are [A-Z0-9.-] everywhere, so the free text a user types that the console shows back
// is a connector's URL (it needs only to start with http://)
const XSS = 'http://127.0.0.1:9/"><img src=x onerror="window.__xss=1;alert(1)"><script>alert(2)</script>';
await step('text from the server is shown as text, never run', async () => {
	await page.locator('a[data-nav=clouds]').click();
	await page.locator('#connector-new').click();
	const form = page.locator('form#connector-form');
	await setField(form, 'name', 'XSS');
	await setField(form, 'type', 'webhook');
	await setField(form, 'mode', 'manual');
	await setField(form, 'config.url', XSS);
	await setField(form, 'config.secret', 'xss-secret-0123456789abcdef');
	await page.locator('#connector-save').click();
	await until('XSS in GET /api/v1/connectors', async () => {
		const r = await api(adminToken, 'GET', '/api/v1/connectors/XSS');
		return r.status === 200 || `HTTP ${r.status} ${r.text}`;
	});
	const checkPage = async (where) => {
		await settle(page);
		const seen = await page.evaluate((x) => ({
			text: document.body.textContent.includes(x) ||
			    [...document.querySelectorAll('input, textarea')].some((i) => i.value === x),
			img: document.querySelectorAll('img[src="x"], img[onerror]').length,
			script: [...document.scripts].filter((s) => !s.src).length,
			ran: window.__xss !== undefined,
		}), XSS);
		assert.equal(seen.img, 0, `${where}: an img element was created from the text`);
		assert.equal(seen.script, 0, `${where}: an inline script element was created from the text`);
		assert.equal(seen.ran, false, `${where}: the injected handler ran`);
		return seen.text;
	};
	await page.locator('a[data-nav=clouds]').click();
	await page.locator('table#connectors tr[data-connector=XSS]').waitFor();
	const inList = await checkPage('#/clouds');
	await go(page, '#/clouds/XSS');
	await page.locator('form#connector-form').waitFor();
	const inForm = await checkPage('#/clouds/XSS');
	assert.ok(inList || inForm, 'the URL does not appear literally on #/clouds or #/clouds/XSS');
	await page.locator('a[data-nav=audit]').click();
	await page.locator('table#audit').waitFor();
	await checkPage('#/audit');
	// also through the device search and the claim code, whose text may come back in #error
	await page.locator('a[data-nav=claim]').click();
	await page.locator('#code').fill('<img src=x onerror=alert(3)>');
	await page.locator('#claim-submit').click();
	await waitText(page, '#claim-error', /\S/);
	await checkPage('#/claim');
	// the manual connector gets no pushes, but a revoke queues a removal for every connector
	const r = await api(adminToken, 'DELETE', '/api/v1/connectors/XSS');
	assert.ok([200, 204].includes(r.status), `DELETE the XSS connector: ${r.status}`);
});

await step('the audit screen: the chain is intact', async () => {
	await page.locator('a[data-nav=audit]').click();
	const v = await api(adminToken, 'GET', '/api/v1/audit/verify');
	assert.equal(v.status, 200, `GET /api/v1/audit/verify: ${v.status} ${v.text}`);
	assert.equal(v.json.ok, true);
	await waitText(page, '#audit-status', /chain intact/);
	await page.locator('table#audit tr').nth(1).waitFor();
	await shot(page, 'audit');
});

await step('CSRF: a change with the cookie but without X-CSRF-Token is refused, nothing changes', async () => {
	const before = await api(adminToken, 'GET', '/api/v1/audit');
	const claim = await pageFetch(page, '/api/v1/claims', {
		method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ code: b3.code }),
	});
	assert.equal(claim.status, 403, `a claim without X-CSRF-Token: ${claim.status} ${claim.text}`);
	assert.match(claim.text, /X-CSRF-Token/);
	const other = b1Udids.find((u) => u !== revokeUdid);
	const revoke = await pageFetch(page, `/api/v1/devices/${other}/revoke`, { method: 'POST' });
	assert.equal(revoke.status, 403, `a revoke without X-CSRF-Token: ${revoke.status}`);
	const signout = await pageFetch(page, '/api/v1/session', { method: 'DELETE' });
	assert.equal(signout.status, 403, `a sign-out without X-CSRF-Token: ${signout.status}`);
	const wrong = await pageFetch(page, '/api/v1/claims', {
		method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': 'A'.repeat(43) },
		body: JSON.stringify({ code: b3.code }),
	});
	assert.equal(wrong.status, 403, `a claim with a wrong X-CSRF-Token: ${wrong.status}`);
	assert.equal((await api(adminToken, 'GET', `/api/v1/batches/${b3.name}`)).status, 404,
	    `${b3.name} was claimed without the CSRF token`);
	assert.equal((await api(adminToken, 'GET', `/api/v1/devices/${other}`)).json.state, 'active');
	assert.equal((await pageFetch(page, '/api/v1/session')).status, 200, 'the session ended');
	const after = await api(adminToken, 'GET', '/api/v1/audit');
	assert.equal(after.json.records.length, before.json.records.length, 'the audit trail grew');
});

await step('claim the third reel from a photo of its label', async () => {
	await page.locator('a[data-nav=claim]').click();
	await page.locator('#photo').setInputFiles(b3.photo);
	await waitText(page, '#claim-result [data-field=batch]', b3.name);
	assert.equal(await text(page, '#claim-result [data-field=count]'), '2');
	assert.equal((await api(adminToken, 'GET', `/api/v1/batches/${b3.name}`)).status, 200,
	    `the API does not show ${b3.name} claimed`);
});

await step('an operator sees no clouds, audit or admin actions, and the API refuses them', async () => {
	const context = await newContext();
	const op = await context.newPage();
	pages.operator = op;
	watch(op, 'operator');
	await op.goto(consoleUrl);
	await signIn(op, operatorToken, 'line1');
	assert.match(await text(op, '#whoami'), /operator/);
	await op.locator('a[data-nav=claim]').waitFor();
	assert.equal(await op.locator('a[data-nav=clouds]').count(), 0, 'an operator has a clouds link');
	assert.equal(await op.locator('a[data-nav=audit]').count(), 0, 'an operator has an audit link');
	await go(op, '#/clouds');
	await settle(op);
	assert.equal(await op.locator('table#connectors').count(), 0, 'an operator sees the connectors table');
	assert.equal(await op.locator('#connector-new').count(), 0, 'an operator may add a connector');
	await go(op, `#/batches/${b1.name}`);
	await waitText(op, '#batch [data-field=count]', String(b1.count));
	await settle(op);
	for (const s of ['#download-csv', '#download-pem', '#download-json', '#provision-submit', '#transfer', '#release'])
		assert.equal(await op.locator(s).count(), 0, `an operator's batch page has ${s}`);
	const other = b1Udids.find((u) => u !== revokeUdid);
	await go(op, `#/devices/${other}`);
	await waitText(op, '#device [data-field=udid]', other);
	await settle(op);
	assert.equal(await op.locator('#revoke-submit').count(), 0, "an operator's device page has #revoke-submit");
	await op.locator('a[data-nav=suspicions]').click();
	await op.locator(`table#suspicions tr[data-udid="${cloneUdid}"]`).waitFor();
	await waitText(op, '#clone-policy [data-field=prefixV4]', '32');
	await settle(op);
	assert.equal(await op.locator('form#policy-form').count(), 0, 'an operator has the policy form');

	const session = JSON.parse((await pageFetch(op, '/api/v1/session')).text);
	assert.equal(session.role, 'operator');
	const csrf = { 'X-CSRF-Token': session.csrf, 'Content-Type': 'application/json' };
	const refused = [
		['GET', '/api/v1/connectors'],
		['GET', '/api/v1/audit'],
		['GET', `/api/v1/batches/${b1.name}/manifest?format=csv`],
		['POST', `/api/v1/devices/${other}/revoke`, '{}'],
		['POST', `/api/v1/batches/${b1.name}/release`, '{}'],
		['PUT', '/api/v1/clone-policy', '{"mode":"off"}'],
	];
	for (const [method, p, body] of refused) {
		const r = await pageFetch(op, p, { method, headers: method === 'GET' ? {} : csrf, body });
		assert.equal(r.status, 403, `an operator's ${method} ${p} with its cookie: ${r.status}`);
	}
	await context.close();
	delete pages.operator;
});

await step('sign out: the old cookie no longer opens the session', async () => {
	await page.locator('#signout').click();
	await page.locator('#signin-token').waitFor();
	const left = (await adminContext.cookies(origin)).filter((c) => c.name === 'devid_session' && c.value);
	assert.deepEqual(left, [], 'the browser still holds a session cookie');
	const r = await fetch(`${origin}/api/v1/session`, { headers: { Cookie: adminCookie } });
	assert.equal(r.status, 401, `GET /api/v1/session with the old cookie: ${r.status}`);
	const c = await fetch(`${origin}/api/v1/connectors`, { headers: { Cookie: adminCookie } });
	assert.equal(c.status, 401, `GET /api/v1/connectors with the old cookie: ${c.status}`);
});

await browser.close();
console.log(`console: all steps passed; screenshots in ${shots}`);
