#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Clone detection end to end (docs/clone-detection.md, issue 16), every part real: devid
# serve pushes a claimed reel into devid gateway by webhook; the gateway reports what it
# admits to devid (--report-url, signed with the webhook's secret). Then:
# - a chip and its clone (one key, two client processes on two loopback addresses) are
#   flagged within the window, and the tenant's quarantine policy revokes the chip
#   (keyCompromise); the removal reaches the gateway, which refuses it from then on, and the
#   gateway logs devid's suspected_clone notice;
# - a chip that moves from address to address is not flagged and stays admitted;
# - a chip that renewed its operational certificate and then shows the superseded one at
#   the gateway is flagged.
# SQLite for both.
# Usage: gateway-clone.sh DEVID
me=gateway-clone
. "$(dirname "$0")/../integration/lib.sh"
devid=${1:-}
need_devid "$devid"
agent=$(dirname "$devid")/devid-agent
[ -x "$agent" ] || fail "$agent: not an executable devid-agent"
need_tool curl curl
need_tool openssl openssl
make_tmp
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd $tmp"
export DEVID_DB="sqlite:$tmp/devid.db" DEVID_CONFIG=/dev/null
secret='clone-gateway-secret-0123456789'

"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "vendor init"
"$devid" vendor mint --dir v --batch B1 --count 5 --out B1 --keep-keys 5 --quiet >/dev/null ||
	fail "vendor mint"
