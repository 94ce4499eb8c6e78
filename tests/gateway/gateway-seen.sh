#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# devid gateway's seen reports and the suspected_clone event (docs/gateway.md, "Seen
# reports"), with tests/gateway/seen_receiver.py standing in for devid: it checks each
# report's signature over the exact body bytes, its headers and its JSON shape, and answers
# as its plan says. A chip on the ACL connects from 127.0.0.2 (twice) and from 127.0.0.3; the
# reports must carry both origins, its UDID, the SHA-256 of its certificate (computed here
# with openssl), the counts and ordered times within the test's clock. A 503 makes the
# gateway post the same report id and bytes again; a 400 is logged with devid's message and
# not posted again. A suspected_clone event is answered 200, logged, and leaves the chip
# admitted. At SIGTERM the gateway flushes once more (its options from devid.conf this
# time). Bad --report-* options are usage errors.
# Usage: gateway-seen.sh DEVID
me=gateway-seen
. "$(dirname "$0")/../integration/lib.sh"
devid=${1:-}
need_devid "$devid"
need_tool curl curl
need_tool openssl openssl
need_tool sha256sum coreutils
need_tool /usr/bin/python3 python3
receiver=$(cd "$(dirname "$0")" && pwd)/seen_receiver.py
make_tmp
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd $tmp"
nfailed=0
secret='seen-gateway-secret-0123456789'

"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "vendor init"
"$devid" vendor mint --dir v --batch B1 --count 2 --out B1 --keep-keys 2 --quiet >/dev/null ||
    fail "vendor mint"
