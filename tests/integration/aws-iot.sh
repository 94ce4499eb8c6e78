#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The aws-iot connector against a stand-in for AWS IoT Core's control plane
# (aws_iot_endpoint.py) that recomputes every SigV4 signature with Debian's botocore, checks
# each call against botocore's IoT model, keeps the registry's state and enforces per-call
# quotas. Claim (auto mode) registers every certificate, creates the things and attaches the
# principal and the policy; faults (5xx, throttling) inside a chunk and a chunk retried whole
# change nothing twice; a device AWS rejects is left failed and shown; revoke marks the
# certificate REVOKED, release INACTIVE, and both detach and delete; the secrets never reach
# the database file or the logs; 200 devices drain at 20/s with no request over quota and
# nothing lost or duplicated across a kill -9 of devid serve. SQLite.
# Usage: aws-iot.sh DEVID
me=aws-iot
. "$(dirname "$0")/lib.sh"
devid=${1:-}
need_devid "$devid"
need_tool curl curl
need_tool openssl openssl
need_tool /usr/bin/python3 python3
/usr/bin/python3 -c 'import botocore.auth, cryptography' 2>/dev/null ||
	skip "python3-botocore and python3-cryptography are not installed"
make_tmp
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
here=$(cd "$(dirname "$0")" && pwd)
cd "$tmp" || fail "cd"
export DEVID_DB="sqlite:$tmp/devid.db"

AK=AKIADEVIDTEST0123456
SK='wJalrXUtnFEMI/K7MDENG+bPxRfiCY-SECRET-a1b2c3'
ST='IQoJb3JpZ2luX2VjEAoaCXVzLWVhc3QtMSJGMEQCIF-SESSION-TOKEN-z9y8x7'
REGION=eu-west-1

"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "init"
"$devid" vendor mint --dir v --batch B1 --count 20 --out B1 --keep-keys 20 --quiet >/dev/null || fail "mint B1"
"$devid" vendor mint --dir v --batch B2 --count 200 --out B2 --keep-keys 200 --quiet >/dev/null || fail "mint B2"
"$devid" admin tenant add ACME --kind vendor >/dev/null
"$devid" admin tenant add OEM1 --kind oem >/dev/null
VT=$("$devid" admin token add ACME --role vendor)
A1=$("$devid" admin token add OEM1 --role admin)
"$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem >/dev/null
"$devid" admin secrets-key init "file:$tmp/secrets.key" >/dev/null || fail "secrets-key init"

start_serve() { # devid serve on a free port: $url, $serve_pid
	: >serve.out
	"$devid" serve --listen 127.0.0.1:0 --secrets-key "file:$tmp/secrets.key" --job-lease 3 \
	    >serve.out 2>>serve.log &
	serve_pid=$!
	pids="$pids $serve_pid"
	wait_line serve.out 'listening on' serve
	url=$(sed -n 's/.*listening on //p' serve.out)
}

# the stand-in, at AWS's default quotas for the calls the connector makes
/usr/bin/python3 "$here/aws_iot_endpoint.py" "$AK" "$SK" "$REGION" "$tmp/aws.log" --token "$ST" \
    --policy devid-devices --detach-delay 0.3 \
    --quota RegisterCertificateWithoutCA=10 --quota AttachPolicy=15 --quota CreateThing=100 \
    --quota AttachThingPrincipal=100 --quota DescribeCertificate=10 --quota UpdateCertificate=10 \
    --quota DetachThingPrincipal=100 --quota DetachPolicy=15 --quota DeleteCertificate=10 \
    --quota DeleteThing=100 >aws.port 2>aws.err &
pids="$pids $!"
wait_file "aws.port" "the stand-in"
aws="http://127.0.0.1:$(cat aws.port)"
aws_state() { curl -sS "$aws/_standin/state" >state.json || fail "stand-in state"; }
inject() { curl -sS -o /dev/null -X POST --data-binary "$1" "$aws/_standin/inject" || fail "inject"; }

