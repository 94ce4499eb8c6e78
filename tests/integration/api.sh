#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The REST API of devid serve end to end, with curl and the devid client as clients, on the
# database given: sqlite (a temporary file) or postgres ($DEVID_TEST_PG_URL, a server that
# scripts/with-postgres started). Covers the acceptance list of the service issue: publish,
# forged batch leaves no trace, roles, claims and their indistinguishable failures, tenant
# isolation, the three manifest formats (CSV through Python's RFC 4180 parser), transfer,
# release, the audit chain, duplicate chips across batches, 413, and (postgres) 20 concurrent
# claims by two tenants across two servers leaving one owner.
# Usage: api.sh DEVID sqlite|postgres
me=api
. "$(dirname "$0")/lib.sh"
devid=${1:-}
backend=${2:-sqlite}
need_devid "$devid"
need_tool curl curl
need_tool /usr/bin/python3 python3
here=$(cd "$(dirname "$0")" && pwd)
make_tmp
servers=""
trap 'for p in $servers; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT

case "$backend" in
sqlite) export DEVID_DB="sqlite:$tmp/devid.db" ;;
postgres)
	[ -n "${DEVID_TEST_PG_URL:-}" ] || skip "DEVID_TEST_PG_URL not set (run under scripts/with-postgres)"
	export DEVID_DB="$DEVID_TEST_PG_URL"
	;;
*) fail "backend is sqlite or postgres" ;;
esac

# start_server NAME [ARGS]: a devid serve on a free port; sets $url
start_server() {
	name=$1
	shift
	# connector secrets are encrypted at rest: every server of the database has the same key
	[ -e "$tmp/secrets.key" ] || "$devid" admin secrets-key init "file:$tmp/secrets.key" >/dev/null ||
		fail "secrets-key init"
	"$devid" serve --listen 127.0.0.1:0 --threads 4 --secrets-key "file:$tmp/secrets.key" "$@" \
	    >"$tmp/$name.out" 2>"$tmp/$name.log" &
	servers="$servers $!"
	i=0
	while ! grep -q 'listening on' "$tmp/$name.out" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || { cat "$tmp/$name.log" >&2; fail "$name did not start"; }
		sleep 0.1
	done
	url=$(sed -n 's/.*listening on //p' "$tmp/$name.out")
}

# api METHOD PATH TOKEN [BODYFILE]: $status and $tmp/body
api() {
	if [ -n "${4:-}" ]; then
		api_curl "$tmp/body" "$1" "$2" -H "Authorization: Bearer $3" \
		    -H 'Content-Type: application/json' --data-binary "@$4"
	else
		api_curl "$tmp/body" "$1" "$2" -H "Authorization: Bearer $3"
	fi
}

expect_status() {
	[ "$status" = "$1" ] || fail "$2: expected HTTP $1, got $status: $(head -c 400 "$tmp/body")"
	note "ok $2 ($status)"
}

cd "$tmp" || fail "cd"
run "$devid" vendor init --dir v --vendor ACME
[ $rc -eq 0 ] || { show_run; fail "vendor init"; }
for b in B1 B2 B3; do
	run "$devid" vendor mint --dir v --batch $b --count 40 --out $b --keep-keys 1 --quiet
	[ $rc -eq 0 ] || fail "mint $b"
done
"$devid" admin migrate >/dev/null || fail "migrate"
for t in "ACME vendor" "OEM1 oem" "OEM2 oem"; do
	set -- $t
	"$devid" admin tenant add "$1" --kind "$2" >/dev/null || fail "tenant $1"
done
VT=$("$devid" admin token add ACME --role vendor) || fail "token"
A1=$("$devid" admin token add OEM1 --role admin) || fail "token"
OP1=$("$devid" admin token add OEM1 --role operator) || fail "token"
A2=$("$devid" admin token add OEM2 --role admin) || fail "token"
"$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem >/dev/null || fail "trust"
grep -q "$VT" "${DEVID_DB#sqlite:}" 2>/dev/null && fail "a token is stored in clear"