set -- $(cd B1/chips && ls ./*.pem | sed 's|^\./||; s|\.pem$||')
[ $# -eq 2 ] || fail "expected 2 chips with keys, found $#"
u1=$1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout gw.key \
    -out gw.pem -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -days 2 2>/dev/null ||
    fail "openssl req"
# the certificate's fingerprint, computed apart from the gateway
fp1=$(openssl x509 -in "B1/chips/$u1.pem" -outform DER | sha256sum | cut -d' ' -f1)
[ ${#fp1} -eq 64 ] || fail "cannot hash the chip's certificate"

# --- the options ----------------------------------------------------------------------------

base="--tls-cert gw.pem --tls-key gw.key --trust v/root.pem --db x.db --secret $secret"
for bad in "--report-interval 0 --report-url http://127.0.0.1:1/|--report-interval is 1 to 3600" \
    "--report-interval 3601 --report-url http://127.0.0.1:1/|--report-interval is 1 to 3600" \
    "--report-interval 5|go with --report-url" \
    "--report-url ftp://127.0.0.1/|--report-url is an http:// or https:// URL" \
    "--report-url http://127.0.0.1:1/ --report-ca gw.pem|--report-ca goes with an https://"; do
	# shellcheck disable=SC2086 # the options are words
	run "$devid" gateway $base ${bad%%|*}
	[ "$rc" -eq 2 ] && grep -q -- "${bad#*|}" "$tmp/err" ||
	    check_failed_run "${bad%%|*}: expected the usage error \"${bad#*|}\""
done
# shellcheck disable=SC2086
run "$devid" gateway $base --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
    --report-url https://127.0.0.1:1/ --report-ca B1/chips/$u1.key
[ "$rc" -eq 1 ] && grep -q 'report ca' "$tmp/err" ||
    check_failed_run "a --report-ca that holds no certificate stops the start"
[ -e x.db ] && rm -f x.db

# --- devid's stand-in and the gateway -------------------------------------------------------

: >plan
/usr/bin/python3 "$receiver" "$secret" reports.jsonl plan >recv.port 2>recv.log &
pids="$pids $!"
wait_file recv.port "the receiver"
report_url="http://127.0.0.1:$(cat recv.port)/api/v1/sightings"

# start_gateway NAME ARGS...: a gateway on free ports over gw.db; sets $dev, $adm, $gw_pid, $log
start_gateway() {
	name=$1
	shift
	"$devid" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --tls-cert gw.pem \
	    --tls-key gw.key --trust v/root.pem --trust v/issuing.pem --db gw.db --threads 2 \
	    --secret "$secret" "$@" >"$name.out" 2>"$name.log" &
	gw_pid=$!
	pids="$pids $gw_pid"
	log=$name.log
	wait_line "$name.out" 'admin on http://' "$name"
	dev=$(sed -n 's|^devid gateway: devices on https://\([^,]*\), admin on http://.*|\1|p' "$name.out")
	adm=$(sed -n 's|^devid gateway: devices on https://[^,]*, admin on http://||p' "$name.out")
}

# stop_gateway: SIGTERM; exit 0 and no sanitizer report
stop_gateway() {
	kill -TERM "$gw_pid"
	wait "$gw_pid"
	st=$?
	if grep -Eq 'ERROR: [A-Za-z]+Sanitizer|runtime error:' "$log"; then
		sed -n '/Sanitizer\|runtime error/,+40p' "$log" >&2
		fail "sanitizer report from the gateway ($log)"
	fi
	[ $st -eq 0 ] || { tail -20 "$log" >&2; fail "the gateway exited $st after SIGTERM"; }
}

hmac() { # hmac FILE: hex HMAC-SHA256 with the secret
	openssl dgst -sha256 -hmac "$secret" <"$1" | awk '{ print $NF }'
}

push() { # push FILE EVENT: a signed POST /devid/events; $status and body
	status=$(curl -sS -o body -w '%{http_code}' -H "X-Devid-Event: $2" \
	    -H "X-Devid-Signature: sha256=$(hmac "$1")" -H 'Content-Type: application/json' \
	    --data-binary "@$1" "http://$adm/devid/events")
}

# event FILE EVENT ACTION [SUSPICION]: an event about chip u1, as devid's webhook sends it
event() {
	{
		printf '{"event":"%s","action":"%s","tenant":"OEM1","devices":[' "$2" "$3"
		printf '{"udid":"%s","serial":"SN-1","batch":"B1","certificate":"%s"}]' "$u1" \
		    "$(awk '{ printf "%s\\n", $0 }' "B1/chips/$u1.pem")"
		[ -z "${4:-}" ] || printf ',"suspicion":%s' "$4"
		printf '}'
	} >"$1"
}

# device ORIGIN: GET / as chip u1 from the source address ORIGIN; $status
device() {
	status=$(curl -sS -o body -w '%{http_code}' --interface "$1" --cert "B1/chips/$u1.pem" \
	    --key "B1/chips/$u1.key" --cacert gw.pem "https://$dev/" 2>curl.err)
}

now_ms() {
	date +%s%3N
}

# wait_for WHAT PYTHON-CONDITION: waits (20 s) until the condition holds over the records
# (`recs`, one dict per request the receiver took)
wait_for() {
	i=0
	until check "$2" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 200 ] || { tail -5 "$log" >&2; fail "$1: not within 20 s"; }
		sleep 0.1
	done
}

# check PYTHON-EXPRESSION: true when it holds over recs (and helpers), with $u1 and $fp1 as U1
# and FP1
check() {
	U1=$u1 /usr/bin/python3 - "$1" <<'PY'
import json, os, sys
recs = [json.loads(l) for l in open("reports.jsonl")] if os.path.exists("reports.jsonl") else []
U1 = os.environ["U1"]
def sightings(udid, origin=None):
    return [(r, s) for r in recs if r["status"] == 200 and r["report"]
            for s in r["report"]["sightings"]
            if s["udid"] == udid and (origin is None or s["origin"] == origin)]
def count(udid, origin):
    return sum(s["count"] for _, s in sightings(udid, origin))
sys.exit(0 if eval(sys.argv[1]) else 1)
PY
}

start_gateway gw1 --report-url "$report_url" --report-interval 1
wait_line "$log" 'msg="gateway started".* reports=on' "the start's line with reports=on"

# --- a chip from two origins: the reports, and a 503 that makes the gateway post again ------

event add.json devid-1-0 add
push add.json devid-1-0
[ "$status" = 200 ] || fail "the add event: $status $(cat body)"
echo 503 >plan
t0=$(now_ms)
for origin in 127.0.0.2 127.0.0.2 127.0.0.3; do
	device "$origin"
	[ "$status" = 200 ] || fail "chip $u1 from $origin: $status $(cat body) $(cat curl.err)"
done
t1=$(now_ms)
wait_for "the sightings of both origins" \
    "count(U1, '127.0.0.2') >= 2 and count(U1, '127.0.0.3') >= 1"
[ -s reports.jsonl.err ] && check_failed "the receiver refused reports: $(head -5 reports.jsonl.err)"

T0=$t0 T1=$t1 FP1=$fp1 U1=$u1 /usr/bin/python3 - <<'PY' || nfailed=$((nfailed + 1))
import datetime, json, os, re, sys
recs = [json.loads(l) for l in open("reports.jsonl")]
U1, FP1 = os.environ["U1"], os.environ["FP1"]
t0, t1 = int(os.environ["T0"]), int(os.environ["T1"])
bad = []
def ms(t):
    d = datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    return round(d.timestamp() * 1000)
# the 503: the first report posted again, same id, same bytes, then taken
first = recs[0]
if first["status"] != 503:
    bad.append("the first post was answered %s, not the planned 503" % first["status"])
again = [r for r in recs[1:] if r["id"] == first["id"]]
if not again or again[0]["status"] != 200 or again[0]["sha256"] != first["sha256"]:
    bad.append("report %s was not posted again byte for byte after the 503: %s"
               % (first["id"], [(r["id"], r["status"], r["sha256"][:12]) for r in recs]))
taken = [r for r in recs if r["status"] == 200]
ids = [r["id"] for r in taken]
for r in taken:
    if not re.match(r"^gw-[0-9a-f]{16}-[0-9]+$", r["id"]) or r["report"]["tenant"] != "OEM1":
        bad.append("report %s: id or tenant %s" % (r["id"], r["report"]["tenant"]))
mine = [(r, s) for r in taken for s in r["report"]["sightings"] if s["udid"] == U1]
origins = sorted({s["origin"] for _, s in mine})
if origins != ["127.0.0.2", "127.0.0.3"]:
    bad.append("origins %s, expected 127.0.0.2 and 127.0.0.3" % origins)
counts = {o: sum(s["count"] for _, s in mine if s["origin"] == o) for o in origins}
if counts != {"127.0.0.2": 2, "127.0.0.3": 1}:
    bad.append("counts %s, expected 2 from 127.0.0.2 and 1 from 127.0.0.3" % counts)
for r, s in mine:
    if s["certificate"] != FP1:
        bad.append("certificate %s, expected %s" % (s["certificate"], FP1))
    if s["identity"] != "key":
        bad.append("identity %s" % s["identity"])
    f, l, sent = ms(s["first"]), ms(s["last"]), ms(r["report"]["sentAt"])
    if not t0 <= f <= l <= t1 or l > sent:
        bad.append("times: first %s, last %s, sent %s; the requests were between %d and %d"
                   % (s["first"], s["last"], r["report"]["sentAt"], t0, t1))
if bad:
    print("gateway-seen: FAIL: " + "\n  ".join(bad), file=sys.stderr)
    sys.exit(1)
PY
grep -q 'msg="gateway report deferred".* status=503' "$log" ||
    check_failed "the 503 is not logged: $(grep 'gateway report' "$log" | head -3)"
grep -q 'msg="gateway report sent".* accepted=[0-9]' "$log" ||
    check_failed "a report taken is not logged with devid's counts"

# --- a 400: logged with devid's message, dropped, never posted again --------------------------

echo 400 >plan
device 127.0.0.3
[ "$status" = 200 ] || fail "chip $u1 again: $status"
wait_line "$log" 'msg="gateway report refused"' "the refusal's log line"
rid=$(sed -n 's/.*msg="gateway report refused" report=\([^ ]*\) .*/\1/p' "$log" | head -1)
grep -q "msg=\"gateway report refused\" report=$rid tenant=OEM1 sightings=1 status=400 message=\"the stand-in answers 400\"" "$log" ||
    check_failed "the refusal's line: $(grep 'report refused' "$log")"
sleep 2.5 # two more flushes
[ "$(grep -c "\"id\": \"$rid\"" reports.jsonl)" -eq 1 ] ||
    check_failed "report $rid, refused with a 400, was posted again"

# --- suspected_clone: 200, logged, nothing changes ------------------------------------------

event clone.json devid-12-0 suspected_clone \
    '{"rule":"concurrent-origins","at":"2026-12-05T11:00:00Z","quarantined":true,"detail":{"origins":["127.0.0.2","127.0.0.3"]}}'
push clone.json devid-12-0
[ "$status" = 200 ] || check_failed "suspected_clone: expected 200, got $status $(cat body)"
grep -q '"action":"suspected_clone","devices":1' body || check_failed "suspected_clone answer: $(cat body)"
grep -q "msg=\"gateway clone suspicion\" request_id=[0-9a-f]* event=devid-12-0 tenant=OEM1 udid=$u1 rule=concurrent-origins at=2026-12-05T11:00:00Z quarantined=true" "$log" ||
    check_failed "the suspicion is not logged: $(grep -i suspicion "$log")"
device 127.0.0.2
[ "$status" = 200 ] || check_failed "after a suspected_clone the chip is refused: $status"
event clone2.json devid-12-1 add '{"rule":"concurrent-origins","at":"2026-12-05T11:00:00Z","quarantined":true}'
push clone2.json devid-12-1
[ "$status" = 400 ] && grep -q 'belongs to suspected_clone only' body ||
    check_failed "a suspicion on an add: expected 400, got $status $(cat body)"
: >empty
status=$(curl -sS -o acl.json -w '%{http_code}' \
    -H "X-Devid-Signature: sha256=$(hmac empty)" "http://$adm/devid/acl")
grep -q "\"udid\":\"$u1\".*\"state\":\"active\"" acl.json ||
    check_failed "the ACL after a suspected_clone: $(cat acl.json)"

# the gateway never logs the secret or a signature
grep -q -e "$secret" -e 'sha256=' "$log" && check_failed "the secret or a signature is in the log"
stop_gateway

# --- the last flush at a stop ---------------------------------------------------------------

# the options from devid.conf's [gateway] section this time
printf '[gateway]\nreport-url = %s\nreport-interval = 3600\n' "$report_url" >gw2.conf
before=$(wc -l <reports.jsonl)
start_gateway gw2 --config gw2.conf
device 127.0.0.2
[ "$status" = 200 ] || fail "chip $u1 on the second gateway: $status"
sleep 0.5
[ "$(wc -l <reports.jsonl)" -eq "$before" ] || check_failed "a report came before the interval"
stop_gateway
check "any(r['status'] == 200 and r['report']['sightings'][0]['udid'] == U1
           for r in recs[$before:])" ||
    check_failed "the sightings seen before SIGTERM were not reported at the stop"
[ -s reports.jsonl.err ] && check_failed "the receiver refused reports: $(head -5 reports.jsonl.err)"

finish "seen reports signed and resent as devid expects, a 400 dropped, suspected_clone logged"
