#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# http-basic: src/http routes and answers as server.h and router.h promise, seen by curl.
# The server binds 127.0.0.1 when not told where; 200, 404 and 405 (with Allow) answer JSON;
# path parameters and query values arrive decoded, an encoded '/' or a bad %XX is 400; headers
# are read case-blind; HEAD has the GET's length and no body; a handler that answers nothing
# gives 500; every response has a Content-Type. /metrics is Prometheus text that counted the
# requests; one log line per request, never the Authorization header nor the query string.
#
# Usage: sh http-basic.sh HTTP_TESTSERVER
set -u
me=http-basic
srv=${1:-}
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
. "$here/lib.sh"

start_server main --threads 4 --max-body 1024 || fail "the test server did not start"
a=$addr_main
case $a in
127.0.0.1:*) ;;
*) check_failed "with no --listen the server bound $a, expected 127.0.0.1:PORT" ;;
esac

req healthz "http://$a/healthz"
expect healthz 200 '^\{"status":"ok"\}$' &&
    [ "$(header content-type)" = application/json ] ||
    check_failed "healthz: Content-Type $(header content-type), expected application/json"
req healthz-again "http://$a/healthz"
expect healthz-again 200

req not-found "http://$a/no/such/thing"
expect not-found 404 '"error":"not_found"'

req delete-healthz -X DELETE "http://$a/healthz"
expect delete-healthz 405 '"error":"method_not_allowed"' &&
    [ "$(header allow)" = "GET, HEAD" ] ||
    check_failed "405: Allow is \"$(header allow)\", expected \"GET, HEAD\""

req get-transfer "http://$a/api/v1/batches/ACME/B1/transfer"
expect get-transfer 405 && [ "$(header allow)" = POST ] ||
    check_failed "405 on transfer: Allow is \"$(header allow)\", expected \"POST\""

req post-transfer -X POST "http://$a/api/v1/batches/ACME/B1/transfer"
expect post-transfer 200 '^\{"transferred":true\}$'

req echo -H 'Content-Type: application/json' --data-binary '{"a":[1,2],"b":"x"}' \
    "http://$a/echo"
expect echo 200 '^\{"echo":\{"a":\[1,2\],"b":"x"\},"bytes":19\}$'

req echo-not-json --data-binary 'not json' "http://$a/echo"
expect echo-not-json 400 '"error":"bad_json"'

req params "http://$a/api/v1/batches/AC%4DE/B-1.2/manifest?format=p%65m&x=a+b"
expect params 200 '^\{"vendor":"ACME","batch":"B-1.2","format":"pem"\}$'

req no-format "http://$a/api/v1/batches/ACME/B1/manifest"
expect no-format 200 '^\{"vendor":"ACME","batch":"B1","format":null\}$'

req encoded-slash "http://$a/api/v1/batches/A%2FB/B1/manifest"
expect encoded-slash 400 '"error":"bad_request"'

req bad-percent "http://$a/api/v1/batches/%zz/B1/manifest"
expect bad-percent 400 '"error":"bad_request"'

req encoded-nul "http://$a/api/v1/batches/A%00/B1/manifest"
expect encoded-nul 400 '"error":"bad_request"'

req dotdot --path-as-is "http://$a/api/v1/batches/../B1/manifest"
expect dotdot 404 '"error":"not_found"'

req repeated-query "http://$a/api/v1/batches/ACME/B1/manifest?format=a&format=b"
expect repeated-query 400 'given twice'

req headers -H 'x-test: hello' -H 'Authorization: Bearer SECRET-TOKEN-1234' \
    "http://$a/headers?token=QUERY-SECRET-5678"
expect headers 200 '^\{"x_test":"hello","authorization":true\}$'

# HEAD over a raw connection, to see that no body bytes follow the headers
printf 'HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >"$tmp/head.req"
raw "$a" "$tmp/head.req" | tr -d '\r' >"$tmp/head.out"
if ! head -n 1 "$tmp/head.out" | grep -q '^HTTP/1.1 200 ' ||
    ! grep -qi '^content-length: 15$' "$tmp/head.out" ||
    [ "$(awk 'b { print } /^$/ { b = 1 }' "$tmp/head.out" | wc -c)" -ne 0 ]; then
	check_failed "HEAD: expected 200, Content-Length 15 and no body, got: $(head -c 300 "$tmp/head.out")"
fi

req nostatus "http://$a/nostatus"
expect nostatus 500 '"error":"internal"'

# /metrics: every sample follows the HELP and TYPE of its family, every line has the shape
# of the text format, and the counters saw the requests above.
req metrics "http://$a/metrics"
expect metrics 200
case $(header content-type) in
text/plain*version=0.0.4*) ;;
*) check_failed "metrics: Content-Type $(header content-type)" ;;
esac
awk '
/^# HELP / { help[$3] = 1; next }
/^# TYPE / { if (!($3 in help)) { print "TYPE before HELP: " $0; bad = 1 }
	     type[$3] = $4; next }
/^#/ { next }
{
	if ($0 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})? [-+]?([0-9.]+([eE][-+]?[0-9]+)?|Inf|NaN)$/) {
		print "not a sample line: " $0; bad = 1; next
	}
	name = $0; sub(/[{ ].*/, "", name)
	base = name; sub(/_(bucket|sum|count)$/, "", base)
	if (name in type) { if (type[name] == "histogram") { print "histogram sample without suffix: " $0; bad = 1 } }
	else if (!(base in type) || type[base] != "histogram") { print "sample without a TYPE: " $0; bad = 1 }
	n++
}
END { if (n == 0) { print "no samples"; bad = 1 } exit bad }' "$tmp/b" >"$tmp/awk.out" ||
    check_failed "metrics: not valid exposition text: $(head -n 5 "$tmp/awk.out")"
