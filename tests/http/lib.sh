# SPDX-License-Identifier: Apache-2.0
# lib.sh - helpers of the src/http shell tests; sourced, never run on its own.
#
# A script sets `me` (its test name) and `srv` (the http_testserver binary) before sourcing
# this file. Servers started with start_server are stopped, and $tmp removed, however the
# script ends. Exit status 77 tells meson the test was skipped.

: "${me:?set me before sourcing lib.sh}"
: "${srv:?set srv before sourcing lib.sh}"

servers=""
nfailed=0

fail() {
	printf '%s: FAIL: %s\n' "$me" "$*" >&2
	exit 1
}

skip() {
	printf '%s: SKIP: %s\n' "$me" "$*"
	exit 77
}

note() {
	printf '%s: %s\n' "$me" "$*"
}

# check_failed MESSAGE: report a failed check and go on; finish fails at the end.
check_failed() {
	printf '%s: FAIL: %s\n' "$me" "$*" >&2
	nfailed=$((nfailed + 1))
}

finish() {
	stop_all
	[ "$nfailed" -eq 0 ] || fail "$nfailed checks failed (see above)"
	note "ok: $*"
}

need_tool() {
	command -v "$1" >/dev/null 2>&1 || skip "$1 is not installed (Debian package $2)"
}

# Stops every server still running (a failing script, an interrupt): TERM, then KILL.
stop_all() {
	for n in $servers; do
		eval "p=\${pid_$n:-}"
		[ -n "$p" ] || continue
		kill -TERM "$p" 2>/dev/null
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
		eval "pid_$n="
	done
}

cleanup() {
	stop_all
	rm -rf "$tmp"
}

[ -x "$srv" ] || fail "usage: $me.sh HTTP_TESTSERVER ($srv is not executable)"
need_tool curl curl
need_tool python3 python3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/devid-$me.XXXXXX") || fail "mktemp -d failed"
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# Sanitizer reports end the server with a failure status rather than printing and going on.
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=1:halt_on_error=1"
UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}halt_on_error=1:print_stacktrace=1"
export ASAN_OPTIONS UBSAN_OPTIONS

# start_server NAME ARGS...: starts the test server, waits until it prints its address, and
# sets addr_NAME (ADDR:PORT) and port_NAME. Its stdout and stderr are $tmp/NAME.out and .err.
start_server() {
	n=$1
	shift
	"$srv" "$@" >"$tmp/$n.out" 2>"$tmp/$n.err" &
	eval "pid_$n=$!"
	servers="$servers $n"
	i=0
	while ! grep -q '^listening ' "$tmp/$n.out" 2>/dev/null; do
		eval "p=\$pid_$n"
		if ! kill -0 "$p" 2>/dev/null || [ $i -ge 200 ]; then
			sed -n '1,20p' "$tmp/$n.err" >&2
			eval "pid_$n="
			return 1
		fi
		sleep 0.05
		i=$((i + 1))
	done
	a=$(sed -n 's/^listening //p' "$tmp/$n.out")
	eval "addr_$n=\$a"
	eval "port_$n=\${a##*:}"
	return 0
}

# stop_server NAME: SIGTERM; the server must exit 0 within 10 s, with no sanitizer report.
stop_server() {
	n=$1
	eval "p=\${pid_$n:-}"
	[ -n "$p" ] || return 0
	kill -TERM "$p"
	i=0
	while kill -0 "$p" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$p" 2>/dev/null; then
		kill -KILL "$p"
		check_failed "server $n did not stop within 10 s of SIGTERM"
	fi
	wait "$p"
	st=$?
	eval "pid_$n="
	if grep -Eq 'ERROR: [A-Za-z]+Sanitizer|runtime error:|LeakSanitizer' "$tmp/$n.err"; then
		sed -n '1,80p' "$tmp/$n.err" >&2
		check_failed "server $n: sanitizer report (see above)"
	elif [ "$st" -ne 0 ]; then
		tail -n 20 "$tmp/$n.err" >&2
		check_failed "server $n exited with status $st after SIGTERM"
	fi
}

