#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# console-bundle: the committed web/dist is what web/src and the pinned npm packages build.
# devid compiles web/dist in (web/meson.build), so a source change without `make web` would
# ship an old console; this test catches it.
me=console-bundle
. "$(dirname "$0")/lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
need_tool node nodejs
make_tmp
sh "$root/scripts/web-deps" >"$tmp/deps" 2>&1 || skip "the console's npm packages cannot be installed: $(tail -1 "$tmp/deps")"
(cd "$root/web" && node build.mjs "$tmp/dist") >"$tmp/build" 2>&1 || { cat "$tmp/build" >&2; fail "web/build.mjs failed"; }
for f in index.html app.js app.css licenses.txt; do
	[ -f "$root/web/dist/$f" ] || fail "web/dist/$f is missing: run make web"
	cmp -s "$tmp/dist/$f" "$root/web/dist/$f" || fail "web/dist/$f differs from a build of web/src: run make web and commit web/dist"
done
extra=$(cd "$tmp/dist" && ls | grep -vxE 'index.html|app.js|app.css|licenses.txt' || true)
[ -z "$extra" ] || fail "web/build.mjs writes files web/meson.build does not embed: $extra"
note "web/dist matches web/src ($(wc -c <"$root/web/dist/app.js") bytes of app.js)"
