#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# logs.sh DEVID - devid serve's log, in each format, read back by parsers that share no code
# with it (Python's json; logcheck.py's own logfmt reader): every stderr line parses, a
# request's lines carry its X-Request-Id (the client's when valid, else one of ours, echoed
# in the response), the access line names the path as requested beside the route pattern,
# and an EST refusal names the tenant's path. Both formats carry the same events and keys.
me=logs
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
devid=$1
need_devid "$devid"
need_tool curl curl
need_tool openssl openssl
make_tmp
pids=
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd"

export DEVID_DB="sqlite:$tmp/devid.db"
"$devid" admin tenant add OEM1 --kind oem >/dev/null || fail "tenant add"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout srv.key -out srv.pem >/dev/null 2>&1 || fail "server cert"
# a device certificate devid does not trust, and a CSR of its key
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=stranger \
    -keyout dev.key -out dev.pem >/dev/null 2>&1 || fail "device cert"
openssl req -new -key dev.key -subj /CN=stranger -outform DER 2>/dev/null | base64 -w 64 >csr.b64 ||
	fail "csr"

# run FORMAT [ENV=VALUE]: devid serve with that log format; requests; its log in FORMAT.log
run_serve() {
	fmt=$1
	shift
	: >serve.out
	if [ "$fmt" = env-json ]; then
		DEVID_LOG_FORMAT=json "$devid" serve --listen 127.0.0.1:0 --device-listen 127.0.0.1:0 \
		    --tls-cert srv.pem --tls-key srv.key >serve.out 2>"$fmt.log" &
	else
		DEVID_LOG_FORMAT=nonsense "$devid" serve --listen 127.0.0.1:0 \
		    --device-listen 127.0.0.1:0 --tls-cert srv.pem --tls-key srv.key \
		    --log-format "$fmt" >serve.out 2>"$fmt.log" &
	fi
	pid=$!
	pids="$pids $pid"
	i=0
	until grep -q 'EST on' serve.out 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 150 ] || fail "$fmt: serve did not start: $(cat "$fmt.log")"
		sleep 0.1
	done
	api=$(sed -n 's|.*listening on https://||p' serve.out)
	est=$(sed -n 's|.*EST on https://\([^/ ]*\).*|\1|p' serve.out)
	c="curl -sS --cacert srv.pem -o /dev/null -D"
	$c "$fmt.h-ok" -H 'X-Request-Id: given-ID_1.2:3' "https://$api/healthz" || fail "$fmt: healthz"
	$c "$fmt.h-404" "https://$api/no/such%20%22thing%22" || fail "$fmt: 404"
	$c "$fmt.h-bad" -H 'X-Request-Id: has space' "https://$api/healthz" || fail "$fmt: bad id"
	$c "$fmt.h-long" -H "X-Request-Id: $(printf '%065d' 7)" "https://$api/healthz" ||
		fail "$fmt: long id"
	$c "$fmt.h-est" --cert dev.pem --key dev.key -H 'Content-Type: application/pkcs10' \
	    --data-binary @csr.b64 "https://$est/.well-known/est/OEM1/simpleenroll" || fail "$fmt: est"
	kill "$pid"
	wait "$pid" || fail "$fmt: serve exited $? on SIGTERM: $(tail -5 "$fmt.log")"
	if grep -Eq 'ERROR: [A-Za-z]+Sanitizer|runtime error:' "$fmt.log"; then
		fail "$fmt: sanitizer report: $(head -30 "$fmt.log")"
	fi
}

for fmt in logfmt json env-json; do
	run_serve $fmt
	parser=$fmt
	[ $fmt = env-json ] && parser=json
	/usr/bin/python3 "$here/logcheck.py" $parser "$fmt.log" >"$fmt.events" ||
		fail "$fmt: a line does not parse"
	/usr/bin/python3 - "$fmt" <<'PY' || fail "$fmt: the log does not say what it should"
import json, re, sys

fmt = sys.argv[1]
ev = [json.loads(l) for l in open(f"{fmt}.events")]
def header(name, field):
    for l in open(f"{fmt}.h-{name}", encoding="latin-1"):
        k, _, v = l.partition(":")
        if k.strip().lower() == field.lower():
            return v.strip()
    return None
def one(pred, what):
    got = [e for e in ev if pred(e)]
    assert len(got) == 1, f"{what}: {len(got)} lines, want 1: {got}"
    return got[0]
req = lambda e: e["msg"] == "http request"
if fmt == "logfmt":
    num = str
else:
    num = int

ok = one(lambda e: req(e) and e.get("request_id") == "given-ID_1.2:3", "the given id")
assert ok["path"] == "/healthz" and ok["route"] == "/healthz" and ok["status"] == num(200), ok
assert header("ok", "X-Request-Id") == "given-ID_1.2:3", "the given id is not echoed"

nf = one(lambda e: req(e) and e["status"] == num(404), "the 404")
assert nf["path"] == '/no/such%20%22thing%22' and nf["route"] == "(none)", nf
for name in ("404", "bad", "long"):
    rid = header(name, "X-Request-Id")
    assert rid and re.fullmatch(r"[0-9a-f]{16}", rid), f"{name}: no id of ours: {rid}"
    one(lambda e: req(e) and e.get("request_id") == rid, f"{name}: the echoed id")

est = one(lambda e: req(e) and e["server"] == "est", "the EST request")
assert est["path"] == "/.well-known/est/OEM1/simpleenroll", est
assert est["route"] == "/.well-known/est/{label}/simpleenroll" and est["status"] == num(403), est
assert header("est", "X-Request-Id") == est["request_id"]
ref = one(lambda e: e["msg"] == "est refused", "the EST refusal")
assert ref["path"] == est["path"] and ref["request_id"] == est["request_id"], ref
assert ref["code"] == "forbidden" and ref["reason"], ref

assert all("request_id" not in e for e in ev if e["msg"] in ("serve started", "serve stopped"))
assert [e["msg"] for e in ev].count("http request") == 5, "not one access line per request"
PY
	note "ok $fmt: $(wc -l <"$fmt.log") lines parse; ids, paths and the EST refusal"
done

# the same events with the same keys in both formats
/usr/bin/python3 - <<'PY' || fail "logfmt and JSON do not carry the same events"
import json
def shape(f):
    return sorted(
        (e["msg"], e["level"], tuple(e)) for e in (json.loads(l) for l in open(f)))
a, b = shape("logfmt.events"), shape("json.events")
assert a == b, f"logfmt {a}\njson   {b}"
PY
run "$devid" serve --log-format xml
[ "$rc" -eq 2 ] && grep -q "unknown log format 'xml'" "$tmp/err" || { show_run; fail "--log-format xml"; }
export DEVID_LOG_FORMAT=yaml
run "$devid" gateway --tls-cert x --tls-key x --trust x --secret 0123456789abcdef --db x
unset DEVID_LOG_FORMAT
[ "$rc" -eq 2 ] && grep -q 'unknown log format' "$tmp/err" || { show_run; fail "gateway DEVID_LOG_FORMAT=yaml"; }
note "ok both formats carry the same events; an unknown format is a usage error"
