#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Provisioning through the outbox into a webhook receiver that checks the HMAC signature
# (tests/integration/receiver.py): auto mode pushes on claim, manual mode only on trigger,
# revoke and release push removals, a receiver that is down gets everything once it is back
# (each event once), and the connector's secret is never shown again. SQLite.
# Usage: provision.sh DEVID
me=provision
. "$(dirname "$0")/lib.sh"
devid=${1:-}
need_devid "$devid"
need_tool curl curl
need_tool /usr/bin/python3 python3
make_tmp
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
here=$(cd "$(dirname "$0")" && pwd)
cd "$tmp" || fail "cd"
export DEVID_DB="sqlite:$tmp/devid.db"

receiver() { # NAME SECRET [FAIL_FIRST]: starts a receiver, its URL in $rurl
	/usr/bin/python3 "$here/receiver.py" "$2" "$tmp/$1.events" ${3:-0} ${4:-0} >"$tmp/$1.port" 2>"$tmp/$1.err" &
	pids="$pids $!"
	wait_file "$tmp/$1.port" "receiver $1"
	rurl="http://127.0.0.1:$(cat "$tmp/$1.port")/devid/events"
}

# wait_events NAME COUNT: waits (up to 30 s) until NAME received COUNT events
wait_events() {
	i=0
	while [ "$(cat "$tmp/$1.events" 2>/dev/null | wc -l)" -lt "$2" ]; do
		i=$((i + 1))
		[ $i -lt 300 ] || { api GET /api/v1/jobs; fail "$1: $2 events expected, jobs: $(cat body)"; }
		sleep 0.1
	done
}

"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "init"
for b in B1 B2; do
	"$devid" vendor mint --dir v --batch $b --count 25 --out $b --keep-keys 1 --quiet >/dev/null || fail "mint"
done
"$devid" admin tenant add ACME --kind vendor >/dev/null
"$devid" admin tenant add OEM1 --kind oem >/dev/null
VT=$("$devid" admin token add ACME --role vendor)
A1=$("$devid" admin token add OEM1 --role admin)
"$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem >/dev/null
start_serve() { # [ARGS]: devid serve on a free port, $url, $serve_pid
	: >serve.out
	[ -e secrets.key ] || "$devid" admin secrets-key init "file:$tmp/secrets.key" >/dev/null ||
		fail "secrets-key init"
	"$devid" serve --listen 127.0.0.1:0 --secrets-key "file:$tmp/secrets.key" "$@" \
	    >serve.out 2>>serve.log &
	serve_pid=$!
	pids="$pids $serve_pid"
	wait_line serve.out 'listening on' serve
	url=$(sed -n 's/.*listening on //p' serve.out)
}
start_serve
export DEVID_SERVER=$url
for b in B1 B2; do
	DEVID_TOKEN=$VT "$devid" vendor publish $b >/dev/null || fail "publish $b"
done

# two clouds: AUTO is down for its first 2 requests, MANUAL only gets what is triggered
receiver auto "auto-secret-0123456789" 2
api POST /api/v1/connectors "{\"name\":\"AUTO\",\"type\":\"webhook\",\"mode\":\"auto\",\"config\":{\"url\":\"$rurl\",\"secret\":\"auto-secret-0123456789\"}}"
[ "$status" = 201 ] || fail "create AUTO: $status $(cat body)"
grep -q 'auto-secret' body && fail "the connector's secret was echoed back"
receiver manual "manual-secret-0123456789"
api POST /api/v1/connectors "{\"name\":\"MANUAL\",\"type\":\"webhook\",\"mode\":\"manual\",\"config\":{\"url\":\"$rurl\",\"secret\":\"manual-secret-0123456789\"}}"
[ "$status" = 201 ] || fail "create MANUAL: $status $(cat body)"
api GET /api/v1/connectors
grep -q 'secret-0123' body && fail "GET /connectors shows a secret"
api POST /api/v1/connectors '{"name":"BAD","type":"webhook","mode":"auto","config":{"url":"ftp://x","secret":"0123456789abcdef"}}'
[ "$status" = 400 ] || fail "a bad webhook URL was accepted ($status)"
api POST /api/v1/connectors '{"name":"ODD","type":"carrier-pigeon","mode":"auto","config":{}}'
[ "$status" = 400 ] && grep -q 'known: webhook, cirrent, mosquitto, azure-dps, aws-iot' body ||
	fail "an unknown connector type: $status $(cat body)"
note "ok connectors: created, secrets never shown, bad config and unknown type refused"

