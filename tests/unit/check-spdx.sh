#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Every source file of devid (C, shell, Python, JavaScript, Meson, make) names its licence in
# its first lines with an SPDX identifier, so a file copied out of the tree still says it.
# Not: web/dist (built from web/src) and tests/data (outside test data, with its own SOURCES).
set -u
root=${1:?usage: check-spdx.sh SOURCE_ROOT}
cd "$root" || exit 1
files=$(git ls-files 2>/dev/null) || files=$(find . -type f | sed 's|^\./||' | grep -v '^\.git/')
bad=0
n=0
for f in $(printf '%s\n' "$files" |
	grep -E '\.(c|h|sh|py|mjs|js|build)$|^scripts/|^bench/run$|^\.ci/run$|(^|/)Makefile$|^meson_options\.txt$|/run-(all|one)$|/scdoc-roff$' |
	grep -Ev '^web/dist/|^tests/data/'); do
	n=$((n + 1))
	head -3 "$f" | grep -q 'SPDX-License-Identifier: Apache-2.0' || {
		echo "not ok $f: no SPDX-License-Identifier in its first lines"
		bad=1
	}
done
[ $bad -eq 0 ] && echo "$n source files name their licence (SPDX)"
exit $bad
