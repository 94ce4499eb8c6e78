#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# devid's webhook connector into devid gateway, both real: a vendor publishes a reel to
# devid serve, an OEM points an auto webhook connector at the gateway's admin port and claims
# the reel; the outbox pushes it and the chips are admitted on the device port; a revoke
# pushes a removal and the chip is refused. The contract of DESIGN.md checked from both ends.
# SQLite for both.
# Usage: gateway-e2e.sh DEVID
me=gateway-e2e
. "$(dirname "$0")/../integration/lib.sh"
devid=${1:-}
need_devid "$devid"
need_tool curl curl
need_tool openssl openssl
make_tmp
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd $tmp"
export DEVID_DB="sqlite:$tmp/devid.db"
secret='e2e-gateway-secret-0123456789'

"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "vendor init"
"$devid" vendor mint --dir v --batch B1 --count 5 --out B1 --keep-keys 2 --quiet >/dev/null ||
    fail "vendor mint"
set -- $(cd B1/chips && ls ./*.pem | sed 's|^\./||; s|\.pem$||')
u1=$1 u2=$2
"$devid" admin tenant add ACME --kind vendor >/dev/null || fail "tenant ACME"
"$devid" admin tenant add OEM1 --kind oem >/dev/null || fail "tenant OEM1"
VT=$("$devid" admin token add ACME --role vendor) || fail "vendor token"
A1=$("$devid" admin token add OEM1 --role admin) || fail "admin token"
"$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem >/dev/null ||
    fail "trust add"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout gw.key \
    -out gw.pem -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -days 2 2>/dev/null ||
    fail "openssl req"

# start NAME LINE-PATTERN COMMAND...: a server in the background, its first stdout line in $line
start() {
	name=$1 pattern=$2
	shift 2
	"$@" >"$name.out" 2>"$name.log" &
	pids="$pids $!"
	last_pid=$!
	i=0
	until grep -q "$pattern" "$name.out" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || { cat "$name.log" >&2; fail "$name did not start"; }
		sleep 0.1
	done
	line=$(head -1 "$name.out")
}

"$devid" admin secrets-key init "file:$PWD/secrets.key" >/dev/null || fail "secrets-key init"
start serve 'listening on' "$devid" serve --listen 127.0.0.1:0 --secrets-key "file:$PWD/secrets.key"
url=${line##*listening on }
serve_pid=$last_pid
start gateway 'admin on' "$devid" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
    --tls-cert gw.pem --tls-key gw.key --trust v/root.pem --trust v/issuing.pem --db gw.db \
    --secret "$secret" --threads 2
gateway_pid=$last_pid
dev=$(echo "$line" | sed -n 's|.*devices on https://\([^,]*\),.*|\1|p')
adm=${line##*admin on http://}

DEVID_SERVER=$url DEVID_TOKEN=$VT "$devid" vendor publish B1 >/dev/null || fail "publish B1"
status=$(curl -sS -o body -w '%{http_code}' -X POST -H "Authorization: Bearer $A1" \
    -H 'Content-Type: application/json' --data-binary \
    "{\"name\":\"GW\",\"type\":\"webhook\",\"mode\":\"auto\",\"config\":{\"url\":\"http://$adm/devid/events\",\"secret\":\"$secret\"}}" \
    "$url/api/v1/connectors")
[ "$status" = 201 ] || fail "create the connector: $status $(cat body)"

device() { # device UDID: $status of GET / on the device port
	status=$(curl -sS -o body -w '%{http_code}' --cert "B1/chips/$1.pem" \
	    --key "B1/chips/$1.key" --cacert gw.pem "https://$dev/" 2>/dev/null)
}

# wait_status UDID STATUS WHAT: polls the device port (up to 30 s) until it answers STATUS
wait_status() {
	i=0
	device "$1"
	while [ "$status" != "$2" ]; do
		i=$((i + 1))
		[ $i -lt 300 ] || {
			tail -5 serve.log >&2
			tail -5 gateway.log >&2
			fail "$3: $1 still gets $status, expected $2"
		}
		sleep 0.1
		device "$1"
	done
	note "ok $3 ($2)"
}

device "$u1"
[ "$status" = 403 ] || fail "a chip before its reel is claimed: expected 403, got $status"
DEVID_SERVER=$url DEVID_TOKEN=$A1 "$devid" claim "$(cat B1/claim.txt)" >/dev/null ||
    fail "claim B1"
wait_status "$u1" 200 "claimed: the outbox pushed the reel and the gateway admits the chip"
grep -q "\"udid\":\"$u1\",\"status\":\"admitted\"" body || fail "greeting: $(cat body)"
device "$u2"
[ "$status" = 200 ] || fail "the second chip of the reel: $status"

: >empty
status=$(curl -sS -o acl.json -w '%{http_code}' -H "X-Devid-Signature: sha256=$(openssl dgst \
    -sha256 -hmac "$secret" <empty | awk '{ print $NF }')" "http://$adm/devid/acl")
[ "$status" = 200 ] || fail "GET /devid/acl: $status"
[ "$(grep -o '"tenant":"OEM1","state":"active"' acl.json | wc -l)" -eq 5 ] ||
    fail "the ACL should hold the reel's 5 chips, active, for OEM1: $(cat acl.json)"

status=$(curl -sS -o body -w '%{http_code}' -X POST -H "Authorization: Bearer $A1" \
    "$url/api/v1/devices/$u1/revoke")
[ "$status" = 200 ] || fail "revoke: $status $(cat body)"
wait_status "$u1" 403 "revoked: the removal reached the gateway"
grep -q "reason=removed udid=$u1" gateway.log || fail "the refusal's reason is not logged"
device "$u2"
[ "$status" = 200 ] || fail "a chip not revoked is refused: $status"
grep -q 'reason=bad_signature\|reason=bad_event' gateway.log &&
    fail "the gateway refused one of devid's pushes: $(grep 'refused' gateway.log | head -3)"

kill -TERM "$gateway_pid" "$serve_pid"
for p in "$gateway_pid" "$serve_pid"; do
	wait "$p" || fail "a server did not stop cleanly (pid $p)"
done
pids=""
if grep -Eq 'ERROR: [A-Za-z]+Sanitizer|runtime error:' gateway.log serve.log; then
	fail "sanitizer report: $(grep -h -A20 'Sanitizer\|runtime error' gateway.log serve.log | head -40)"
fi
note "ok: devid's webhook pushes a claim and a revoke; the gateway admits and refuses"
