#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# http-concurrency: handlers block on worker threads and the others go on serving. 50
# concurrent requests over 4 workers (25 of them sleeping 300 ms in their handler, 25 echoes)
# are all answered; two handlers block at the same time; keep-alive reuses one
# connection for several requests; SIGTERM while a slow handler runs lets its response out,
# then the server exits 0 and frees everything (a sanitizer build would report a leak).
#
# Usage: sh http-concurrency.sh HTTP_TESTSERVER
set -u
me=http-concurrency
srv=${1:-}
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
. "$here/lib.sh"

start_server main --threads 4 || fail "the test server did not start"
a=$addr_main

now_ms() {
	python3 -c 'import time; print(int(time.monotonic() * 1000))'
}

t0=$(now_ms)
pids=""
i=0
while [ $i -lt 50 ]; do
	if [ $((i % 2)) -eq 0 ]; then
		curl -s -o "$tmp/c$i.body" -w '%{http_code}' --max-time 30 \
		    "http://$a/slow?ms=300" >"$tmp/c$i.code" 2>/dev/null &
	else
		curl -s -o "$tmp/c$i.body" -w '%{http_code}' --max-time 30 \
		    --data-binary "{\"n\":$i}" "http://$a/echo" >"$tmp/c$i.code" 2>/dev/null &
	fi
	pids="$pids $!"
	i=$((i + 1))
done
for p in $pids; do
	wait "$p"
done
t1=$(now_ms)

ok=0
i=0
while [ $i -lt 50 ]; do
	c=$(cat "$tmp/c$i.code" 2>/dev/null)
	if [ $((i % 2)) -eq 0 ]; then
		want='{"slept_ms":300}'
	else
		want="{\"echo\":{\"n\":$i},\"bytes\":$(printf '{"n":%d}' $i | wc -c)}"
	fi
	if [ "$c" = 200 ] && [ "$(cat "$tmp/c$i.body")" = "$want" ]; then
		ok=$((ok + 1))
	else
		check_failed "request $i: status \"$c\", body $(head -c 200 "$tmp/c$i.body" 2>/dev/null)"
	fi
	i=$((i + 1))
done
[ $ok -eq 50 ] || check_failed "$ok of 50 concurrent requests answered correctly"
note "50 concurrent requests in $((t1 - t0)) ms"

# Handlers run in parallel, shown by order rather than by a clock (a loaded machine makes any
# time limit flaky): of six requests whose handlers block 5 s each, a second one starts
# blocking before the first has ended. (Which worker takes which connection is the
# kernel's choice, so the check asks only for two at once, not for one per worker.)
slow=""
for i in 1 2 3 4 5 6; do
	curl -s -o /dev/null --max-time 60 "http://$a/slow?ms=5000" &
	slow="$slow $!"
done
i=0
until [ "$(grep -c 'slow handler sleeping" request_id=[0-9a-f]* ms=5000' "$tmp/main.err")" -ge 2 ]; do
	i=$((i + 1))
	[ $i -lt 400 ] || fail "no two slow handlers started: $(tail -3 "$tmp/main.err")"
	sleep 0.05
done
done_first=$(grep -c 'path=/slow route=/slow status=200 ms=50' "$tmp/main.err")
[ "$done_first" -eq 0 ] ||
	check_failed "the second blocking handler started only after the first had ended"
for p in $slow; do
	wait "$p"
done

# Connections spread over the workers: beside an idle keep-alive connection, which one
# worker holds, two new connections go to two other workers, so their handlers run at the
# same time (/pair answers "paired":true only then). Twenty trials: left to the kernel, one
# worker would take both of a trial's connections about one time in four.
python3 - "$a" >"$tmp/pair.out" 2>&1 <<'PY'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
idle = socket.create_connection((host, int(port)), timeout=10)
idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
idle.recv(4096)
bad = 0
for trial in range(20):
    pair = [socket.create_connection((host, int(port)), timeout=10) for _ in range(2)]
    for s in pair:
        # the server closes each after its answer, so it has let go of both by the next trial
        s.sendall(b"GET /pair HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    for s in pair:
        got = b""
        while True:
            b = s.recv(4096)
            if not b:
                break
            got += b
        s.close()
        if b'"paired":true' not in got:
            bad += 1
            print("trial %d: %s" % (trial, got[-60:]))
print("unpaired %d" % bad)
PY
grep -q '^unpaired 0$' "$tmp/pair.out" ||
	check_failed "two new connections were served one after the other: $(cat "$tmp/pair.out")"

# keep-alive: three requests on one curl command line share one connection
req metrics-before "http://$a/metrics"
before=$(sed -n 's/^http_connections_total{server="test"} //p' "$tmp/b")
curl -s -o /dev/null -o /dev/null -o /dev/null "http://$a/healthz" "http://$a/healthz" \
    "http://$a/healthz"
req metrics-after "http://$a/metrics"
after=$(sed -n 's/^http_connections_total{server="test"} //p' "$tmp/b")
# the two /metrics requests and the keep-alive run: three connections in all
[ $((after - before)) -eq 2 ] ||
    check_failed "keep-alive: $((after - before)) connections for 1 /metrics + 3 /healthz, expected 2"

# Stopping while a handler sleeps: its response still goes out, then the server exits 0.
# Other connections are open meanwhile, and are closed and freed at exit: an idle keep-alive
# connection, one with half a request, one that sent nothing.
python3 - "$a" >"$tmp/holder.out" 2>&1 <<'PY' &
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
conns = [socket.create_connection((host, int(port)), timeout=10) for _ in range(3)]
conns[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
conns[0].recv(4096)
conns[1].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Partial: ")
time.sleep(2)
PY
holder=$!
sleep 0.3
curl -s -o "$tmp/late.body" -w '%{http_code}' --max-time 10 "http://$a/slow?ms=800" \
    >"$tmp/late.code" 2>/dev/null &
late=$!
# SIGTERM only once the handler runs (a connection still in the backlog would be dropped)
i=0
while ! grep -q 'slow handler sleeping" request_id=[0-9a-f]* ms=800' "$tmp/main.err" && [ $i -lt 100 ]; do
	sleep 0.05
	i=$((i + 1))
done
stop_server main
wait $late
wait $holder
[ "$(cat "$tmp/late.code")" = 200 ] && [ "$(cat "$tmp/late.body")" = '{"slept_ms":800}' ] ||
    check_failed "a request in flight at SIGTERM was not answered: $(cat "$tmp/late.code")"

finish "50 concurrent requests over 4 workers, keep-alive, graceful stop"
