#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# http-guards: the limits that keep one client from taking the server, each shown with the
# server still serving others:
#   - body limits per route: 1 kB on /echo, 64 kB on /echo/big (413 naming the route's limit);
#   - slow-loris: headers sent a byte at a time are cut at the header timeout, a body
#     trickling in at the request timeout (the connection closed, logged as 408);
#   - open connections: over --max-connections a new one is answered 503 (JSON) and closed;
#     once the others close, connections are served again;
#   - per client address (127.0.0.1 and 127.0.0.2 are two clients): connections over
#     --max-client-connections are 503, requests being handled over --max-client-requests
#     are 429, and the other address is served meanwhile.
#
# Usage: sh http-guards.sh HTTP_TESTSERVER
set -u
me=http-guards
srv=${1:-}
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
. "$here/lib.sh"

# --- body limits per route ---------------------------------------------------------------
start_server main --threads 2 --max-body 1024 --big-body 65536 --header-timeout 2 \
    --request-timeout 3 || fail "the test server did not start"
a=$addr_main
# json_of N: a JSON object of exactly N bytes, as /echo wants
json_of() {
	printf '{"a":"'
	head -c $(($1 - 8)) /dev/zero | tr '\0' 'a'
	printf '"}'
}
json_of 2000 >"$tmp/2k"
json_of 70000 >"$tmp/70k"
req small-route-over --data-binary @"$tmp/2k" "http://$a/echo"
expect small-route-over 413 'limit of 1024 bytes for this route'
req big-route-fits --data-binary @"$tmp/2k" "http://$a/echo/big"
expect big-route-fits 200 '"bytes":2000'
req big-route-over --data-binary @"$tmp/70k" "http://$a/echo/big"
expect big-route-over 413 'limit of 65536 bytes for this route'
req after-limits "http://$a/healthz"
expect after-limits 200 ''

# --- slow-loris: headers and bodies that do not arrive in time ------------------------------
cat >"$tmp/slow.py" <<'EOF'
import socket, sys, time
host, port, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port))
if kind == "headers":
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    drip = b"X-Slow: " + b"a" * 100
else:
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n")
    drip = b"b" * 500
t0 = time.monotonic()
s.settimeout(0.3)
for byte in drip:
    try:
        s.send(bytes([byte]))
        if s.recv(4096) == b"":
            break
    except socket.timeout:
        continue
    except OSError:
        break
print("%.1f" % (time.monotonic() - t0))
EOF
python3 "$tmp/slow.py" 127.0.0.1 "$port_main" headers >"$tmp/slow-h" &
slow_h=$!
python3 "$tmp/slow.py" 127.0.0.1 "$port_main" body >"$tmp/slow-b" &
slow_b=$!
sleep 0.5
req while-slow "http://$a/healthz"
expect while-slow 200 ''
wait $slow_h
wait $slow_b
secs=$(cat "$tmp/slow-h")
case "$secs" in
[1-9].*) ;;
*) check_failed "slow headers: closed after '$secs' s, want after the 2 s header timeout" ;;
esac
secs=$(cat "$tmp/slow-b")
case "$secs" in
[2-9].*) ;;
*) check_failed "slow body: closed after '$secs' s, want after the 3 s request timeout" ;;
esac
grep -q 'msg="http request too slow".*status=408.*reason=header_timeout' "$tmp/main.err" ||
	check_failed "the slow headers are not logged as a 408 header_timeout"
grep -q 'msg="http request too slow".*status=408.*reason=request_timeout' "$tmp/main.err" ||
	check_failed "the slow body is not logged as a 408 request_timeout"
stop_server main

# --- open connections, in all and per client address ----------------------------------------
cat >"$tmp/hold.py" <<'EOF'
import socket, sys, time
# hold.py PORT N SRC [SRC2]: N idle connections from SRC, then one request from SRC and one
# from SRC2 (if given); prints the status of each, then closes the idle ones and asks again.
port, n, src = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
src2 = sys.argv[4] if len(sys.argv) > 4 else None
def conn(source):
    s = socket.socket()
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    return s
def ask(source):
    s = conn(source)
    s.settimeout(5)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        try:
            d = s.recv(4096)
        except OSError:
            break
        if not d:
            break
        data += d
    s.close()
    line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    body = data.split(b"\r\n\r\n", 1)[1].decode(errors="replace") if b"\r\n\r\n" in data else ""
    return line.split(" ")[1] if line.startswith("HTTP/") else "closed", body
held = [conn(src) for _ in range(n)]
time.sleep(0.3)
print("over", *ask(src))
if src2:
    print("other", *ask(src2))
for s in held:
    s.close()
time.sleep(0.3)
print("after", *ask(src))
EOF
start_server caps --threads 2 --max-connections 4 || fail "the test server did not start"
python3 "$tmp/hold.py" "$port_caps" 4 127.0.0.1 >"$tmp/caps.out" 2>&1 || check_failed "hold.py: $(cat "$tmp/caps.out")"
grep -q '^over 503 .*"error":"too_many_connections"' "$tmp/caps.out" ||
	check_failed "a 5th connection over --max-connections 4: $(cat "$tmp/caps.out")"
grep -q '^after 200 ' "$tmp/caps.out" ||
	check_failed "after the 4 closed, not served again: $(cat "$tmp/caps.out")"
stop_server caps

start_server client --threads 2 --max-client-connections 2 --max-client-requests 1 ||
	fail "the test server did not start"
python3 "$tmp/hold.py" "$port_client" 2 127.0.0.1 127.0.0.2 >"$tmp/client.out" 2>&1 ||
	check_failed "hold.py: $(cat "$tmp/client.out")"
grep -q '^over 503 .*too_many_connections' "$tmp/client.out" ||
	check_failed "a 3rd connection from one address over 2: $(cat "$tmp/client.out")"
grep -q '^other 200 ' "$tmp/client.out" ||
	check_failed "another address is refused meanwhile: $(cat "$tmp/client.out")"
grep -q '^after 200 ' "$tmp/client.out" ||
	check_failed "the address is not served again: $(cat "$tmp/client.out")"
# two requests of one address at once (two workers): one is handled, one 429
curl -s -o /dev/null -w '%{http_code}\n' "http://$addr_client/slow?ms=1500" >"$tmp/c1" &
c1=$!
sleep 0.5
req second-request "http://$addr_client/slow?ms=10"
expect second-request 429 '"error":"too_many_requests"'
[ "$(header retry-after)" = 1 ] || check_failed "429 without Retry-After: 1"
req other-address --interface 127.0.0.2 "http://$addr_client/slow?ms=10"
expect other-address 200 '"slept_ms":10'
wait $c1
[ "$(cat "$tmp/c1")" = 200 ] || check_failed "the first request: $(cat "$tmp/c1"), want 200"
stop_server client

finish "per-route body limits, header and request timeouts, connection and per-client caps"