start_serve
export DEVID_SERVER=$url
for b in B1 B2; do
	DEVID_TOKEN=$VT "$devid" vendor publish $b >/dev/null || fail "publish $b"
done

config() { # RATES: the connector's config
	printf '{"region":"%s","endpoint":"%s","accessKeyId":"%s","secretAccessKey":"%s","sessionToken":"%s","policyName":"devid-devices","thingPrefix":"devid-","attributes":{"maker":"ACME"}%s}' \
	    "$REGION" "$aws" "$AK" "$SK" "$ST" "$1"
}
api POST /api/v1/connectors "{\"name\":\"AWS\",\"type\":\"aws-iot\",\"mode\":\"auto\",\"config\":$(config '')}"
[ "$status" = 201 ] || fail "create AWS: $status $(cat body)"
grep -q -e 'SECRET-a1b2' -e 'SESSION-TOKEN' body && fail "the connector's secrets were echoed back"
grep -q '"secretAccessKeySet": *true' body || fail "redacted config: $(cat body)"
api POST /api/v1/connectors "{\"name\":\"BAD\",\"type\":\"aws-iot\",\"mode\":\"auto\",\"config\":{\"region\":\"$REGION\",\"accessKeyId\":\"$AK\",\"secretAccessKey\":\"$SK\",\"policyName\":\"p\",\"rates\":{\"CreateThing\":0}}}"
[ "$status" = 400 ] || fail "a zero rate was accepted ($status)"
note "ok connector: created, secrets never shown, bad config refused"

# wait_job CONNECTOR COUNT: waits (60 s) until COUNT jobs of CONNECTOR are done; $jobs
wait_job() {
	i=0
	while :; do
		api GET /api/v1/jobs
		jobs=$(/usr/bin/python3 -c 'import json,sys; print(" ".join(str(j["id"]) for j in json.load(open("body"))["jobs"] if j["connector"]==sys.argv[1] and j["state"]=="done"))' "$1")
		[ "$(echo "$jobs" | wc -w)" -ge "$2" ] && break
		i=$((i + 1))
		[ $i -lt 600 ] || fail "$1: $2 jobs done expected: $(cat body)"
		sleep 0.1
	done
}

