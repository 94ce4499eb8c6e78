#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The whole loop with the real binaries on 127.0.0.1: devid serve pushes a claimed batch to
# devid gateway through a webhook connector; devid-agent connects devices over mutual TLS.
# Genuine admitted; unclaimed, forged (same subject, other key, self-signed) and revoked
# refused; release removes; a push with a wrong HMAC changes nothing; a gateway that is down
# during a claim gets every device once it is back, each event applied once.
# Usage: chip-to-cloud.sh DEVID DEVID-AGENT
me=chip-to-cloud
. "$(dirname "$0")/lib.sh"
devid=${1:-}
agent=${2:-}
need_devid "$devid"
[ -x "$agent" ] || fail "$agent: not an executable devid-agent"
need_tool curl curl
need_tool openssl openssl
make_tmp
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd"
export DEVID_DB="sqlite:$tmp/devid.db"
secret="gateway-secret-0123456789abcdef"

wait_for() { # FILE PATTERN WHAT
	i=0
	until grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 150 ] || fail "$3 did not start: $(cat "$1" "$1.log" 2>/dev/null | tail -5)"
		sleep 0.1
	done
}

start_gateway() {
	: >gw.out
	"$devid" gateway --listen 127.0.0.1:${gw_port:-0} --tls-cert gw.pem --tls-key gw.key \
	    --trust v/root.pem --admin-listen 127.0.0.1:${gw_admin_port:-0} --secret "$secret" \
	    --db "$tmp/gateway.db" >gw.out 2>>gw.log &
	gw_pid=$!
	pids="$pids $gw_pid"
	wait_for gw.out 'admin on' "the gateway"
	gw_dev=$(sed -n 's|.*devices on https://\([^,]*\),.*|\1|p' gw.out)
	gw_admin=$(sed -n 's|.*admin on http://\([^ ]*\).*|\1|p' gw.out)
	gw_port=${gw_dev##*:}
	gw_admin_port=${gw_admin##*:}
}

acl_count() { # STATE: devices of the gateway's ACL in that state
	curl -sS -H "X-Devid-Signature: sha256=$(printf '' | openssl dgst -sha256 -hmac "$secret" | awk '{ print $NF }')" "http://$gw_admin/devid/acl" |
		/usr/bin/python3 -c 'import json,sys; print(sum(1 for d in json.load(sys.stdin)["devices"] if d["state"] == sys.argv[1]))' "$1"
}

wait_acl() { # STATE COUNT
	i=0
	until [ "$(acl_count "$1")" = "$2" ]; do
		i=$((i + 1))
		[ $i -lt 300 ] || fail "gateway ACL: $(acl_count "$1") $1, want $2"
		sleep 0.1
	done
}

hello() { # CHIPDIR UDID: runs devid-agent hello, its status in $rc
	cat "$1/chips/$2.pem" v/issuing.pem >"dev-$2.pem"
	run "$agent" hello --key "file:$1/chips/$2.key" --cert "dev-$2.pem" \
	    --connect "$gw_dev" --ca gw.pem --timeout 5
}

"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "init"
"$devid" vendor mint --dir v --batch B1 --count 10 --out B1 --keep-keys 3 --quiet >/dev/null || fail "mint"
"$devid" vendor mint --dir v --batch B2 --count 5 --out B2 --keep-keys 1 --quiet >/dev/null || fail "mint"
"$devid" admin tenant add ACME --kind vendor >/dev/null
"$devid" admin tenant add OEM1 --kind oem >/dev/null
VT=$("$devid" admin token add ACME --role vendor)
A1=$("$devid" admin token add OEM1 --role admin)
"$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem >/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout gw.key -out gw.pem >/dev/null 2>&1 || fail "gateway cert"
"$devid" admin secrets-key init "file:$tmp/secrets.key" >/dev/null || fail "secrets-key init"
"$devid" serve --listen 127.0.0.1:0 --secrets-key "file:$tmp/secrets.key" >serve.out 2>serve.log &
pids="$pids $!"
wait_for serve.out 'listening on' "devid serve"
export DEVID_SERVER="$(sed -n 's/.*listening on //p' serve.out)"
for b in B1 B2; do
	DEVID_TOKEN=$VT "$devid" vendor publish $b >/dev/null || fail "publish $b"
done
start_gateway
status=$(curl -sS -o body -w '%{http_code}' -H "Authorization: Bearer $A1" -d \
    "{\"name\":\"GW\",\"type\":\"webhook\",\"mode\":\"auto\",\"config\":{\"url\":\"http://$gw_admin/devid/events\",\"secret\":\"$secret\"}}" \
    "$DEVID_SERVER/api/v1/connectors")
[ "$status" = 201 ] || fail "connector: $status $(cat body)"

# claim B1: its 10 devices reach the gateway
DEVID_TOKEN=$A1 "$devid" claim "$(cat B1/claim.txt)" >/dev/null || fail "claim B1"
wait_acl active 10
note "ok the claimed batch arrived on the gateway (auto push)"

g1=$(ls B1/chips/*.key | sed -n 1p | xargs basename | sed 's/\.key$//')
g2=$(ls B1/chips/*.key | sed -n 2p | xargs basename | sed 's/\.key$//')
u1=$(ls B2/chips/*.key | sed -n 1p | xargs basename | sed 's/\.key$//')
hello B1 "$g1"
[ $rc -eq 0 ] && grep -q "$g1" out || { show_run; fail "a genuine device was not admitted"; }
note "ok genuine device admitted"
hello B2 "$u1"
[ $rc -eq 1 ] || { show_run; fail "a device of an unclaimed batch was not refused (exit $rc)"; }
note "ok device of an unclaimed batch refused"

# forged: the genuine subject on another key, self-signed
subj=$(openssl x509 -in "B1/chips/$g1.pem" -noout -subject -nameopt compat | sed 's/^subject=//')
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/$(echo "$subj" | sed 's|, |/|g')" \
    -keyout forged.key -out forged.pem >/dev/null 2>&1 || fail "forge"
run "$agent" hello --key file:forged.key --cert forged.pem --connect "$gw_dev" --ca gw.pem --timeout 5
[ $rc -ne 0 ] || { show_run; fail "a forged self-signed copy was admitted"; }
note "ok forged copy (same subject, other key, self-signed) refused"
# wrong key: a genuine certificate with another chip's key
run "$agent" hello --key "file:B1/chips/$g2.key" --cert "dev-$g1.pem" --connect "$gw_dev" --ca gw.pem --timeout 5
[ $rc -ne 0 ] || { show_run; fail "a certificate with the wrong key was admitted"; }
note "ok wrong key refused"

# a push with a wrong HMAC changes nothing
body='{"event":"evil-1","action":"remove","tenant":"OEM1","devices":[]}'
status=$(curl -sS -o body -w '%{http_code}' -H 'X-Devid-Event: evil-1' \
    -H 'X-Devid-Signature: sha256=0000000000000000000000000000000000000000000000000000000000000000' \
    -d "$body" "http://$gw_admin/devid/events")
[ "$status" = 401 ] || fail "a wrong HMAC got $status"
[ "$(acl_count active)" = 10 ] || fail "the ACL changed after a refused push"
note "ok wrong HMAC refused, nothing changed"

# revoke: the device is removed from the gateway and refused
DEVID_TOKEN=$A1 "$devid" revoke "$g2" >/dev/null || fail "revoke"
wait_acl removed 1
hello B1 "$g2"
[ $rc -eq 1 ] || { show_run; fail "a revoked device was not refused (exit $rc)"; }
note "ok revoked device removed from the gateway and refused"

# the gateway is down while B2 is claimed; once back, every device arrives
kill $gw_pid
wait $gw_pid 2>/dev/null
DEVID_TOKEN=$A1 "$devid" claim "$(cat B2/claim.txt)" >/dev/null || fail "claim B2"
sleep 2
start_gateway
wait_acl active 14
hello B2 "$u1"
[ $rc -eq 0 ] || { show_run; fail "a B2 device was not admitted after the gateway came back"; }
note "ok gateway down during the claim: every device arrived once it was back"

# release B1: its devices are removed
status=$(curl -sS -o body -w '%{http_code}' -X POST -H "Authorization: Bearer $A1" \
    "$DEVID_SERVER/api/v1/batches/ACME/B1/release")
[ "$status" = 200 ] || fail "release: $status"
wait_acl removed 10
hello B1 "$g1"
[ $rc -eq 1 ] || { show_run; fail "a device of a released batch was not refused"; }
note "ok release removed the batch from the gateway"
note "all chip-to-cloud checks passed"
