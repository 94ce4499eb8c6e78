# SPDX-License-Identifier: Apache-2.0
# lib.sh - helpers shared by the integration scripts; sourced, never run on its own.
#
# A script sets `me` (its test name) before sourcing this file. Nothing here exits the
# script except fail/skip. Exit status 77 tells meson the test was skipped.

: "${me:?set me before sourcing lib.sh}"

fail() {
	printf '%s: FAIL: %s\n' "$me" "$*" >&2
	exit 1
}

skip() {
	# the reason goes to stdout: scripts/run-tests shows the last line of it
	printf '%s: SKIP: %s\n' "$me" "$*"
	exit 77
}

note() {
	printf '%s: %s\n' "$me" "$*"
}

# need_tool NAME PACKAGE: skip (not fail) when a tool of the test itself is missing.
need_tool() {
	command -v "$1" >/dev/null 2>&1 || skip "$1 is not installed (Debian package $2)"
}

# need_devid PATH: the binary under test must exist; that one is a failure, not a skip.
need_devid() {
	[ -n "${1:-}" ] || fail "usage: $me.sh DEVID [...]"
	[ -x "$1" ] || fail "$1: not an executable devid"
}

# make_tmp: a private work directory in $tmp, removed however the script ends.
make_tmp() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/devid-$me.XXXXXX") || fail "mktemp -d failed"
	trap 'rm -rf "$tmp"' EXIT
	trap 'exit 1' HUP INT TERM
}

# run CMD...: runs CMD with stdout in $tmp/out, stderr in $tmp/err, its status in $rc.
# A sanitizer report fails the test even where CMD was expected to fail (outside meson test,
# ASan and LSan exit with 1 and 23, which would pass for an ordinary error).
run() {
	"$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if grep -Eq 'ERROR: [A-Za-z]+Sanitizer|runtime error:' "$tmp/err"; then
		sed -n '1,60p' "$tmp/err" >&2
		fail "sanitizer report from: $*"
	fi
}

# show_run: what the last `run` printed, for failure messages.
show_run() {
	printf -- '--- exit status %s; stdout:\n' "$rc"
	sed -n '1,20p' "$tmp/out"
	printf -- '--- stderr:\n'
	sed -n '1,20p' "$tmp/err"
	printf -- '---\n'
}

# fail_run MESSAGE: fail, showing what the last `run` printed.
fail_run() {
	show_run >&2
	fail "$*"
}

# file_mode PATH: the permission string of ls -l, e.g. -rw-------
file_mode() {
	# shellcheck disable=SC2012 # one named file; ls -l is the POSIX way to see its mode
	ls -ld "$1" | awk '{ print $1 }'
}

# sha256_of FILE: the hex digest of a file (sha256sum from coreutils, or openssl).
sha256_of() {
	if command -v sha256sum >/dev/null 2>&1; then
		sha256sum <"$1" | awk '{ print $1 }'
	else
		openssl dgst -sha256 -r "$1" | awk '{ print $1 }'
	fi
}

# For scripts of many independent checks: a failed check is reported and counted, the script
# goes on, and finish() fails at the end if any check failed.
nfailed=0

# check_failed MESSAGE: report a failed check and go on.
check_failed() {
	printf '%s: FAIL: %s\n' "$me" "$*" >&2
	nfailed=$((nfailed + 1))
}

# check_failed_run MESSAGE: the same, showing what the last `run` printed.
check_failed_run() {
	show_run >&2
	check_failed "$@"
}

finish() {
	[ "$nfailed" -eq 0 ] || fail "$nfailed checks failed (see above)"
	note "ok: $*"
}

# wait_file FILE WHAT: waits (10 s) until FILE is not empty (a helper writes its port there),
# else fails naming WHAT, with the start of X.err or X.log beside X.port when there is one.
wait_file() {
	i=0
	until [ -s "$1" ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "$2 did not start: $(cat "${1%.port}.err" "${1%.port}.log" 2>/dev/null | head -c 400)"
		sleep 0.1
	done
}

# api_curl OUT METHOD PATH [CURL-ARG...]: curl -X METHOD $url$PATH with the answer in OUT, the
# status in $status and the Content-Type in $ctype. With DEVID_API_RECORD=DIR set, the
# exchange is also kept in a new DIR/x.XXXXXX, for tests/openapi/check_responses.py: `meta`
# (method, path, status, content type, and the request's Content-Type, a line each), `body`
# (the answer) and, when the request had one, `request` (its body). The request body is the
# argument of --data-binary, -d or --data (@FILE: that file's bytes) or --data-raw (a second
# one is an error: curl would join them), its type that of -H 'Content-Type: ...' (the header
# name in any case), else curl's default, application/x-www-form-urlencoded.
api_curl() {
	_out=$1 _method=$2 _path=$3
	shift 3
	_w=$(curl -sS -o "$_out" -w '%{http_code} %{content_type}' -X "$_method" "$@" "$url$_path")
	status=${_w%% *}
	ctype=${_w#* }
	[ -n "${DEVID_API_RECORD:-}" ] || return 0
	_x=$(mktemp -d "$DEVID_API_RECORD/x.XXXXXX") || fail "mktemp -d in $DEVID_API_RECORD"
	_next="" _rtype=""
	for _a in "$@"; do
		case $_next in
		data | raw)
			[ ! -e "$_x/request" ] || fail "api_curl $_method $_path: more than one request body"
			case $_next$_a in
			data@*) cp "${_a#@}" "$_x/request" || fail "api_curl: no request body ${_a#@}" ;;
			*) printf '%s' "$_a" >"$_x/request" ;;
			esac
			;;
		header)
			case $_a in
			[Cc][Oo][Nn][Tt][Ee][Nn][Tt]-[Tt][Yy][Pp][Ee]:*)
				_rtype=${_a#*:}
				_rtype=${_rtype# }
				;;
			esac
			;;
		*)
			case $_a in
			--data-binary | -d | --data) _next=data ;;
			--data-raw) _next=raw ;;
			-H | --header) _next=header ;;
			esac
			continue
			;;
		esac
		_next=""
	done
	[ -n "$_rtype" ] || [ ! -e "$_x/request" ] || _rtype=application/x-www-form-urlencoded
	printf '%s\n%s\n%s\n%s\n%s\n' "$_method" "$_path" "$status" "$ctype" "$_rtype" >"$_x/meta"
	if [ -f "$_out" ]; then cp "$_out" "$_x/body"; else : >"$_x/body"; fi
}

# wait_line FILE PATTERN WHAT: waits (10 s) until a line of FILE matches PATTERN (a server
# prints its address there), else fails naming WHAT, with the end of the .log beside FILE.
wait_line() {
	i=0
	until grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "$3 did not start: $(tail -5 "${1%.out}.log" 2>/dev/null)"
		sleep 0.1
	done
}

# api_as TOKEN METHOD PATH [BODY]: a JSON request to $url with the bearer TOKEN; the status
# in $status, the answer in ./body.
api_as() {
	if [ -n "${4:-}" ]; then
		api_curl body "$2" "$3" -H "Authorization: Bearer $1" \
		    -H 'Content-Type: application/json' --data-binary "$4"
	else
		api_curl body "$2" "$3" -H "Authorization: Bearer $1"
	fi
}

# api METHOD PATH [BODY]: api_as the OEM admin token $A1 (scripts with other callers
# define their own api).
api() {
	api_as "$A1" "$@"
}