# claim B1: AUTO gets its 25 devices once it is back up; MANUAL gets nothing
DEVID_TOKEN=$A1 "$devid" claim "$(cat B1/claim.txt)" >/dev/null || fail "claim B1"
wait_events auto 1
/usr/bin/python3 - auto.events B1 <<'PY' || fail "the pushed event is not B1's 25 devices"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert len(ev) == 1 and ev[0]["action"] == "add" and ev[0]["tenant"] == "OEM1", ev
assert len(ev[0]["devices"]) == 25 and all(d["batch"] == sys.argv[2] for d in ev[0]["devices"])
assert all(d["certificate"].startswith("-----BEGIN CERTIFICATE-----") for d in ev[0]["devices"])
PY
api GET '/api/v1/jobs?state=done'
grep -q '"attempts": *0' body || true
grep -q '"delivered": *25' body || fail "jobs: $(cat body)"
[ ! -s manual.events ] || fail "a manual connector was pushed to on claim"
note "ok auto mode: the claim reached the cloud after it came back (2 failures retried)"
for n in 1 2; do
	grep -Eq "msg=\"delivery failed\" job=[0-9]+ tenant=OEM1 connector=AUTO type=webhook event=devid-[0-9]+-0 attempt=$n max_attempts=[0-9]+ retry_in_s=[0-9]+ error=\"[^\"]+" serve.log ||
		fail "failure $n of AUTO is not logged: $(grep delivery serve.log)"
done
grep -Eq 'msg="delivery ok" job=[0-9]+ tenant=OEM1 connector=AUTO type=webhook event=devid-[0-9]+-0 devices=25$' serve.log ||
	fail "the delivery to AUTO is not logged: $(grep delivery serve.log)"
grep -q 'secret-0123' serve.log && fail "a connector secret is in the log"
note "ok outbox log: both failures with attempt and retry delay, then the delivery"

# manual: a claim pushes nothing; the trigger does
DEVID_TOKEN=$A1 "$devid" claim "$(cat B2/claim.txt)" >/dev/null || fail "claim B2"
wait_events auto 2
[ ! -s manual.events ] || fail "MANUAL received a push without a trigger"
api POST /api/v1/provision '{"connector":"MANUAL","batch":"ACME/B2"}'
[ "$status" = 202 ] || fail "trigger: $status $(cat body)"
wait_events manual 1
grep -q '"B2"' manual.events || fail "MANUAL did not get B2"
note "ok manual mode pushes only on trigger"