# expected certificate ids: SHA-256 of each device's DER, by openssl
for f in B1/chips/*.pem; do
	u=$(basename "$f" .pem)
	echo "$u $(openssl x509 -in "$f" -outform DER | sha256sum | cut -d' ' -f1)"
done >B1.ids
[ "$(wc -l <B1.ids)" = 20 ] || fail "B1 has $(wc -l <B1.ids) chips"

# --- claim: everything registered, attached, once; faults inside the chunk retried -------
inject '{"op":"CreateThing","status":503,"count":2}'
inject '{"op":"AttachPolicy","status":400,"count":2}'
DEVID_TOKEN=$A1 "$devid" claim "$(cat B1/claim.txt)" >/dev/null || fail "claim B1"
wait_job AWS 1
add_job=$jobs
aws_state
check_added() { # IDS: every device of IDS registered ACTIVE, its thing, principal and policy
	/usr/bin/python3 - state.json "$1" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
ids = dict(l.split() for l in open(sys.argv[2]))
arn = lambda c: "arn:aws:iot:eu-west-1:123456789012:cert/" + c
assert not s["rejected"], s["rejected"]
for u, c in ids.items():
    assert s["certificates"][c]["status"] == "ACTIVE", (u, s["certificates"].get(c))
    t = s["things"]["devid-" + u]
    assert t["principals"] == [arn(c)], t
    assert t["attributes"] == {"maker": "ACME"}, t
    assert arn(c) in s["policies"]["devid-devices"]
assert len(s["certificates"]) == len(ids) and len(s["things"]) == len(ids), (len(s["certificates"]), len(s["things"]))
assert len(s["policies"]["devid-devices"]) == len(ids)
PY
}
check_added B1.ids || fail "after the claim: $(head -c 2000 state.json)"
/usr/bin/python3 -c '
import json; c = json.load(open("state.json"))["counts"]
assert c.get("CreateThing 503 ServiceUnavailableException") == 2, c
assert c.get("AttachPolicy 400 ThrottlingException") == 2, c
assert c.get("RegisterCertificateWithoutCA 200") == 20, c' || fail "injected faults not seen: $(cat state.json)"
api GET "/api/v1/jobs/$add_job/devices"
/usr/bin/python3 -c 'import json; d=json.load(open("body"))["devices"]; assert len(d)==20 and all(x["status"]=="ok" for x in d), d' ||
	fail "per-device results: $(cat body)"
api GET "/api/v1/jobs/$add_job/devices?status=failed"
grep -q '"devices": *\[\]' body || fail "failed devices after a clean add: $(cat body)"
api GET /api/v1/jobs
/usr/bin/python3 -c 'import json,sys; j=[j for j in json.load(open("body"))["jobs"] if j["id"]==int(sys.argv[1])][0]; assert j["devices"]=={"ok":20,"failed":0}, j' "$add_job" ||
	fail "job counts: $(cat body)"
note "ok claim: 20 certificates ACTIVE, 20 things, principal and policy attached; 5xx and throttling retried in the chunk"

# --- the chunk retried whole after a fault that outlasts the connector's own tries --------
inject '{"op":"AttachThingPrincipal","status":500,"count":4}'
api POST /api/v1/provision '{"connector":"AWS","batch":"ACME/B1"}'
[ "$status" = 202 ] || fail "trigger: $status $(cat body)"
wait_job AWS 2
aws_state
check_added B1.ids || fail "after the retried chunk: $(head -c 2000 state.json)"
/usr/bin/python3 -c '
import json; c = json.load(open("state.json"))["counts"]
assert c.get("RegisterCertificateWithoutCA 200") == 20, c
assert c.get("RegisterCertificateWithoutCA 409 ResourceAlreadyExistsException", 0) >= 21, c
assert c.get("AttachThingPrincipal 500 InternalFailureException") == 4, c' ||
	fail "the retry did not go through the chunk again: $(cat state.json)"
note "ok a chunk failed after 4 tries of a call and retried whole: the registry is unchanged"

# --- a device AWS rejects is left failed, with the reason, and the job moves on ---------
u1=$(head -1 B1.ids | cut -d' ' -f1)
inject '{"op":"RegisterCertificateWithoutCA","status":400,"type":"CertificateValidationException","count":1}'
api POST /api/v1/provision "{\"connector\":\"AWS\",\"devices\":[\"$u1\"]}"
[ "$status" = 202 ] || fail "trigger $u1: $status"
wait_job AWS 3
one_job=$(echo "$jobs" | tr ' ' '\n' | sort -n | tail -1)
api GET "/api/v1/jobs/$one_job/devices?status=failed"
/usr/bin/python3 -c 'import json,sys; d=json.load(open("body"))["devices"]; assert len(d)==1 and d[0]["udid"]==sys.argv[1] and "CertificateValidationException" in d[0]["message"], d' "$u1" ||
	fail "the rejected device is not shown failed: $(cat body)"
note "ok a device AWS rejects is shown failed with AWS's reason; the job is done"

# --- tenant scope of the results ----------------------------------------------------------
"$devid" admin tenant add OEM2 --kind oem >/dev/null
A2=$("$devid" admin token add OEM2 --role admin)
s=$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $A2" "$url/api/v1/jobs/$add_job/devices")
[ "$s" = 404 ] || fail "another tenant read a job's devices ($s)"
note "ok another tenant's job answers 404"

# --- revoke: REVOKED, detached, deleted; release: INACTIVE, detached, deleted -------------
u2=$(sed -n 2p B1.ids | cut -d' ' -f1)
c2=$(sed -n 2p B1.ids | cut -d' ' -f2)
api POST "/api/v1/devices/$u2/revoke"
[ "$status" = 200 ] || fail "revoke: $status $(cat body)"
wait_job AWS 4
api GET /api/v1/jobs
/usr/bin/python3 -c 'import json; j=json.load(open("body"))["jobs"][0]; assert j["action"]=="remove" and j["reason"]=="revoke" and j["devices"]=={"ok":1,"failed":0}, j' ||
	fail "the revoke job: $(cat body)"
aws_state
/usr/bin/python3 -c '
import json,sys; s=json.load(open("state.json")); u,c=sys.argv[1:]
assert s["deleted"][c] == ["ACTIVE","REVOKED","DELETED"], s["deleted"]
assert "devid-"+u not in s["things"] and c not in s["certificates"]
assert not any(c in t for t in s["policies"]["devid-devices"])
assert s["counts"].get("DeleteCertificate 409 DeleteConflictException", 0) >= 1, s["counts"]' "$u2" "$c2" ||
	fail "after the revoke: $(cat state.json)"
note "ok revoke: REVOKED, then detached (waiting out DeleteConflict) and deleted"
api POST /api/v1/batches/ACME/B1/release
[ "$status" = 200 ] || fail "release: $status"
wait_job AWS 5
api GET /api/v1/jobs
/usr/bin/python3 -c 'import json; j=json.load(open("body"))["jobs"][0]; assert j["reason"]=="release" and j["devices"]=={"ok":20,"failed":0}, j' ||
	fail "the release job: $(cat body)"
aws_state
/usr/bin/python3 -c '
import json,sys; s=json.load(open("state.json")); ids=dict(l.split() for l in open("B1.ids"))
assert not s["certificates"] and not s["things"] and not s["policies"]["devid-devices"], s
for u,c in ids.items():
    if u != sys.argv[1]: assert s["deleted"][c] == ["ACTIVE","INACTIVE","DELETED"], (u, s["deleted"][c])
assert s["deleted"][sys.argv[2]] == ["ACTIVE","REVOKED","DELETED"]
assert not s["rejected"], s["rejected"]' "$u2" "$c2" || fail "after the release: $(cat state.json)"
note "ok release: INACTIVE, detached, deleted; the revoked device stays REVOKED"

# --- drain: 200 devices at 20/s, kill -9 in the middle, restart ---------------------------
curl -sS -o /dev/null -X POST --data-binary '{"RegisterCertificateWithoutCA":20,"CreateThing":20,"AttachThingPrincipal":20,"AttachPolicy":20}' "$aws/_standin/quotas"
api PUT /api/v1/connectors/AWS "{\"type\":\"aws-iot\",\"mode\":\"auto\",\"config\":$(config ',"rates":{"RegisterCertificateWithoutCA":20,"CreateThing":20,"AttachThingPrincipal":20,"AttachPolicy":20}')}"
[ "$status" = 200 ] || fail "update AWS: $status $(cat body)"
for f in B2/chips/*.pem; do
	echo "$(basename "$f" .pem) $(openssl x509 -in "$f" -outform DER | sha256sum | cut -d' ' -f1)"
done >B2.ids
t0=$(date +%s)
DEVID_TOKEN=$A1 "$devid" claim "$(cat B2/claim.txt)" >/dev/null || fail "claim B2"
sleep 5
tk=$(date +%s)
kill -9 $serve_pid
wait $serve_pid 2>/dev/null
aws_state
before=$(/usr/bin/python3 -c 'import json; print(len(json.load(open("state.json"))["certificates"]))')
[ "$before" -gt 0 ] && [ "$before" -lt 200 ] || fail "kill -9 was not mid-drain ($before certificates)"
note "killed devid serve (-9) with $before of 200 certificates registered"
start_serve
wait_job AWS 6
t1=$(date +%s)
aws_state
check_added B2.ids || fail "after the drain: $(head -c 2000 state.json)"
/usr/bin/python3 -c '
import json; s=json.load(open("state.json"))
assert not s["throttled"], ("requests over quota", s["throttled"])
assert s["counts"].get("RegisterCertificateWithoutCA 200") == 220, s["counts"]' ||
	fail "quota or duplicates: $(cat state.json)"
# by the stand-in's log, independently of its bucket: before the kill, at most a burst of 20
# and then 20 a second
rate=$(/usr/bin/python3 -c '
import json
t=[e["t"] for e in map(json.loads, open("aws.log")) if e["op"]=="RegisterCertificateWithoutCA" and '"$t0"' <= e["t"] < '"$tk"' + 1]
w = t[-1] - t[0]
assert len(t) <= 20 + 20 * w + 1, (len(t), w)
print("%d calls in %.2f s" % (len(t), w))') || fail "RegisterCertificateWithoutCA went over 20/s"
[ $((t1 - t0)) -ge 9 ] || fail "200 devices at 20/s took $((t1 - t0)) s"
note "ok drain: 200 devices, none over quota, none lost or duplicated across kill -9 ($((t1 - t0)) s, RegisterCertificateWithoutCA before the kill: $rate)"

# --- the stand-in's signature check is real: a wrong secret is refused, a chunk fails -----
u3=$(head -1 B2.ids | cut -d' ' -f1)
api POST /api/v1/connectors "{\"name\":\"WRONG\",\"type\":\"aws-iot\",\"mode\":\"manual\",\"config\":{\"region\":\"$REGION\",\"endpoint\":\"$aws\",\"accessKeyId\":\"$AK\",\"secretAccessKey\":\"not-the-secret-0123456789\",\"sessionToken\":\"$ST\",\"policyName\":\"devid-devices\"}}"
[ "$status" = 201 ] || fail "create WRONG: $status $(cat body)"
api POST /api/v1/provision "{\"connector\":\"WRONG\",\"devices\":[\"$u3\"]}"
[ "$status" = 202 ] || fail "trigger WRONG: $status"
i=0
until api GET '/api/v1/jobs?state=pending' && grep -q 'InvalidSignatureException' body; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "a wrongly signed chunk did not fail on the signature: $(cat body)"
	sleep 0.1
done
# the connector test: a signed ListThings, ok with the right secret, AWS's words with the wrong
api POST /api/v1/connectors/WRONG/test
[ "$status" = 200 ] && /usr/bin/python3 -c 'import json; j=json.load(open("body")); assert j["ok"] is False and "ListThings: HTTP 403 InvalidSignatureException" in j["message"] and "not-the-secret" not in j["message"], j' ||
	fail "test with the wrong secret: $status $(cat body)"
api POST /api/v1/connectors/AWS/test
[ "$status" = 200 ] && /usr/bin/python3 -c 'import json; j=json.load(open("body")); assert j["ok"] is True and j["message"].startswith("ListThings: HTTP 200"), j' ||
	fail "test with the right secret: $status $(cat body)"
aws_state
/usr/bin/python3 -c 'import json; s=json.load(open("state.json")); assert s["counts"].get("ListThings 200")==1 and [r for r in s["rejected"] if r.startswith("GET /things?maxResults=1:")]==["GET /things?maxResults=1: InvalidSignatureException: The request signature we calculated does not match the signature you provided."] or print(s["counts"], s["rejected"])' ||
	fail "the stand-in did not see one good and one badly signed ListThings: $(head -c 600 state.json)"
note "ok connector test: a signed ListThings, ok:false with AWS's words for a wrong secret"
api DELETE /api/v1/connectors/WRONG
aws_state
/usr/bin/python3 -c 'import json; r=json.load(open("state.json"))["rejected"]; assert r and all("InvalidSignatureException" in x for x in r), r' ||
	fail "the stand-in did not reject the wrong signature: $(cat state.json | head -c 600)"
note "ok a request signed with the wrong secret is refused (403 InvalidSignatureException) and fails the chunk"

# --- the secrets never left devid in clear ------------------------------------------------
for f in devid.db devid.db-wal serve.log serve.out; do
	[ -e "$f" ] || continue
	grep -a -q -e 'SECRET-a1b2c3' -e 'SESSION-TOKEN-z9y8x7' "$f" && fail "a secret is in $f"
done
note "all aws-iot checks passed"