start_server s1 --max-ingest-body 200000 --max-body 4096
body() { printf '{"descriptor":%s,"manifest":%s}' "$(cat "$1/batch.json")" "$(cat "$1/manifest.json")" >"$2"; }

# no token, bad token
api_curl "$tmp/body" GET /api/v1/batches
expect_status 401 "no token"
api GET /api/v1/batches "not-a-token-at-all-0123456789"
expect_status 401 "unknown token"

# the OpenAPI document, the other routes without a token, and reads of what this test makes
# none of (their answers are recorded for tests/openapi too)
api_curl "$tmp/body" GET /api/v1/openapi.json
expect_status 200 "the OpenAPI document without a token"
[ "$ctype" = application/json ] || fail "the OpenAPI document is served as \"$ctype\""
grep -q '"openapi": "3.1.0"' "$tmp/body" || fail "the OpenAPI document is not OpenAPI 3.1.0"
for x in "200 /healthz" "200 /metrics" "200 /api/v1/interop-key" "404 /api/v1/tenants/OEM1/crl" \
    "302 /" "200 /console/" "200 /console/app.js" "404 /console/nothing.js"; do
	api_curl "$tmp/body" GET "${x#* }"
	expect_status "${x%% *}" "GET ${x#* } without a token"
done
api GET /api/v1/quota "$A1"
expect_status 200 "the quota"
printf '{"max":null}' >quota.json
api PUT /api/v1/quota "$A1" quota.json
expect_status 200 "no quota"
api GET /api/v1/jobs "$A1"
expect_status 200 "no jobs yet"
api GET /api/v1/jobs/999999/devices "$A1"
expect_status 404 "no such job"

# publish: an OEM cannot, the vendor can, once
body B1 b1.json
api POST /api/v1/vendor/batches "$A1" b1.json
expect_status 403 "an OEM token cannot publish"
api POST /api/v1/vendor/batches "$VT" b1.json
expect_status 201 "publish B1"
grep -q '"accepted":40' body || fail "publish report: $(cat body)"
api POST /api/v1/vendor/batches "$VT" b1.json
expect_status 409 "publishing B1 again"

