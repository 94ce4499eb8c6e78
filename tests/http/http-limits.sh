#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# http-limits: input over a limit is refused before any handler runs, with a JSON error, and
# the server stays healthy. A body of exactly max-body bytes passes; one byte more is 413
# (announced by Content-Length with or without "Expect: 100-continue", or sent chunked) and
# the handler never ran; two Content-Lengths, a "+2" length or a Transfer-Encoding other
# than chunked are 400 and end the connection; a 20 kB URL, a 20 kB header and a flood of 10,000 headers are 400
# (libevent's own refusal, made JSON); a 3 kB path is 414, 150 headers 431; a request line
# that is not HTTP is 400, an unknown method 501, an unknown Expect 417.
#
# Usage: sh http-limits.sh HTTP_TESTSERVER
set -u
me=http-limits
srv=${1:-}
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
. "$here/lib.sh"

max=1024
start_server main --threads 2 --max-body $max || fail "the test server did not start"
a=$addr_main

# json_of N: a JSON object of exactly N bytes
json_of() {
	printf '{"a":"'
	head -c $(($1 - 8)) /dev/zero | tr '\0' 'a'
	printf '"}'
}
json_of $max >"$tmp/fits.json"
json_of $((max + 1)) >"$tmp/over.json"

req at-limit --data-binary @"$tmp/fits.json" "http://$a/echo"
expect at-limit 200 "\"bytes\":$max\\}\$"

req over-expect -H 'Expect: 100-continue' --data-binary @"$tmp/over.json" "http://$a/echo"
expect over-expect 413 '"error":"too_large"'
[ "$(header connection)" = close ] || check_failed "413: the connection is not closed"

req over-no-expect -H 'Expect:' --data-binary @"$tmp/over.json" "http://$a/echo"
expect over-no-expect 413 '"error":"too_large"'

req over-chunked -H 'Transfer-Encoding: chunked' --data-binary @"$tmp/over.json" "http://$a/echo"
expect over-chunked 413 '"error":"too_large"'

req echo-count "http://$a/echo/count"
expect echo-count 200 '^\{"calls":1\}$' ||
    check_failed "a handler ran for a body over the limit"

long=$(head -c 20000 /dev/zero | tr '\0' 'a')
req long-url "http://$a/$long"
expect long-url 400 '"error":"bad_request"'

path=$(head -c 3000 /dev/zero | tr '\0' 'a')
req long-path "http://$a/$path"
expect long-path 414 '"error":"uri_too_long"'

req long-header -H "X-Long: $long" "http://$a/healthz"
expect long-header 400 '"error":"bad_request"'

set --
i=0
while [ $i -lt 150 ]; do
	set -- "$@" -H "X-H$i: v"
	i=$((i + 1))
done
req many-headers "$@" "http://$a/healthz"
expect many-headers 431 '"error":"too_many_headers"'

# A flood of headers on a raw connection: refused once past the limit, connection closed.
python3 -c '
import sys
sys.stdout.write("GET /healthz HTTP/1.1\r\nHost: x\r\n")
for i in range(10000):
    sys.stdout.write("X-Flood-%d: %s\r\n" % (i, "v" * 8))
sys.stdout.write("\r\n")' >"$tmp/flood.req"
raw_expect header-flood "$a" 400 "$tmp/flood.req"

printf 'THIS IS NOT HTTP\r\n\r\n' >"$tmp/garbage.req"
raw_expect garbage "$a" 400 "$tmp/garbage.req"

printf 'BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n' >"$tmp/brew.req"
raw_expect unknown-method "$a" 501 "$tmp/brew.req"

printf 'POST /echo HTTP/1.1\r\nHost: x\r\nExpect: tea\r\nContent-Length: 2\r\n\r\n{}' >"$tmp/expect.req"
raw_expect unknown-expect "$a" 417 "$tmp/expect.req"

# framing a proxy in front could read otherwise: refused, and nothing after it is read
printf 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}GET /echo/count HTTP/1.1\r\nHost: x\r\n\r\n' >"$tmp/cl2.req"
raw_expect two-lengths "$a" 400 "$tmp/cl2.req"
[ "$(grep -c '^HTTP/1' "$tmp/raw.out")" -eq 1 ] ||
    check_failed "two-lengths: the bytes after the first body were read as a request"
printf 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n{}' >"$tmp/plus.req"
raw_expect plus-length "$a" 400 "$tmp/plus.req"
printf 'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n{}' >"$tmp/gzip.req"
raw_expect te-gzip "$a" 400 "$tmp/gzip.req"

req still-healthy "http://$a/healthz"
expect still-healthy 200 '"status":"ok"'
req echo-count-after "http://$a/echo/count"
expect echo-count-after 200 '^\{"calls":1\}$' ||
    check_failed "a handler ran for a request refused by a limit"

req metrics "http://$a/metrics"
grep -q '^http_requests_total{server="test",method="-",route="(rejected)",status="413"} 3$' "$tmp/b" ||
    check_failed "metrics: the three 413s were not counted"

stop_server main
grep -q 'msg="http rejected" server=test status=413 peer=127.0.0.1:[0-9]* reason=too_large$' "$tmp/main.err" ||
    check_failed "log: no line for a refused body"
finish "body, URL and header limits refused with JSON before any handler"
