#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Clone detection (docs/clone-detection.md) against the real devid serve, SQLite:
# - the clone policy: defaults, a change audited, refusals named;
# - seen reports signed with a webhook connector's secret (HMAC by the openssl command):
#   a device active from two networks in turn is flagged, a device that moves from address
#   to address is not, nor one behind a NAT pool of one /24; a bad signature, an unknown
#   tenant, a stale sentAt and a malformed body change nothing; a report sent twice counts
#   once; another tenant's device is ignored;
# - a suspicion's consequences: the device's API fields, GET /api/v1/suspicions, the audit
#   record, the metric, the webhook notice device.suspected_clone;
# - EST: a renewal with a certificate superseded by a later renewal, and more enrollments
#   than the renewal schedule allows (devid-agent enroll and renew --force);
# - quarantine: a clone revoked with keyCompromise, its renewal refused.
# Usage: clone.sh DEVID sqlite|postgres (postgres: $DEVID_TEST_PG_URL, a server that
# scripts/with-postgres started); devid-agent is the one beside DEVID.
me=clone
. "$(dirname "$0")/lib.sh"
devid=${1:-}
backend=${2:-sqlite}
agent=$(dirname "${1:-.}")/devid-agent
need_devid "$devid"
[ -x "$agent" ] || fail "$agent: not an executable devid-agent"
need_tool curl curl
need_tool openssl openssl
need_tool /usr/bin/python3 python3
make_tmp
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
here=$(cd "$(dirname "$0")" && pwd)
cd "$tmp" || fail "cd"
case "$backend" in
sqlite) export DEVID_DB="sqlite:$tmp/devid.db" ;;
postgres)
	[ -n "${DEVID_TEST_PG_URL:-}" ] || skip "DEVID_TEST_PG_URL not set (run under scripts/with-postgres)"
	need_tool psql postgresql-client
	export DEVID_DB="$DEVID_TEST_PG_URL"
	;;
*) fail "backend is sqlite or postgres" ;;
esac
export DEVID_CONFIG=/dev/null
secret='clone-webhook-secret-0123456789'

"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "vendor init"
"$devid" vendor mint --dir v --batch B1 --count 12 --out B1 --keep-keys 12 --quiet >/dev/null ||
	fail "mint B1"
"$devid" vendor mint --dir v --batch B2 --count 2 --out B2 --keep-keys 2 --quiet >/dev/null ||
	fail "mint B2"
"$devid" admin tenant add ACME --kind vendor >/dev/null
"$devid" admin tenant add OEM1 --kind oem >/dev/null
"$devid" admin tenant add OEM2 --kind oem >/dev/null
VT=$("$devid" admin token add ACME --role vendor)
A1=$("$devid" admin token add OEM1 --role admin)
O1=$("$devid" admin token add OEM1 --role operator)
A2=$("$devid" admin token add OEM2 --role admin)
"$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem >/dev/null
"$devid" admin ca init --tenant OEM1 --key-file "$tmp/ca.key" >/dev/null 2>&1 || fail "ca init"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout srv.key -out srv.pem >/dev/null 2>&1 ||
	fail "server cert"
"$devid" admin secrets-key init "file:$tmp/secrets.key" >/dev/null || fail "secrets-key init"

/usr/bin/python3 "$here/receiver.py" "$secret" "$tmp/hook.events" >hook.port 2>hook.err &
pids="$pids $!"
wait_file hook.port receiver
"$devid" serve --listen 127.0.0.1:0 --device-listen 127.0.0.1:0 --tls-cert srv.pem \
	--tls-key srv.key --secrets-key "file:$tmp/secrets.key" --workers 1 >serve.out 2>serve.log &
serve_pid=$!
pids="$pids $serve_pid"
wait_line serve.out 'EST on' serve
url=$(sed -n 's/.*listening on \([^ ,]*\).*/\1/p' serve.out)
est=$(sed -n 's|.*EST on https://\([^/ ]*\).*|\1|p' serve.out)
export DEVID_SERVER=$url DEVID_CACERT="$tmp/srv.pem" CURL_CA_BUNDLE="$tmp/srv.pem"
"$devid" vendor publish --token "$VT" B1 >/dev/null || fail "publish B1"
"$devid" vendor publish --token "$VT" B2 >/dev/null || fail "publish B2"
"$devid" claim --token "$A1" "$(cat B1/claim.txt)" >/dev/null || fail "claim B1"
"$devid" claim --token "$A2" "$(cat B2/claim.txt)" >/dev/null || fail "claim B2"
api_as "$A1" POST /api/v1/connectors \
	"{\"name\":\"HOOK\",\"type\":\"webhook\",\"mode\":\"manual\",\"config\":{\"url\":\"http://127.0.0.1:$(cat hook.port)/devid/events\",\"secret\":\"$secret\"}}"