# req WHAT CURL-ARGS...: one request with curl; sets $code (000 when curl failed), the
# response headers in $tmp/h and the body in $tmp/b. Every HTTP response must carry a
# Content-Type, and every error status a JSON error body: otherwise the check fails.
req() {
	what=$1
	shift
	rm -f "$tmp/h" "$tmp/b"
	code=$(curl -s -S -o "$tmp/b" -D "$tmp/h" -w '%{http_code}' --max-time 20 "$@" \
	    2>"$tmp/curl.err")
	[ -n "$code" ] || code=000
	[ -f "$tmp/b" ] || : >"$tmp/b"
	[ -f "$tmp/h" ] || : >"$tmp/h"
	[ "$code" = 000 ] && return 0
	if ! grep -qi '^content-type: ' "$tmp/h"; then
		check_failed "$what: status $code without a Content-Type"
	fi
	case $code in
	4?? | 5??) json_error_ok "$what" "$tmp/b" ;;
	esac
	return 0
}

# json_error_ok WHAT FILE: FILE is exactly {"error":"<code>","message":"<sentence>"}.
json_error_ok() {
	python3 - "$2" <<'PY' || check_failed "$1: the error body is not {\"error\",\"message\"} JSON: $(head -c 300 "$2")"
import json, sys
d = json.load(open(sys.argv[1]))
assert isinstance(d, dict) and sorted(d) == ["error", "message"], d
assert isinstance(d["error"], str) and d["error"] and isinstance(d["message"], str), d
PY
}

# expect WHAT CODE [BODY-ERE]: the last req answered CODE, its body matching BODY-ERE.
expect() {
	if [ "$code" != "$2" ]; then
		check_failed "$1: status $code, expected $2; body: $(head -c 300 "$tmp/b"); curl: $(head -c 300 "$tmp/curl.err")"
		return 1
	fi
	if [ -n "${3:-}" ] && ! grep -Eq -- "$3" "$tmp/b"; then
		check_failed "$1: body does not match /$3/: $(head -c 300 "$tmp/b")"
		return 1
	fi
	return 0
}

# header NAME: the value of a response header of the last req (case-blind), without CR.
header() {
	tr -d '\r' <"$tmp/h" | awk -v n="$1" 'BEGIN { n = tolower(n) }
	    { i = index($0, ":"); if (i > 0 && tolower(substr($0, 1, i - 1)) == n) {
	        v = substr($0, i + 1); sub(/^[ \t]+/, "", v); print v; exit } }'
}

# raw ADDR FILE: sends FILE's bytes on a plain TCP connection and prints the answer (all of
# it, until the server closes or 5 s pass). python3 stands in for a client that does not
# speak HTTP correctly, which curl cannot be made to be.
raw() {
	python3 - "$1" "$2" <<'PY'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host.strip("[]"), int(port)), timeout=5)
data = open(sys.argv[2], "rb").read()
try:
    s.sendall(data)
except OSError:
    pass  # the server may close before reading all of a flood; its answer still counts
out = b""
try:
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
except OSError:
    pass
sys.stdout.write(out.decode("latin-1"))
PY
}

# raw_expect WHAT ADDR CODE FILE: raw's answer to FILE is a CODE response with a JSON error.
raw_expect() {
	what=$1
	shift
	raw "$1" "$3" >"$tmp/raw.out"
	set -- "$what" "$2"
	line=$(head -n 1 "$tmp/raw.out" | tr -d '\r')
	case $line in
	"HTTP/1."?" $2 "*) ;;
	*)
		check_failed "$1: answer \"$line\", expected status $2"
		return 1
		;;
	esac
	tr -d '\r' <"$tmp/raw.out" | grep -qi '^content-type: application/json' ||
	    check_failed "$1: the $2 answer is not JSON"
	tr -d '\r' <"$tmp/raw.out" | awk 'b { print } /^$/ { b = 1 }' >"$tmp/raw.body"
	json_error_ok "$1" "$tmp/raw.body"
}