# revoke: both clouds remove the device; release: B1's devices are removed
udid=$(ls B1/chips/*.pem | head -1 | xargs basename | sed 's/\.pem$//')
api POST "/api/v1/devices/$udid/revoke"
[ "$status" = 200 ] || fail "revoke: $status"
wait_events auto 3
wait_events manual 2
tail -1 auto.events | grep -q "\"action\": \"remove\".*$udid" || fail "AUTO did not remove $udid"
api POST /api/v1/batches/ACME/B1/release
[ "$status" = 200 ] || fail "release: $status"
wait_events auto 4
tail -1 auto.events | /usr/bin/python3 -c 'import json,sys; e=json.load(sys.stdin); assert e["action"]=="remove" and len(e["devices"])==25, e' ||
	fail "release did not remove B1's devices"
note "ok revoke and release push removals"
# kill -9 of devid serve in the middle of a delivery, then a restart: nothing is lost, and
# the receiver applies the repeated event once
kill -9 $serve_pid 2>/dev/null
wait $serve_pid 2>/dev/null
receiver slow "slow-secret-0123456789" 0 4
start_serve --job-lease 2
api POST /api/v1/connectors "{\"name\":\"SLOW\",\"type\":\"webhook\",\"mode\":\"manual\",\"config\":{\"url\":\"$rurl\",\"secret\":\"slow-secret-0123456789\"}}"
[ "$status" = 201 ] || fail "create SLOW: $status $(cat body)"
api POST /api/v1/provision '{"connector":"SLOW","batch":"ACME/B2"}'
[ "$status" = 202 ] || fail "trigger SLOW: $status"
wait_events slow 1
kill -9 $serve_pid
wait $serve_pid 2>/dev/null
note "killed devid serve (-9) while the receiver was still answering"
start_serve --job-lease 2
i=0
until api GET '/api/v1/jobs?state=done' && grep -q '"connector": *"SLOW"' body; do
	i=$((i + 1))
	[ $i -lt 200 ] || { api GET /api/v1/jobs; fail "the interrupted job never finished: $(cat body)"; }
	sleep 0.1
done
[ "$(wc -l <slow.events)" = 1 ] || fail "the receiver applied $(wc -l <slow.events) events, want 1"
note "ok kill -9 mid-delivery: the job finished after the restart, its event applied once"
# the cirrent connector against a receiver that verifies devid's JWT with the published key
/usr/bin/python3 "$here/cirrent_receiver.py" "$url" "$tmp/cid.events" >"$tmp/cid.port" &
pids="$pids $!"
wait_file "$tmp/cid.port" "cirrent receiver"
curl -sS "$url/api/v1/interop-key" | grep -q '"alg": *"ES256"' || fail "no interop key published"
api POST /api/v1/connectors "{\"name\":\"CID\",\"type\":\"cirrent\",\"mode\":\"manual\",\"config\":{\"url\":\"http://127.0.0.1:$(cat cid.port)/cirrent\"}}"
[ "$status" = 201 ] || fail "create CID: $status $(cat body)"
api POST /api/v1/provision '{"connector":"CID","batch":"ACME/B2"}'
[ "$status" = 202 ] || fail "trigger CID: $status"
wait_events cid 1
/usr/bin/python3 -c 'import json,sys; e=json.loads(open(sys.argv[1]).readline()); assert e["action"]=="provision" and len(e["refs"])==25, e' cid.events ||
	fail "the cirrent push is not B2's 25 certificates"
i=0
until api GET '/api/v1/jobs?state=done' && grep -q '"connector": *"CID"' body; do
	i=$((i + 1))
	[ $i -lt 100 ] || { api GET /api/v1/jobs; fail "the cirrent job did not finish: $(cat body)"; }
	sleep 0.1
done
note "ok cirrent: the receiver verified the JWT with the published key and took every cert"
# a connector's own rate: one request every 5 s holds three single-device pushes back
receiver slowcloud "slowcloud-secret-0123456789"
api POST /api/v1/connectors "{\"name\":\"RATED\",\"type\":\"webhook\",\"mode\":\"manual\",\"config\":{\"url\":\"$rurl\",\"secret\":\"slowcloud-secret-0123456789\",\"ratePerSecond\":0.2}}"
[ "$status" = 201 ] || fail "create RATED: $status $(cat body)"
grep -q '"ratePerSecond": *0.2' body || fail "the rate is not shown: $(cat body)"
devs=$(DEVID_TOKEN=$A1 "$devid" devices --server "$url" --batch ACME/B2 --limit 3 | sed -n 's/.*"udid": "\([0-9a-f]*\)".*/"\1"/p' | paste -sd, -)
# a second server on the same database: the rate is counted in the database, not per process
url1=$url
start_serve
url=$url1
api POST /api/v1/provision "{\"connector\":\"RATED\",\"devices\":[$devs]}"
[ "$status" = 202 ] || fail "trigger RATED: $status $(cat body)"
wait_events slowcloud 1
sleep 2
[ "$(wc -l <slowcloud.events)" = 1 ] || fail "the rate limit let $(wc -l <slowcloud.events) pushes through within 2 s from two servers, want 1"
[ "$(/usr/bin/python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM rate_buckets WHERE name LIKE '"'connector:%'"'").fetchone()[0])' "$tmp/devid.db")" = 1 ] ||
	fail "no connector bucket in the database"
note "ok a connector's ratePerSecond throttles its pushes, across two servers"
# an add that is still being retried when its device is revoked never puts it back
receiver late "late-secret-0123456789abc" 1
api POST /api/v1/connectors "{\"name\":\"LATE\",\"type\":\"webhook\",\"mode\":\"manual\",\"config\":{\"url\":\"$rurl\",\"secret\":\"late-secret-0123456789abc\"}}"
[ "$status" = 201 ] || fail "create LATE: $status $(cat body)"
x=$(DEVID_TOKEN=$A1 "$devid" devices --server "$url" --batch ACME/B2 --state active --limit 1 |
	sed -n 's/.*"udid": "\([0-9a-f]*\)".*/\1/p')
api POST /api/v1/provision "{\"connector\":\"LATE\",\"devices\":[\"$x\"]}"
[ "$status" = 202 ] || fail "trigger LATE: $status"
api POST "/api/v1/devices/$x/revoke"
[ "$status" = 200 ] || fail "revoke $x: $status"
i=0
until api GET /api/v1/jobs && [ "$(/usr/bin/python3 -c 'import json,sys; print(sum(j["connector"]=="LATE" and j["state"]=="done" for j in json.load(open(sys.argv[1]))["jobs"]))' body)" = 2 ]; do
	i=$((i + 1))
	[ $i -lt 200 ] || fail "LATE jobs did not finish: $(cat body)"
	sleep 0.1
done
grep -q '"action": "add"' late.events 2>/dev/null && fail "a revoked device was pushed as an add"
note "ok an add retried after a revoke does not put the device back"
note "all provisioning checks passed"
