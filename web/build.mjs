// SPDX-License-Identifier: Apache-2.0
// Builds the console into OUTDIR (default dist): index.html, app.js, app.css and
// licenses.txt (the licence of every package bundled into app.js). Run by meson through
// scripts/build-web; nothing here is fetched at run time.
import { build } from 'esbuild';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.resolve(process.argv[2] ?? 'dist');
const target = ['chrome100', 'firefox100', 'safari15'];

await mkdir(out, { recursive: true });
await build({
	entryPoints: [path.join(here, 'src/main.js')],
	outfile: path.join(out, 'app.js'),
	bundle: true,
	minify: true,
	format: 'iife',
	target,
	legalComments: 'none',
	logLevel: 'warning',
});
await build({
	entryPoints: [path.join(here, 'src/style.css')],
	outfile: path.join(out, 'app.css'),
	bundle: true,
	minify: true,
	target,
	logLevel: 'warning',
});
await copyFile(path.join(here, 'src/index.html'), path.join(out, 'index.html'));

// The licences of what app.js bundles: the runtime dependencies of package.json.
const pkg = JSON.parse(await readFile(path.join(here, 'package.json'), 'utf8'));
let text = 'The devid console (Apache-2.0) bundles these packages:\n';
for (const name of Object.keys(pkg.dependencies ?? {})) {
	const dir = path.join(here, 'node_modules', name);
	const meta = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8'));
	const file = ['LICENSE', 'LICENSE.md', 'LICENSE.txt', 'LICENCE'].find((f) =>
		existsSync(path.join(dir, f)),
	);
	text += `\n== ${name} ${meta.version} (${meta.license}) ==\n`;
	text += file ? await readFile(path.join(dir, file), 'utf8') : `licence: ${meta.license}\n`;
}
await writeFile(path.join(out, 'licenses.txt'), text);
