#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The azure-dps connector against a stand-in DPS (tests/integration/dps_endpoint.py) that
# checks every request on its own (SAS token, OpenAPI paths and schemas) and enforces a quota:
# a claim enrolls every device with its certificate; injected per-item failures, 429s (with
# and without Retry-After) and 5xx end with every device enrolled once and only the failed
# ones sent again; revoke disables, release deletes; the policy key is in neither the
# database nor the logs; a drain at a scaled-down quota never goes over it and loses nothing
# across a kill -9 of devid serve. SQLite.
# Usage: azure-dps.sh DEVID VECTORS_DIR
me=azure-dps
. "$(dirname "$0")/lib.sh"
devid=${1:-}
vectors=${2:-}
need_devid "$devid"
need_tool curl curl
need_tool /usr/bin/python3 python3
[ -f "$vectors/azure-dps/service.json" ] || skip "no DPS OpenAPI document in $vectors/azure-dps"
/usr/bin/python3 -c 'import cryptography' 2>/dev/null || skip "python3-cryptography is not installed"
make_tmp
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
here=$(cd "$(dirname "$0")" && pwd)
cd "$tmp" || fail "cd"
export DEVID_DB="sqlite:$tmp/devid.db"
KEY=$(/usr/bin/python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')

dps() { # NAME OPS_PER_MINUTE: a stand-in DPS, its URL in $dpsurl
	/usr/bin/python3 "$here/dps_endpoint.py" "$vectors/azure-dps/service.json" "$KEY" \
	    enroll 127.0.0.1 "$2" >"$tmp/$1.port" 2>"$tmp/$1.log" &
	pids="$pids $!"
	wait_file "$tmp/$1.port" "stand-in $1"
	dpsurl="http://127.0.0.1:$(cat "$tmp/$1.port")"
}

# check URL PYTHON: runs PYTHON with s = the stand-in's state; fails with its message
check() {
	curl -sS "$1/_test/state" >state.json || fail "cannot read the stand-in's state"
	/usr/bin/python3 -c "import json,sys
s = json.load(open('state.json'))
$2" || fail "stand-in state: $(head -c 600 state.json)"
}

# wait_for URL PYTHON-EXPR SECONDS: until the expression over s holds
wait_for() {
	i=0
	until curl -sS "$1/_test/state" >state.json &&
		/usr/bin/python3 -c "import json,sys
s = json.load(open('state.json'))
sys.exit(0 if ($2) else 1)"; do
		i=$((i + 1))
		[ $i -lt $(($3 * 10)) ] || { api GET /api/v1/jobs; fail "waited $3 s for: $2; jobs: $(cat body)"; }
		sleep 0.1
	done
}

start_serve() { # [ARGS]: devid serve on a free port, $url, $serve_pid
	: >serve.out
	[ -e secrets.key ] || "$devid" admin secrets-key init "file:$tmp/secrets.key" >/dev/null ||
		fail "secrets-key init"
	"$devid" serve --listen 127.0.0.1:0 --secrets-key "file:$tmp/secrets.key" \
	    --log-level debug "$@" >serve.out 2>>serve.log &
	serve_pid=$!
	pids="$pids $serve_pid"
	wait_line serve.out 'listening on' serve
	url=$(sed -n 's/.*listening on //p' serve.out)
	# a restarted server listens on a new port: the CLI must follow it
	export DEVID_SERVER="$url"
}

"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "init"
"$devid" vendor mint --dir v --batch B1 --count 23 --out B1 --keep-keys 1 --quiet >/dev/null || fail "mint B1"
"$devid" vendor mint --dir v --batch B2 --count 120 --out B2 --keep-keys 0 --quiet >/dev/null || fail "mint B2"
"$devid" admin tenant add ACME --kind vendor >/dev/null
"$devid" admin tenant add OEM1 --kind oem >/dev/null
VT=$("$devid" admin token add ACME --role vendor)
A1=$("$devid" admin token add OEM1 --role admin)
"$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem >/dev/null
# a lease of 2 s, far shorter than a chunk takes here (Retry-After 2, pacing): the connector
# must keep its job leased while it waits, or a second worker sends the same chunk early
start_serve --job-lease 2
for b in B1 B2; do
	DEVID_TOKEN=$VT "$devid" vendor publish $b >/dev/null || fail "publish $b"
done

# --- the connector, its config checked, its key never shown ---------------------------------
dps fast 6000
fast=$dpsurl
cfg="{\"endpoint\":\"$fast\",\"policyName\":\"enroll\",\"policyKey\":\"$KEY\",\"iotHubs\":[\"hub1.azure-devices.net\"],\"allocationPolicy\":\"static\",\"initialTwin\":{\"tags\":{\"devid\":{\"source\":\"devid\"}}},\"operationsPerMinute\":6000}"
api POST /api/v1/connectors "{\"name\":\"DPS\",\"type\":\"azure-dps\",\"mode\":\"auto\",\"config\":$cfg}"
[ "$status" = 201 ] || fail "create DPS: $status $(cat body)"
grep -q "$KEY" body && fail "the policy key was echoed back"
grep -q '"policyKeySet": *true' body || fail "the answer does not say a key is set: $(cat body)"
api POST /api/v1/connectors "{\"name\":\"BAD\",\"type\":\"azure-dps\",\"mode\":\"auto\",\"config\":{\"endpoint\":\"$fast\",\"policyName\":\"enroll\",\"policyKey\":\"not-base64!\"}}"
[ "$status" = 400 ] || fail "a policy key that is not base64 was accepted ($status)"
grep -q 'not-base64' body && fail "the refusal quotes the key: $(cat body)"
note "ok connector created, its key never shown, a bad key refused without quoting it"

# --- a claim with failures injected on the way ----------------------------------------------
# 23 devices = calls of 10, 10, 3. First call: 503; then 429 with Retry-After 2; then 429
# without; then 3 enrollments fail inside a 200 (500000). Only those 3 may be sent again.
curl -sS -X POST "$fast/_test/inject" -d '[{"kind":"status","status":503},{"kind":"429","retryAfter":2},{"kind":"429"},{"kind":"item","code":500000,"n":3}]' >/dev/null ||
	fail "inject"
DEVID_TOKEN=$A1 "$devid" claim "$(cat B1/claim.txt)" >/dev/null || fail "claim B1"
wait_for "$fast" 'len(s["enrollments"]) == 23' 60
check "$fast" '
import glob, os
pems = {os.path.basename(p)[:-4]: open(p).read() for p in glob.glob("B1/chips/*.pem")}
assert not s["violations"], s["violations"]
assert s["retry_after_early"] == 0, "a request came before Retry-After had passed: %r" % {k: s[k] for k in ("retry_after_early", "quota_rejections", "requests")}
assert s["quota_rejections"] == 0, "over quota"
for rid, e in s["enrollments"].items():
    assert len(rid) == 64 and e["provisioningStatus"] == "enabled", (rid, e["provisioningStatus"])
    assert e["creates"] == 1, (rid, e["creates"])
    assert e["attestation"]["type"] == "x509"
    assert e["iotHubs"] == ["hub1.azure-devices.net"] and e["allocationPolicy"] == "static"
    assert e["initialTwin"] == {"tags": {"devid": {"source": "devid"}}}
for u, pem in pems.items():
    got = s["enrollments"][u]["attestation"]["x509"]["clientCertificates"]["primary"]["certificate"]
    assert got.strip() == pem.strip() or pem.startswith(got.strip()), "not the birth certificate of " + u
items = [o for o in s["ops"] if o["mode"] == "create"]
# 23 enrollments + the 3 that failed inside a 200, nothing else sent twice
assert len(items) == 26, len(items)
assert sum(o["result"] == 500000 for o in items) == 3
assert s["requests"] == 3 + 3 + 1, s["requests"]  # 3 refused whole, 3 calls, 1 retry call
'
i=0
until api GET '/api/v1/jobs?state=done' && grep -q '"delivered": *23' body; do
	i=$((i + 1))
	[ $i -lt 100 ] || { api GET /api/v1/jobs; fail "the claim job is not done: $(cat body)"; }
	sleep 0.1
done
note "ok claim: 23 enrolled once with their certificates through 503, 429 (with and without Retry-After) and 3 item failures; only those 3 sent again"

# --- revoke disables, release deletes -------------------------------------------------------
udid=$(ls B1/chips/*.pem | head -1 | xargs basename | sed 's/\.pem$//')
api POST "/api/v1/devices/$udid/revoke"
[ "$status" = 200 ] || fail "revoke: $status $(cat body)"
wait_for "$fast" "s['enrollments']['$udid']['provisioningStatus'] == 'disabled'" 30
check "$fast" "
assert len(s['enrollments']) == 23, 'revoke deleted an enrollment'
assert [o['mode'] for o in s['ops'] if o['id'] == '$udid'][-1] == 'update'
assert sum(e['provisioningStatus'] == 'disabled' for e in s['enrollments'].values()) == 1
assert not s['violations'], s['violations']
"
note "ok revoke: the enrollment is disabled, not deleted"
api POST /api/v1/batches/ACME/B1/release
[ "$status" = 200 ] || fail "release: $status $(cat body)"
wait_for "$fast" 'len(s["enrollments"]) == 0' 30
check "$fast" '
d = [o for o in s["ops"] if o["mode"] == "delete"]
assert len(d) == 23 and all(o["result"] == 0 for o in d), d
assert not s["violations"], s["violations"]
'
note "ok release: every enrollment deleted"

# --- the connector test: a signed query of one enrollment -------------------------------------
api POST /api/v1/connectors/DPS/test
[ "$status" = 200 ] && /usr/bin/python3 -c 'import json; j=json.load(open("body")); assert j["ok"] is True and j["message"] == "enrollments/query: HTTP 200", j' ||
	fail "test DPS: $status $(cat body)"
check "$fast" '
assert s.get("queries") == 1, s.get("queries")
assert not s["violations"], s["violations"]
'
other=$(/usr/bin/python3 -c 'import base64; print(base64.b64encode(b"not the policy key, 32 bytes..!").decode())')
api POST /api/v1/connectors "{\"name\":\"WRONGKEY\",\"type\":\"azure-dps\",\"mode\":\"manual\",\"config\":{\"endpoint\":\"$fast\",\"policyName\":\"enroll\",\"policyKey\":\"$other\"}}"
[ "$status" = 201 ] || fail "create WRONGKEY: $status $(cat body)"
api POST /api/v1/connectors/WRONGKEY/test
[ "$status" = 200 ] && /usr/bin/python3 -c 'import json,sys; j=json.load(open("body")); assert j["ok"] is False and "HTTP 401" in j["message"] and sys.argv[1] not in j["message"], j' "$other" ||
	fail "test WRONGKEY: $status $(cat body)"
check "$fast" '
assert s.get("queries") == 1, s.get("queries")
assert len(s["violations"]) == 1 and s["violations"][0].startswith("SAS"), s["violations"]
'
note "ok connector test: a signed enrollment query, ok:false with the service's words for a wrong key"

# --- the policy key is nowhere at rest or in the logs ---------------------------------------
key_absent() { # WHEN: the key, base64 or raw, in no database file (-wal, -shm too) nor log
	/usr/bin/python3 - "$KEY" "$tmp" >keyfiles <<'PY' || fail "$1: the policy key is stored or logged in the clear"
import base64, glob, sys
key, tmp = sys.argv[1], sys.argv[2]
raw = base64.b64decode(key)
files = glob.glob(tmp + "/devid.db*") + [tmp + "/serve.log", tmp + "/serve.out"]
assert tmp + "/devid.db" in files, "no database file"
for f in files:
    data = open(f, "rb").read()
    assert key.encode() not in data and raw not in data, f
print(" ".join(sorted(f[len(tmp) + 1:] for f in files)))
PY
	note "ok $1, the policy key is in none of: $(cat keyfiles)"
}
kill "$serve_pid" 2>/dev/null
wait "$serve_pid" 2>/dev/null
key_absent "after a clean stop"

# --- a drain at a scaled-down quota, with a kill -9 in the middle ---------------------------
# 120 devices at 600 operations a minute (10 a second): about 12 s plus what the restart
# sends again; the stand-in answers 429 to any call over the quota and counts it.
dps slow 600
slow=$dpsurl
start_serve --job-lease 2
api POST /api/v1/connectors "{\"name\":\"DRAIN\",\"type\":\"azure-dps\",\"mode\":\"auto\",\"config\":{\"endpoint\":\"$slow\",\"policyName\":\"enroll\",\"policyKey\":\"$KEY\",\"operationsPerMinute\":600}}"
[ "$status" = 201 ] || fail "create DRAIN: $status $(cat body)"
api DELETE /api/v1/connectors/DPS
started=$(date +%s)
DEVID_TOKEN=$A1 "$devid" claim "$(cat B2/claim.txt)" >/dev/null || fail "claim B2"
wait_for "$slow" 'len(s["enrollments"]) >= 40' 30
kill -9 "$serve_pid"
wait "$serve_pid" 2>/dev/null
# a call the dead server had sent is answered within milliseconds; the restarted one waits for
# the lease to run out (2 s) before it sends anything, so this count is the dead server's own
sleep 0.3
curl -sS "$slow/_test/state" >state.json || fail "cannot read the stand-in's state"
at_kill=$(/usr/bin/python3 -c 'import json; s = json.load(open("state.json")); print(len(s["ops"]), len(s["enrollments"]))')
note "killed devid serve (-9) with ${at_kill#* } of 120 enrolled (${at_kill% *} operations sent)"
# the database as a kill -9 leaves it (-wal and -shm not checkpointed) holds no key either
key_absent "after kill -9"
start_serve --job-lease 2
wait_for "$slow" 'len(s["enrollments"]) == 120' 60
took=$(($(date +%s) - started))
check "$slow" "
assert not s['violations'], s['violations']
assert s['quota_rejections'] == 0, '%d calls over the quota' % s['quota_rejections']
assert all(e['creates'] == 1 and e['provisioningStatus'] == 'enabled' for e in s['enrollments'].values())
# the restarted server sends the unfinished chunk again whole, once: what the dead one had
# enrolled answers 'already exists'. A second worker sending it as well (a lease that ran out
# while the chunk was still being paced) would show as more operations than that.
ops, sent = len(s['ops']), ${at_kill% *}
assert ops == sent + 120, 'operations: %d, want %d sent before the kill + 120' % (ops, sent)
assert sum(o['result'] == 409201 for o in s['ops']) == ${at_kill#* }
print('most slack a call needed: %.3f s' % s['max_early_secs'], file=sys.stderr)
"
[ "$took" -ge 11 ] || fail "120 operations at 10 a second took only $took s: not paced"
i=0
until api GET '/api/v1/jobs?state=done' && grep -q '"delivered": *120' body; do
	i=$((i + 1))
	[ $i -lt 100 ] || { api GET /api/v1/jobs; fail "the drain job is not done: $(cat body)"; }
	sleep 0.1
done
note "ok drain: 120 enrolled in $took s at 600 operations a minute, none over the quota, none lost across kill -9"
kill "$serve_pid" 2>/dev/null
wait "$serve_pid" 2>/dev/null
key_absent "after the drain"
note "all azure-dps checks passed"