set -- $(cd B1/chips && ls ./*.pem | sed 's|^\./||; s|\.pem$||')
chip=$1 mover=$2 renewer=$3
"$devid" admin tenant add ACME --kind vendor >/dev/null || fail "tenant ACME"
"$devid" admin tenant add OEM1 --kind oem >/dev/null || fail "tenant OEM1"
VT=$("$devid" admin token add ACME --role vendor) || fail "vendor token"
A1=$("$devid" admin token add OEM1 --role admin) || fail "admin token"
"$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem >/dev/null ||
	fail "trust add"
"$devid" admin ca init --tenant OEM1 --key-file "$tmp/ca.key" >/dev/null 2>&1 || fail "ca init"
"$devid" admin ca show --tenant OEM1 >oem1-ca.pem || fail "ca show"
for n in gw srv; do
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $n.key \
		-out $n.pem -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -days 2 \
		2>/dev/null || fail "openssl req $n"
done
"$devid" admin secrets-key init "file:$PWD/secrets.key" >/dev/null || fail "secrets-key init"

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

start serve 'EST on' "$devid" serve --listen 127.0.0.1:0 --device-listen 127.0.0.1:0 \
	--tls-cert srv.pem --tls-key srv.key --secrets-key "file:$PWD/secrets.key"
serve_pid=$last_pid
url=$(sed -n 's/.*listening on \([^ ,]*\).*/\1/p' serve.out)
est=$(sed -n 's|.*EST on https://\([^/ ]*\).*|\1|p' serve.out)
export DEVID_SERVER=$url DEVID_CACERT="$tmp/srv.pem" CURL_CA_BUNDLE="$tmp/srv.pem"
start gateway 'admin on' "$devid" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 \
	--tls-cert gw.pem --tls-key gw.key --trust v/root.pem --trust v/issuing.pem \
	--trust oem1-ca.pem --db gw.db --secret "$secret" --threads 2 \
	--report-url "$url/api/v1/sightings" --report-ca srv.pem --report-interval 1
gateway_pid=$last_pid
dev=$(echo "$line" | sed -n 's|.*devices on https://\([^,]*\),.*|\1|p')
adm=${line##*admin on http://}

"$devid" vendor publish --token "$VT" B1 >/dev/null || fail "publish B1"
api_as "$A1" POST /api/v1/connectors \
	"{\"name\":\"GW\",\"type\":\"webhook\",\"mode\":\"auto\",\"config\":{\"url\":\"http://$adm/devid/events\",\"secret\":\"$secret\"}}"
[ "$status" = 201 ] || fail "create the connector: $status $(cat body)"
api_as "$A1" PUT /api/v1/clone-policy '{"mode":"quarantine","prefixV4":32,"supersededGrace":0}'
[ "$status" = 200 ] || fail "the clone policy: $status $(cat body)"
"$devid" claim --token "$A1" "$(cat B1/claim.txt)" >/dev/null || fail "claim B1"

device() { # UDID FROM [CERT]: $status of GET / on the device port from address FROM
	status=$(curl -sS -o dbody -w '%{http_code}' --interface "$2" --cert "${3:-B1/chips/$1.pem}" \
		--key "B1/chips/$1.key" --cacert gw.pem "https://$dev/" 2>/dev/null)
}

# wait_until WHAT COMMAND...: polls COMMAND (up to 30 s) until it succeeds
wait_until() {
	what=$1
	shift
	i=0
	until "$@"; do
		i=$((i + 1))
		[ $i -lt 300 ] || {
			tail -5 serve.log >&2
			tail -5 gateway.log >&2
			fail "$what"
		}
		sleep 0.1
	done
}
admitted() { device "$1" "$2" ${3:+"$3"} && [ "$status" = 200 ]; }
refused() { device "$1" "$2" && [ "$status" = 403 ]; }
wait_until "the claimed reel never reached the gateway" admitted "$chip" 127.0.0.2
note "ok the claim's push reached the gateway"

# --- a device that moves: .4, .5, .6, never back ----------------------------------------------
for from in 127.0.0.4 127.0.0.4 127.0.0.5 127.0.0.5 127.0.0.6 127.0.0.6; do
	device "$mover" "$from"
	[ "$status" = 200 ] || fail "the mover from $from: $status"
	sleep 0.3
done

# --- the chip and its clone: one key, two processes, 127.0.0.2 and 127.0.0.3 ----------------
# each side keeps connecting until the gateway refuses it (the quarantine's removal)
clone_side() { # FROM OUTFILE
	n=0
	while [ $n -lt 100 ]; do
		device "$chip" "$1"
		echo "$status" >>"$2"
		[ "$status" != 403 ] || break
		n=$((n + 1))
		sleep 0.2
	done
}
clone_side 127.0.0.2 genuine.txt &
side1=$!
clone_side 127.0.0.3 clone.txt &
side2=$!
wait "$side1" "$side2"
grep -q 403 genuine.txt && grep -q 403 clone.txt ||
	fail "the gateway admitted the chip and its clone to the end: $(tail -3 genuine.txt) / $(tail -3 clone.txt)"
api_as "$A1" GET "/api/v1/devices/$chip"
grep -q '"state":"revoked"' body && grep -q '"revokeReason":"keyCompromise"' body &&
	grep -q '"rule":"concurrent-origins"' body && grep -q '127.0.0.2/32' body &&
	grep -q '127.0.0.3/32' body || fail "the clone's device: $(cat body)"
note "ok the chip and its clone are flagged, quarantined, and refused by the gateway after $(grep -c 200 genuine.txt) + $(grep -c 200 clone.txt) admissions"
wait_until "the gateway did not log devid's notice" \
	grep -q "gateway clone suspicion.*$chip" gateway.log
grep "gateway clone suspicion.*$chip" gateway.log | grep -q 'rule=concurrent-origins' ||
	fail "the notice's log line: $(grep 'clone suspicion' gateway.log)"

# the mover: all its sightings are in (the clone's came later), and it is neither flagged nor refused
api_as "$A1" GET "/api/v1/devices/$mover"
grep -q '"suspectedClone":false' body && grep -q '"state":"active"' body ||
	fail "the device that moved was flagged: $(cat body)"
admitted "$mover" 127.0.0.7 || fail "the device that moved is refused: $status"
note "ok a device that changed its address three times is not flagged"

# --- a superseded LDevID shown at the gateway --------------------------------------------------
api_as "$A1" PUT /api/v1/clone-policy '{"mode":"flag","prefixV4":32,"supersededGrace":0}'
key="file:$tmp/B1/chips/$renewer.key"
"$agent" enroll --key "$key" --cert "B1/chips/$renewer.pem" --est "https://$est" --ca srv.pem \
	--out l1.pem >agent.out 2>&1 || fail "enroll: $(cat agent.out)"
"$agent" renew --force --key "$key" --cert l1.pem --est "https://$est" --ca srv.pem \
	--out l2.pem >agent.out 2>&1 || fail "renew: $(cat agent.out)"
sleep 1
admitted "$renewer" 127.0.0.2 l2.pem || fail "the current LDevID is refused: $status"
admitted "$renewer" 127.0.0.2 l1.pem || fail "the superseded LDevID is refused: $status"
flagged() {
	api_as "$A1" GET "/api/v1/devices/$renewer"
	grep -q '"rule":"superseded-certificate"' body
}
wait_until "the superseded LDevID was not flagged" flagged
grep -q "\"certificate\":\"$(openssl x509 -in l1.pem -outform DER | openssl dgst -sha256 | awk '{ print $NF }')\"" body ||
	fail "the suspicion does not name l1: $(cat body)"
note "ok an LDevID used at the gateway after its renewal is flagged"

kill -TERM "$gateway_pid" "$serve_pid"
for p in "$gateway_pid" "$serve_pid"; do
	wait "$p" || fail "a server did not stop cleanly (pid $p)"
done
pids=""
if grep -Eq 'ERROR: [A-Za-z]+Sanitizer|runtime error:' gateway.log serve.log; then
	fail "sanitizer report: $(grep -h -A20 'Sanitizer\|runtime error' gateway.log serve.log | head -40)"
fi
note "ok: clone detection from the gateway's reports to its refusal"