[ "$status" = 201 ] || fail "webhook connector: $status $(cat body)"
set -- $(cd B1/chips && ls ./*.pem | sed 's|^\./||; s|\.pem$||')
clone=$1 mover=$2 natted=$3 est1=$4 est2=$5 quar=$6 quar2=$7 other=$(cd B2/chips && ls ./*.pem | sed -n '1s|^\./||; 1s|\.pem$||p')

# --- the policy ----------------------------------------------------------------------------
call() { # TOKEN METHOD PATH [BODY]: $status, the answer in ./body (recorded: lib.sh)
	api_as "$@"
}
call "$O1" GET /api/v1/clone-policy
[ "$status" = 200 ] || fail "policy GET: $status $(cat body)"
for kv in '"mode":"flag"' '"window":300' '"minReturns":2' '"prefixV4":24' '"prefixV6":48' \
	'"supersededGrace":600' '"maxEnrollments":3'; do
	grep -q "$kv" body || fail "default policy lacks $kv: $(cat body)"
done
call "$O1" PUT /api/v1/clone-policy '{"mode":"quarantine"}'
[ "$status" = 403 ] || fail "an operator set the policy: $status"
call "$A1" PUT /api/v1/clone-policy '{"mode":"quarantine","windw":3}'
[ "$status" = 400 ] && grep -q 'windw' body || fail "a misspelt member: $status $(cat body)"
call "$A1" PUT /api/v1/clone-policy '{"mode":"block"}'
[ "$status" = 400 ] && grep -q 'mode.* is none' body || fail "an unknown mode: $status $(cat body)"
call "$A1" PUT /api/v1/clone-policy '{"window":5}'
[ "$status" = 400 ] && grep -q 'window' body || fail "a window under 10 s: $status $(cat body)"
call "$A1" PUT /api/v1/clone-policy '{"mode":"flag","prefixV4":32,"supersededGrace":0,"maxEnrollments":3}'
[ "$status" = 200 ] && grep -q '"prefixV4":32' body && grep -q '"window":300' body ||
	fail "policy PUT: $status $(cat body)"
call "$A1" GET '/api/v1/audit?limit=1000'
grep -q '"action":"clone.policy"' body || fail "the policy change is not audited"
# the same through the command line
"$devid" clone-policy show --token "$O1" -o json >cli.json && grep -q '"prefixV4": 32' cli.json ||
	fail "devid clone-policy show: $(cat cli.json)"
printf '{"mode":"off","window":600,"prefixV4":32,"supersededGrace":0}' >policy.json
"$devid" clone-policy set --token "$A1" --mode flag --file policy.json -o json >cli.json &&
	grep -q '"mode": "flag"' cli.json && grep -q '"window": 600' cli.json &&
	grep -q '"maxEnrollments": 3' cli.json ||
	fail "devid clone-policy set: $(cat cli.json)"
note "ok policy: defaults, refusals, a change audited"

# --- seen reports ----------------------------------------------------------------------------
now=$(date -u +%s)
t() { # SECONDS-FROM-NOW: an RFC 3339 time with milliseconds
	date -u -d "@$((now + $1))" +%Y-%m-%dT%H:%M:%S.123Z
}
fp() { # FILE: the SHA-256 of a certificate's DER
	openssl x509 -in "$1" -outform DER | openssl dgst -sha256 | awk '{ print $NF }'
}
sighting() { # UDID ORIGIN FIRST LAST [CERT-FILE]
	printf '{"udid":"%s","origin":"%s","first":"%s","last":"%s","count":2,"certificate":"%s","identity":"key"}' \
		"$1" "$2" "$(t "$3")" "$(t "$4")" "$(fp "${5:-B1/chips/$1.pem}")"
}
n=0
report() { # TENANT SIGHTINGS [SECRET] [ID]: posts a signed report; $status, ./body
	n=$((n + 1))
	printf '{"report":"%s","tenant":"%s","sentAt":"%s","sightings":[%s]}' \
		"${4:-r$n}" "$1" "$(t 0)" "$2" >report.json
	sig=$(openssl dgst -sha256 -hmac "${3:-$secret}" <report.json | awk '{ print $NF }')
	api_curl body POST /api/v1/sightings -H 'Content-Type: application/json' \
		-H "X-Devid-Signature: sha256=$sig" --data-binary @report.json
}
suspected() { # UDID: whether the device is flagged (GET /api/v1/devices/{udid})
	call "$A1" GET "/api/v1/devices/$1"
	[ "$status" = 200 ] || fail "device $1: $status $(cat body)"
	grep -q '"suspectedClone":true' body
}
rows() { # the sightings stored
	case "$backend" in
	sqlite) /usr/bin/python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM sightings").fetchone()[0])' "$tmp/devid.db" ;;
	postgres) psql -Atq "$DEVID_DB" -c "SELECT COUNT(*) FROM sightings" ;;
	esac
}

# refusals first: none of them stores anything
report OEM1 "$(sighting "$clone" 127.0.0.2 -20 -19)" 'another-secret-0123456789'
[ "$status" = 401 ] && grep -q 'matches no webhook connector' body || fail "a wrong secret: $status $(cat body)"
report NOSUCH "$(sighting "$clone" 127.0.0.2 -20 -19)"
[ "$status" = 401 ] && grep -q 'matches no webhook connector' body || fail "an unknown tenant: $status $(cat body)"
printf '{"report":"old","tenant":"OEM1","sentAt":"%s","sightings":[%s]}' "$(t -3600)" \
	"$(sighting "$clone" 127.0.0.2 -3601 -3600)" >report.json
sig=$(openssl dgst -sha256 -hmac "$secret" <report.json | awk '{ print $NF }')
api_curl body POST /api/v1/sightings -H 'Content-Type: application/json' \
	-H "X-Devid-Signature: sha256=$sig" --data-binary @report.json
[ "$status" = 400 ] && grep -q 'sentAt' body || fail "a stale report: $status $(cat body)"
report OEM1 "$(sighting "$clone" 127.0.0.2 -19 -20)"
[ "$status" = 400 ] && grep -q 'last.* is before' body || fail "last before first: $status $(cat body)"
report OEM1 "$(sighting "$clone" 127.0.0.2:4433 -20 -19)"
[ "$status" = 400 ] && grep -q 'origin.* is not an IP' body || fail "an origin with a port: $status $(cat body)"
[ "$(rows)" = 0 ] || fail "a refused report stored sightings"
note "ok refused reports: wrong secret, unknown tenant, stale, malformed; nothing stored"

# the clone: one identity active from 127.0.0.2 and 127.0.0.3 at once
report OEM1 "$(sighting "$clone" 127.0.0.2 -30 -10),$(sighting "$clone" 127.0.0.3 -25 -5),$(sighting "$other" 127.0.0.2 -30 -29 B2/chips/$other.pem)"
[ "$status" = 200 ] || fail "report: $status $(cat body)"
grep -q '"accepted":2' body && grep -q '"ignored":1' body && grep -q '"suspicions":1' body ||
	fail "the clone's report: $(cat body)"
suspected "$clone" || fail "the clone is not flagged: $(cat body)"
grep -q '"rule":"concurrent-origins"' body && grep -q '127.0.0.2/32' body &&
	grep -q '127.0.0.3/32' body || fail "the suspicion does not say why: $(cat body)"
call "$A2" GET "/api/v1/devices/$other"
grep -q '"suspicions":\[\]' body || fail "OEM1's report touched OEM2's device: $(cat body)"
# the same report again (a retry) counts once
id=r$n
report OEM1 "$(sighting "$clone" 127.0.0.2 -30 -10),$(sighting "$clone" 127.0.0.3 -25 -5),$(sighting "$other" 127.0.0.2 -30 -29 B2/chips/$other.pem)" "$secret" "$id"
[ "$status" = 200 ] && grep -q '"duplicate":true' body || fail "a report sent twice: $status $(cat body)"
[ "$(rows)" = 2 ] || fail "a duplicate report stored sightings: $(rows)"
note "ok a clone active from two addresses at once is flagged"

# a device that moves: 127.0.0.2, then .3, then .4, never back
report OEM1 "$(sighting "$mover" 127.0.0.2 -60 -40),$(sighting "$mover" 127.0.0.3 -38 -20),$(sighting "$mover" 127.0.0.4 -18 -1)"
[ "$status" = 200 ] && grep -q '"suspicions":0' body || fail "the mover: $(cat body)"
suspected "$mover" && fail "a device that changed its address is flagged: $(cat body)"
# one that went back once (a handover and back) is not flagged either: minReturns 2
report OEM1 "$(sighting "$mover" 127.0.0.3 0 0)"
[ "$status" = 200 ] && grep -q '"suspicions":0' body || fail "one return: $(cat body)"
note "ok a device that moves from address to address is not flagged"

# a NAT pool: alternating addresses of one /24 are one network under the default prefix
call "$A1" PUT /api/v1/clone-policy '{"mode":"flag","supersededGrace":0,"maxEnrollments":3}'
report OEM1 "$(sighting "$natted" 198.51.100.7 -30 -10),$(sighting "$natted" 198.51.100.9 -25 -5),$(sighting "$natted" 198.51.100.7 -4 -2)"
[ "$status" = 200 ] && grep -q '"suspicions":0' body || fail "the NAT pool: $(cat body)"
suspected "$natted" && fail "a device behind a NAT pool of one /24 is flagged"
note "ok addresses of one /24 count as one network"

# what a suspicion leaves: the list, the audit record, the metric, the webhook notice
call "$O1" GET /api/v1/suspicions
[ "$status" = 200 ] && grep -q "\"udid\":\"$clone\"" body && ! grep -q "$mover" body ||
	fail "GET /api/v1/suspicions: $status $(cat body)"
call "$A2" GET /api/v1/suspicions
grep -q '"suspicions":\[\]' body || fail "OEM2 sees OEM1's suspicions: $(cat body)"
"$devid" suspicions --token "$O1" -o table >cli.txt && grep -q "concurrent-origins" cli.txt &&
	grep -q "$clone" cli.txt || fail "devid suspicions: $(cat cli.txt)"
call "$A1" GET '/api/v1/audit?limit=1000'
grep -q '"action":"device.suspected_clone"' body || fail "no audit record"
"$devid" audit verify --token "$A1" >/dev/null 2>&1 || fail "the audit chain no longer verifies"
curl -sS "$url/metrics" >metrics.txt
grep -q '^devid_clone_suspicions_total{rule="concurrent-origins"} 1' metrics.txt &&
	grep -q '^devid_sightings_total{source="report"} 9' metrics.txt ||
	fail "metrics: $(grep -E 'clone|sightings' metrics.txt)"
i=0
until grep -q '"action": "suspected_clone"' hook.events 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 200 ] || fail "no webhook notice: $(cat hook.events 2>/dev/null) $(tail -3 serve.log)"
	sleep 0.1
done
grep '"action": "suspected_clone"' hook.events | grep -q "\"udid\": \"$clone\"" &&
	grep '"action": "suspected_clone"' hook.events | grep -q '"rule": "concurrent-origins"' ||
	fail "the notice: $(cat hook.events)"
note "ok a suspicion is listed, audited, counted and sent to the webhook"

# --- EST: a superseded certificate and the enrollment rate ------------------------------------
enroll() { # UDID OUT: devid-agent enroll with the birth certificate
	"$agent" enroll --key "file:$tmp/B1/chips/$1.key" --cert "B1/chips/$1.pem" --est "https://$est" \
		--ca srv.pem --out "$2" >agent.out 2>agent.err
}
renew() { # UDID CERT OUT
	"$agent" renew --force --key "file:$tmp/B1/chips/$1.key" --cert "$2" --est "https://$est" \
		--ca srv.pem --out "$3" >agent.out 2>agent.err
}
enroll "$est1" l1.pem || fail "enroll: $(cat agent.err)"
renew "$est1" l1.pem l2.pem || fail "renew: $(cat agent.err)"
suspected "$est1" && fail "an enrollment and a renewal are flagged: $(cat body)"
sleep 1
# l1 was superseded by l2: a renewal with l1 (supersededGrace 0) is a clone's
renew "$est1" l1.pem l3.pem || fail "renew with l1: $(cat agent.err)"
suspected "$est1" && grep -q '"rule":"superseded-certificate"' body &&
	grep -q "\"supersededBy\":\"$(openssl x509 -in l2.pem -noout -serial | sed 's/serial=//' | tr A-F a-f)\"" body ||
	fail "the superseded certificate is not flagged: $(cat body)"
note "ok a renewal with a superseded certificate is flagged"
enroll "$est2" m1.pem || fail "enroll 2: $(cat agent.err)"
renew "$est2" m1.pem m2.pem || fail "renew 2: $(cat agent.err)"
renew "$est2" m2.pem m3.pem || fail "renew 3: $(cat agent.err)"
suspected "$est2" && fail "three enrollments are flagged (maxEnrollments 3): $(cat body)"
renew "$est2" m3.pem m4.pem || fail "renew 4: $(cat agent.err)"
suspected "$est2" && grep -q '"rule":"enrollment-rate"' body && grep -q '"enrollments":4' body ||
	fail "a fourth enrollment is not flagged: $(cat body)"
grep -q 'superseded-certificate' body && fail "renewals in order flagged as superseded: $(cat body)"
note "ok more enrollments than the schedule allows are flagged"

# --- quarantine ---------------------------------------------------------------------------------
call "$A1" PUT /api/v1/clone-policy '{"mode":"quarantine","prefixV4":32,"supersededGrace":0}'
[ "$status" = 200 ] || fail "quarantine: $status $(cat body)"
enroll "$quar" q1.pem || fail "enroll q: $(cat agent.err)"
report OEM1 "$(sighting "$quar" 127.0.0.2 -30 -10),$(sighting "$quar" 127.0.0.3 -25 -5)"
[ "$status" = 200 ] && grep -q '"suspicions":1' body || fail "quarantine report: $(cat body)"
call "$A1" GET "/api/v1/devices/$quar"
grep -q '"revoked":true\|"state":"revoked"' body && grep -q '"quarantined":true' body ||
	fail "the clone is not revoked: $(cat body)"
grep -q 'keyCompromise' body || fail "the revocation does not say keyCompromise: $(cat body)"
i=0
until grep '"action": "suspected_clone"' hook.events | grep "\"udid\": \"$quar\"" | grep -q '"quarantined": true'; do
	i=$((i + 1))
	[ $i -lt 200 ] || fail "no notice of the quarantined device: $(cat hook.events)"
	sleep 0.1
done
renew "$quar" q1.pem q2.pem && fail "a quarantined device renewed"
grep -qi 'revoked' agent.err || fail "the refusal does not say revoked: $(cat agent.err)"
# an EST renewal that raises the suspicion is refused, and the device revoked with it
enroll "$quar2" p1.pem || fail "enroll p: $(cat agent.err)"
renew "$quar2" p1.pem p2.pem || fail "renew p: $(cat agent.err)"
sleep 1
renew "$quar2" p1.pem p3.pem && fail "a renewal with a superseded certificate was issued under quarantine"
grep -qi 'revoked' agent.err || fail "the quarantined renewal does not say revoked: $(cat agent.err)"
[ ! -e p3.pem ] || fail "a certificate was written for a quarantined renewal"
call "$A1" GET "/api/v1/devices/$quar2"
grep -q '"state":"revoked"' body && grep -q '"rule":"superseded-certificate"' body &&
	grep -q '"quarantined":true' body || fail "the quarantined renewal: $(cat body)"
[ "$(/usr/bin/python3 -c 'import json; print(len(json.load(open("body"))["certificates"]))')" = 2 ] ||
	fail "a quarantined renewal stored a certificate: $(cat body)"
call "$A1" GET '/api/v1/audit?limit=1000'
/usr/bin/python3 -c 'import json,sys; sys.exit(not any(r["actor"] == "clone-detection" and r["action"] == "device.revoke" and r["object"] == sys.argv[1] for r in json.load(open("body"))["records"]))' "$quar" ||
	fail "the quarantine's revoke is not audited as clone-detection"
note "ok quarantine revokes the clone with keyCompromise; EST refuses it"

kill -TERM "$serve_pid"
wait "$serve_pid" || fail "devid serve did not stop cleanly"
pids=$(echo "$pids" | sed "s/ $serve_pid//")
if grep -Eq 'ERROR: [A-Za-z]+Sanitizer|runtime error:' serve.log; then
	fail "sanitizer report: $(grep -A20 'Sanitizer\|runtime error' serve.log | head -40)"
fi
note "ok: clone detection"
