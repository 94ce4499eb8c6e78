#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Every C file of devid includes lib/banned.h after its other includes, so the banned
# functions (strcpy, sprintf, gmtime, atoi ...) are compile errors everywhere.
set -u
root=${1:?usage: check-banned.sh SOURCE_ROOT}
bad=0
for f in $(cd "$root" && git ls-files 'src/*.c' 'tests/*.c' 2>/dev/null || find src tests -name '*.c'); do
	last=$(grep -n '^#include' "$root/$f" | tail -1)
	case "$last" in
	*'"lib/banned.h"'* | *'"banned.h"'*) ;;
	*)
		echo "not ok $f: last #include is not banned.h (${last:-none})"
		bad=1
		;;
	esac
done
[ $bad -eq 0 ] && echo "every C file includes banned.h last"
exit $bad