count=$(sed -n 's/^http_requests_total{server="test",method="GET",route="\/healthz",status="200"} //p' "$tmp/b")
[ "$count" = 2 ] || check_failed "metrics: GET /healthz 200 counted \"$count\" times, expected 2"
grep -q '^http_requests_total{server="test",method="DELETE",route="/healthz",status="405"} 1$' "$tmp/b" ||
    check_failed "metrics: the 405 was not counted"
grep -q '^http_requests_total{server="test",method="GET",route="(none)",status="404"} 2$' "$tmp/b" ||
    check_failed "metrics: the two 404s were not counted"
grep -q '^http_request_duration_seconds_count{server="test",route="/healthz"} 4$' "$tmp/b" ||
    check_failed "metrics: the latency histogram of /healthz did not see 2 GET, 1 DELETE, 1 HEAD"
grep -q '^testserver_echo_calls_total 2$' "$tmp/b" ||
    check_failed "metrics: the application's own counter is not in the same registry"

# A body arriving faster than libevent's 4 kB reads is read in larger pieces: a 12 MB body
# echoes byte for byte, a request pipelined behind it on the same connection is answered
# next, and a 20 MB body is still refused at the route's 16 MB limit. A request pipelined
# behind another gets its own route's limit: 2 MB to /echo/big behind a GET is taken (the
# default limit is 1 MiB), and 2 MB to /echo behind a small /echo/big is refused.
start_server bulk --threads 2 --big-body 16777216 || fail "the bulk test server did not start"
python3 - "$addr_bulk" >"$tmp/bulk.out" 2>&1 <<'PY'
import hashlib, json, os, socket, sys
host, port = sys.argv[1].rsplit(":", 1)

def response(f):
    status = f.readline().split(b" ")[1]
    length = 0
    while True:
        line = f.readline()
        if line in (b"\r\n", b""):
            break
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return status, f.read(length)

body = json.dumps({"a": os.urandom(6 << 20).hex()}, separators=(",", ":")).encode()
s = socket.create_connection((host, int(port)), timeout=30)
s.sendall(b"POST /echo/big HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
          b"Content-Length: %d\r\n\r\n" % len(body) + body +
          b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
f = s.makefile("rb")
status, got = response(f)
answer = json.loads(got)
echo = json.dumps(answer["echo"], separators=(",", ":")).encode()
print("big", status.decode(), answer["bytes"] == len(body),
      hashlib.sha256(echo).digest() == hashlib.sha256(body).digest())
status, got = response(f)
print("next", status.decode(), got.decode())
s.close()
s = socket.create_connection((host, int(port)), timeout=30)
over = b'{"a":"' + b"b" * (20 << 20) + b'"}'
s.sendall(b"POST /echo/big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(over))
try:
    s.sendall(over)
except OSError:
    pass  # the server may close before the body has all gone
status, got = response(s.makefile("rb"))
print("over", status.decode(), b"limit of 16777216 bytes" in got)
s.close()
mid = json.dumps({"a": "c" * (2 << 20)}).encode()
s = socket.create_connection((host, int(port)), timeout=30)
s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
          b"POST /echo/big HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
          b"Content-Length: %d\r\n\r\n" % len(mid) + mid)
f = s.makefile("rb")
first, _ = response(f)
status, got = response(f)
print("behind", first.decode(), status.decode(), status == b"200" and json.loads(got)["bytes"] == len(mid))
s.close()
s = socket.create_connection((host, int(port)), timeout=30)
s.sendall(b"POST /echo/big HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
          b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(mid))
try:
    s.sendall(mid)
except OSError:
    pass
f = s.makefile("rb")
first, _ = response(f)
status, got = response(f)
print("small", first.decode(), status.decode())
PY
grep -qx 'big 200 True True' "$tmp/bulk.out" &&
    grep -qx 'next 200 {"status":"ok"}' "$tmp/bulk.out" &&
    grep -qx 'over 413 True' "$tmp/bulk.out" &&
    grep -qx 'behind 200 200 True' "$tmp/bulk.out" &&
    grep -qx 'small 200 413' "$tmp/bulk.out" ||
    check_failed "a fast 12 MB body, a request behind it, a 20 MB body, pipelined limits: $(head -c 600 "$tmp/bulk.out")"
stop_server bulk

# IPv6 loopback, where the host has one
if start_server v6 --listen '[::1]:0' --threads 1; then
	req ipv6 -g "http://$addr_v6/healthz"
	expect ipv6 200 '"status":"ok"'
	case $addr_v6 in "[::1]:"*) ;; *) check_failed "IPv6: bound $addr_v6" ;; esac
	stop_server v6
else
	note "no IPv6 loopback here: [::1] not checked"
fi

stop_server main
grep -q '^ts=[0-9TZ:.-]* level=info msg="http request" request_id=[0-9a-f]\{16\} server=test method=GET path=/healthz route=/healthz status=200 ms=[0-9.]* bytes=15 peer=127.0.0.1:[0-9]*$' "$tmp/main.err" ||
    check_failed "log: no line for GET /healthz; log: $(head -n 3 "$tmp/main.err")"
lines=$(grep -c 'msg="http request" request_id=[^ ]* server=test ' "$tmp/main.err")
[ "$lines" -eq 19 ] || check_failed "log: $lines request lines, expected 19 (one per request)"
if grep -q 'SECRET-TOKEN-1234\|QUERY-SECRET-5678' "$tmp/main.err"; then
	check_failed "log: the Authorization header or the query string was logged"
fi
grep -q 'msg="http stopped" server=test$' "$tmp/main.err" ||
    check_failed "log: no clean stop"

finish "routes, JSON errors, decoding, HEAD, metrics and logs"
