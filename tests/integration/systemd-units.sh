#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# systemd-units: packaging/systemd/devid.service and devid-gateway.service pass
# `systemd-analyze verify` (directives, ExecStart's binary, the man pages of Documentation=)
# and `systemd-analyze security --offline=true` rates their sandbox at most 2.5 ("OK").
# No systemd has to run: a copy of each unit points ExecStart at the built binary and MANPATH
# at the built man pages.
#
# Usage: sh systemd-units.sh UNITDIR DEVID MANDIR
set -u
me=systemd-units
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

units=${1:-}
devid=${2:-}
mandir=${3:-}
need_devid "$devid"
[ -d "$units" ] || fail "$units: no such directory"
need_tool systemd-analyze systemd
need_tool man man-db
make_tmp

MAX_EXPOSURE=2.5
mkdir -p "$tmp/man/man1" "$tmp/man/man8"
cp "$mandir"/*.1 "$tmp/man/man1/" && cp "$mandir"/*.8 "$tmp/man/man8/" || fail "no man pages in $mandir"
for unit in devid.service devid-gateway.service; do
	[ -f "$units/$unit" ] || fail "$units/$unit is missing"
	grep -q '^ExecStart=/usr/bin/devid ' "$units/$unit" || fail "$unit: ExecStart is not /usr/bin/devid"
	grep -q '^Type=notify$' "$units/$unit" || fail "$unit: not Type=notify"
	sed "s#^\(ExecStart\(Pre\)\{0,1\}\)=/usr/bin/devid #\1=$devid #" "$units/$unit" >"$tmp/$unit"
	run env MANPATH="$tmp/man" systemd-analyze verify "$tmp/$unit"
	[ "$rc" -eq 0 ] && [ ! -s "$tmp/out" ] && [ ! -s "$tmp/err" ] ||
		fail_run "$unit: systemd-analyze verify"
	run systemd-analyze security --offline=true --no-pager "$tmp/$unit"
	[ "$rc" -eq 0 ] || fail_run "$unit: systemd-analyze security"
	score=$(sed -n "s/.*Overall exposure level for $unit: \([0-9.]*\).*/\1/p" "$tmp/out")
	[ -n "$score" ] || fail_run "$unit: no exposure level in systemd-analyze security's output"
	awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }' || {
		grep '✗' "$tmp/out" >&2
		fail "$unit: exposure level $score, above $MAX_EXPOSURE"
	}
	note "$unit: systemd-analyze verify clean, security exposure $score (at most $MAX_EXPOSURE)"
done
