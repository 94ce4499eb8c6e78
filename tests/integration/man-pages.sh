#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# man-pages: the generated man pages lint clean (mandoc -T lint -W warning, lexgrog finds
# their NAME, man -l renders them without a groff warning), and each names every option its
# commands' usage texts print, so a page cannot fall behind the binary it describes.
#
# Usage: sh man-pages.sh MANDIR DEVID DEVID-AGENT
set -u
me=man-pages
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

mandir=${1:-}
devid=${2:-}
agent=${3:-}
need_devid "$devid"
[ -x "$agent" ] || fail "$agent: not an executable devid-agent"
[ -d "$mandir" ] || fail "$mandir: no such directory (the built man pages)"
need_tool mandoc mandoc
need_tool lexgrog man-db
need_tool man man-db
make_tmp

failures=0
check_failed() {
	printf '%s: FAIL: %s\n' "$me" "$*" >&2
	failures=$((failures + 1))
}

# page_options PAGE CMD...: every --option in CMD's usage text is in PAGE's rendered text
page_options() {
	page=$1
	shift
	run "$@" --help
	[ "$rc" -eq 0 ] || { check_failed "$* --help: exit status $rc"; return; }
	opts=$(grep -Eo -- '--[a-z][a-z0-9-]*' "$tmp/out" | sort -u)
	[ -n "$opts" ] || { check_failed "$* --help: no options found in its usage"; return; }
	for o in $opts; do
		grep -Eq -- "(^|[^a-z0-9-])$o([^a-z0-9-]|\$)" "$tmp/$page.txt" ||
			check_failed "$page does not mention $o, which \`$* --help\` prints"
	done
}

pages="devid.1 devid-serve.8 devid-admin.8 devid-gateway.8 devid-agent.1 devid.conf.5"
for page in $pages; do
	f=$mandir/$page
	[ -s "$f" ] || { check_failed "$page was not generated"; continue; }
	mandoc -T lint -W warning "$f" >"$tmp/lint" 2>&1
	if [ $? -ne 0 ] || [ -s "$tmp/lint" ]; then
		check_failed "$page: mandoc -T lint -W warning:"
		sed -n 1,20p "$tmp/lint" >&2
	fi
	name=${page%.*}
	lexgrog "$f" >"$tmp/lex" 2>&1 || check_failed "$page: lexgrog cannot parse its NAME: $(cat "$tmp/lex")"
	grep -q ": \"$name - " "$tmp/lex" || check_failed "$page: lexgrog reads $(cat "$tmp/lex"), not \"$name - ...\""
	LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$f" >"$tmp/$page.man" 2>"$tmp/man.err"
	[ -s "$tmp/man.err" ] && check_failed "$page: man -l warns: $(sed -n 1,5p "$tmp/man.err")"
	grep -q "^SYNOPSIS" "$tmp/$page.man" || check_failed "$page: man -l renders no SYNOPSIS"
	mandoc -T ascii "$f" | col -b >"$tmp/$page.txt"
done

page_options devid.1 "$devid"
page_options devid.1 "$devid" claim
for c in devices manifest revoke custody import audit jobs connectors provision quota tokens trust; do
	page_options devid.1 "$devid" $c
done
page_options devid.1 "$devid" vendor
page_options devid-serve.8 "$devid" serve
page_options devid-admin.8 "$devid" admin
page_options devid-admin.8 "$devid" admin audit
page_options devid-admin.8 "$devid" admin secrets-key
page_options devid-gateway.8 "$devid" gateway
page_options devid-agent.1 "$agent"
# the configuration file names the options of both commands it configures
page_options devid.conf.5 "$devid" serve
page_options devid.conf.5 "$devid" gateway

[ "$failures" -eq 0 ] || fail "$failures problem(s) in the man pages"
note "6 pages lint clean and name every option of their commands' usage"