# a forged entry: 400 with a report naming it, and no trace (its code claims nothing)
/usr/bin/python3 - B2/manifest.json <<'PY' || fail "forge"
import base64, json, sys
m = json.load(open(sys.argv[1]))
s = m[5]["signature"]
raw = bytearray(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
raw[3] ^= 1
m[5]["signature"] = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
json.dump(m, open(sys.argv[1], "w"))
PY
body B2 b2.json
api POST /api/v1/vendor/batches "$VT" b2.json
expect_status 400 "forged batch rejected"
grep -q '"index":5' body && grep -q 'signature does not verify' body || fail "report: $(head -c 600 body)"

# oversized body; announced with Expect: 100-continue, so curl waits for the answer instead
# of racing the server's close with the rest of the body (a broken pipe, status 000, on a
# loaded machine; http-limits covers the unannounced case)
head -c 300000 /dev/zero | tr '\0' 'x' >big.json
status=$(curl -sS -o "$tmp/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $VT" \
    -H 'Content-Type: application/json' -H 'Expect: 100-continue' --data-binary @big.json \
    "$url/api/v1/vendor/batches")
expect_status 413 "oversized body"
grep -q 'limit of 200000 bytes' "$tmp/body" || fail "the publish limit is not --max-ingest-body: $(cat "$tmp/body")"
# every other route has the small --max-body
head -c 5000 /dev/zero | tr '\0' 'x' >mid.json
status=$(curl -sS -o "$tmp/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $A1" \
    -H 'Content-Type: application/json' -H 'Expect: 100-continue' --data-binary @mid.json \
    "$url/api/v1/claims")
expect_status 413 "a 5000-byte claim over --max-body 4096"
grep -q 'limit of 4096 bytes' "$tmp/body" || fail "the claim limit is not --max-body: $(cat "$tmp/body")"

# claims: owner binds and repeats; another tenant, a wrong code and a missing batch are alike
printf '{"code":"%s"}' "$(cat B1/claim.txt)" >c1.json
printf '{"code":"%s"}' "$(cat B2/claim.txt)" >c2.json
printf '{"code":"DEVID1:ACME:NOPE:AAAAAAAAAAAAAAAAAAAAAAAAAA"}' >c0.json
api POST /api/v1/claims "$OP1" c1.json
expect_status 200 "operator claims B1"
grep -q '"claimed":true' body || fail "claimed: $(cat body)"
api POST /api/v1/claims "$A1" c1.json
expect_status 200 "repeat claim by the owner"
grep -q '"claimed":false' body || fail "repeat: $(cat body)"
api POST /api/v1/claims "$A2" c1.json
cp body other.body
s_other=$status
api POST /api/v1/claims "$A2" c0.json
[ "$status" = "$s_other" ] && cmp -s body other.body ||
	fail "another tenant's claim ($s_other $(cat other.body)) differs from a missing batch's ($status $(cat body))"
expect_status 404 "claim of another tenant's batch looks like a missing batch"
api POST /api/v1/claims "$A2" c2.json
[ "$status" = "$s_other" ] && cmp -s body other.body || fail "claim of the rejected batch B2 is not a plain 404"
note "ok the forged batch B2 left no trace"

# tenant isolation: OEM2 sees none of OEM1's objects
api GET /api/v1/batches/ACME/B1 "$A2"
expect_status 404 "another tenant's batch"
api GET /api/v1/batches/ACME/B1/manifest "$A2"
expect_status 404 "another tenant's manifest"
udid=$(ls B1/chips/*.pem | head -1 | xargs basename | sed 's/\.pem$//')
api GET "/api/v1/devices/$udid" "$A2"
expect_status 404 "another tenant's device"
api GET "/api/v1/devices/$udid" "$A1"
expect_status 200 "own device"
api POST "/api/v1/devices/$udid/revoke" "$OP1"
expect_status 403 "an operator cannot revoke"

# manifest files
api GET "/api/v1/batches/ACME/B1/manifest?format=csv" "$A1"
expect_status 200 "manifest csv"
/usr/bin/python3 - body <<'PY' || fail "CSV is not the expected RFC 4180 file"
import csv, sys
rows = list(csv.reader(open(sys.argv[1], newline="")))
assert rows[0] == ["device_id", "group_id", "certificate"], rows[0]
assert len(rows) == 41, len(rows)
for r in rows[1:]:
    assert len(r) == 3 and len(r[0]) == 64 and r[1] == "B1", r[:2]
    assert r[2].startswith("-----BEGIN CERTIFICATE-----") and r[2].rstrip().endswith("-----END CERTIFICATE-----")
PY
api GET "/api/v1/batches/ACME/B1/manifest?format=pem" "$A1"
expect_status 200 "manifest pem"
[ "$(grep -c 'BEGIN CERTIFICATE' body)" = 40 ] || fail "PEM bundle: $(grep -c 'BEGIN CERTIFICATE' body) certificates"
api GET "/api/v1/batches/ACME/B1/manifest?format=json" "$A1"
expect_status 200 "manifest json"
mkdir dl && cp body dl/manifest.json && cp B1/batch.json B1/claim.txt dl/
run "$devid" vendor verify dl --root v/root.pem --signer v/signer.pem
[ $rc -eq 0 ] || { show_run; fail "the downloaded JSON does not verify again"; }
note "ok downloaded JSON entries verify again"

# transfer and release
api POST /api/v1/batches/ACME/B1/transfer "$A2"
expect_status 404 "only the owner transfers"
api POST /api/v1/batches/ACME/B1/transfer "$A1"
expect_status 200 "transfer"
code=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["code"])' body)
printf '{"code":"%s"}' "$code" >ct.json
api POST /api/v1/claims "$A2" c1.json
expect_status 404 "the old code does not move the batch"
api POST /api/v1/claims "$A2" ct.json
expect_status 200 "the next owner claims with the transfer code"
api GET /api/v1/batches/ACME/B1 "$A1"
expect_status 404 "the former owner no longer sees the batch"
api POST /api/v1/batches/ACME/B1/release "$A2"
expect_status 200 "release"
api POST /api/v1/claims "$A1" ct.json
expect_status 200 "a released batch is claimed again"
api GET /api/v1/batches/ACME/B1/custody "$A1"
expect_status 200 "the owner's chain of custody"
events=$(/usr/bin/python3 -c 'import base64,json,sys
d = lambda s: json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)))
print(",".join(d(r["payload"])["event"] for r in json.load(open(sys.argv[1]))["records"]))' body)
[ "$events" = publish,claim,transfer,release,claim ] || fail "custody records: '$events'"
api GET /api/v1/batches/ACME/B1/custody "$A2"
expect_status 404 "a previous owner does not see the chain"

# a chip of B1 re-signed into B3 by the vendor: reported as a duplicate, B3 not stored
/usr/bin/python3 - B1/manifest.json B3/manifest.json v/signer.key <<'PY' || fail "re-sign"
import base64, json, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils
b64d = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
b64e = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
b1, b3 = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
key = serialization.load_pem_private_key(open(sys.argv[3], "rb").read(), None)
e = b1[0]
p = json.loads(b64d(e["payload"]))
p["groupId"] = "B3"
e["payload"] = b64e(json.dumps(p, separators=(",", ":")).encode())
der = key.sign((e["protected"] + "." + e["payload"]).encode(), ec.ECDSA(hashes.SHA256()))
r, s = utils.decode_dss_signature(der)
e["signature"] = b64e(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
b3[2] = e
json.dump(b3, open(sys.argv[2], "w"))
PY
body B3 b3.json
api POST /api/v1/vendor/batches "$VT" b3.json
expect_status 409 "a chip already stored in another batch"
grep -q 'already stored in batch ACME/B1' body || fail "duplicate report: $(head -c 600 body)"

# the audit chain verifies, and an edited record is found
run "$devid" admin audit verify OEM1
[ $rc -eq 0 ] || { show_run; fail "audit chain of OEM1"; }
grep -q 'chain intact' out || fail "audit verify output"
case "$backend" in
sqlite) /usr/bin/python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("UPDATE audit SET actor=? WHERE seq=1", ("mallory",)); c.commit()' "${DEVID_DB#sqlite:}" ;;
postgres) psql -q "$DEVID_DB" -c "UPDATE audit SET actor='mallory' WHERE seq=1" >/dev/null ;;
esac
run "$devid" admin audit verify OEM1
[ $rc -ne 0 ] && grep -q 'record 1 was changed' err || { show_run; fail "an edited audit record was not detected"; }
note "ok audit chain verifies and detects an edited record"

# the devid client commands against the same server
export DEVID_SERVER=$url
run "$devid" batches --token "$A1"
[ $rc -eq 0 ] && grep -q '"batch": "B1"' out || { show_run; fail "devid batches"; }
run "$devid" manifest ACME/B1 --format pem --out client.pem --token "$A1"
[ $rc -eq 0 ] && [ "$(grep -c 'BEGIN CERTIFICATE' client.pem)" = 40 ] || { show_run; fail "devid manifest"; }
run "$devid" claim "$(cat B1/claim.txt)" --token "$A2"
[ $rc -ne 0 ] && grep -q 'no batch matches this claim code (HTTP 404)' err || { show_run; fail "devid claim refused"; }
run "$devid" revoke "$udid" --token "$A1"
[ $rc -eq 0 ] && grep -q revoked out || { show_run; fail "devid revoke"; }
note "ok devid client commands"

# TLS on the API port
if [ "$backend" = sqlite ] && command -v openssl >/dev/null 2>&1; then
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
	    -keyout tls.key -out tls.pem >/dev/null 2>&1 || fail "openssl req"
	start_server s3 --tls-cert tls.pem --tls-key tls.key
	case $url in https://*) ;; *) fail "a TLS server announced $url" ;; esac
	status=$(curl -sS -o "$tmp/body" -w '%{http_code}' --cacert tls.pem \
	    -H "Authorization: Bearer $A1" "$url/api/v1/batches")
	expect_status 200 "the API over TLS"
	curl -sS -o /dev/null "http://${url#https://}/healthz" 2>/dev/null &&
		fail "plain HTTP answered on the TLS port"
	note "ok TLS on the API port"
fi

# postgres: 20 concurrent claims of one batch by two tenants across two servers
if [ "$backend" = postgres ]; then
	run "$devid" vendor mint --dir v --batch B4 --count 5 --out B4 --quiet
	body B4 b4.json
	api POST /api/v1/vendor/batches "$VT" b4.json
	expect_status 201 "publish B4"
	# two fresh servers without a claim limit: the limit is shared through the database,
	# and this race is about owners, not rates (multi-server.sh checks the shared limit)
	start_server s4 --claim-burst 0
	url1=$url
	start_server s2 --claim-burst 0
	url2=$url
	printf '{"code":"%s"}' "$(cat B4/claim.txt)" >c4.json
	racers=""
	for i in $(seq 1 20); do
		if [ $((i % 2)) -eq 0 ]; then u=$url1; else u=$url2; fi
		if [ $((i % 4)) -lt 2 ]; then t=$A1; else t=$A2; fi
		curl -sS -o "race.$i" -w '%{http_code}\n' -H "Authorization: Bearer $t" \
		    --data-binary @c4.json "$u/api/v1/claims" >"race.$i.status" &
		racers="$racers $!"
	done
	# shellcheck disable=SC2086
	wait $racers
	won=$(cat race.*.status | grep -c '^200$')
	bound=$(grep -l '"claimed":true' race.[0-9]* | wc -l)
	[ "$won" = 10 ] && [ "$bound" = 1 ] || fail "concurrent claims: $won succeeded, $bound bound (want 10 and 1)"
	n1=$(curl -sS -H "Authorization: Bearer $A1" "$url1/api/v1/batches" | grep -c '"B4"')
	n2=$(curl -sS -H "Authorization: Bearer $A2" "$url2/api/v1/batches" | grep -c '"B4"')
	[ $((n1 + n2)) = 1 ] || fail "B4 has $((n1 + n2)) owners"
	note "ok 20 concurrent claims across two servers left exactly one owner"

	# both servers' delivery workers share the outbox: 12 jobs, each delivered once
	/usr/bin/python3 "$here/receiver.py" "shared-secret-0123456789" "$tmp/shared.events" \
	    >"$tmp/shared.port" 2>"$tmp/shared.err" &
	servers="$servers $!"
	wait_file "$tmp/shared.port" "receiver"
	owner=$A1
	[ "$n1" = 1 ] || owner=$A2
	url=$url1
	printf '{"name":"SHARED","type":"webhook","mode":"manual","config":{"url":"http://127.0.0.1:%s/","secret":"shared-secret-0123456789"}}' \
	    "$(cat "$tmp/shared.port")" >conn.json
	api POST /api/v1/connectors "$owner" conn.json
	expect_status 201 "connector on the shared database"
	devs=$(curl -sS -H "Authorization: Bearer $owner" "$url1/api/v1/devices?batch=ACME/B4" |
		/usr/bin/python3 -c 'import json,sys; print(",".join(json.dumps(d["udid"]) for d in json.load(sys.stdin)["devices"]))')
	for k in 1 2 3; do
		printf '{"connector":"SHARED","devices":[%s]}' "$devs" >prov.json
		api POST /api/v1/provision "$owner" prov.json
		expect_status 202 "trigger $k"
	done
	i=0
	until [ -f "$tmp/shared.events" ] && [ "$(wc -l <"$tmp/shared.events")" -ge 15 ]; do
		i=$((i + 1))
		[ $i -lt 300 ] || fail "shared outbox: $(wc -l <"$tmp/shared.events") of 15 events"
		sleep 0.1
	done
	sleep 1
	[ "$(wc -l <"$tmp/shared.events.raw")" = 15 ] ||
		fail "shared outbox: $(wc -l <"$tmp/shared.events.raw") pushes for 15 jobs (a job was delivered twice)"
	note "ok two servers' workers shared 15 jobs, each delivered once"
fi
note "all API checks passed on $backend"
