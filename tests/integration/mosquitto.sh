#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The mosquitto connector against a real Mosquitto 2 broker on 127.0.0.1 (issue 11): the
# broker runs the dynamic-security plugin with two listeners, an admin listener (TLS, password
# login: devid's connector and this test's observer) and a device listener (TLS,
# require_certificate, use_identity_as_username: the birth certificate's CN, the UDID, is the
# MQTT username; cafile = the vendor's root and issuing CA). Default ACLs deny publishing; the
# role "device" allows devices/#. (Mosquitto 2.0's dynsec does not expand %u in ACL topics, so
# a role cannot say "devices/<own username>/#"; docs/connectors.md says so.)
#
# A claim makes the clients; a claimed device publishes and an observer sees it; an unclaimed
# device and a forged copy cannot; revoke deletes the client, the broker disconnects the
# device and its next publish goes nowhere; the admin password is nowhere in the database or
# the log; a broker that is down during a claim gets the clients once it is back.
# Usage: mosquitto.sh DEVID
me=mosquitto
. "$(dirname "$0")/lib.sh"
devid=${1:-}
need_devid "$devid"
need_tool mosquitto mosquitto
need_tool mosquitto_pub mosquitto-clients
need_tool mosquitto_sub mosquitto-clients
need_tool mosquitto_ctrl mosquitto-clients
need_tool curl curl
need_tool openssl openssl
plugin=""
for p in /usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so \
    /usr/lib/*/mosquitto_dynamic_security.so /usr/lib/mosquitto_dynamic_security.so; do
	[ -f "$p" ] && { plugin=$p; break; }
done
[ -n "$plugin" ] || skip "mosquitto_dynamic_security.so not found (Debian package mosquitto)"
make_tmp
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd"
export DEVID_DB="sqlite:$tmp/devid.db"
adminpw="dynsec-admin-$(openssl rand -hex 12)"
watchpw="watcher-$(openssl rand -hex 8)"

wait_for() { # FILE PATTERN WHAT
	i=0
	until grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 150 ] || fail "$3 did not start: $(tail -n 5 "$1" 2>/dev/null)"
		sleep 0.1
	done
}

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ----- PKI: a broker CA and the broker's certificate (openssl CLI, nothing of devid) -----
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=Test Broker CA" -keyout bca.key -out bca.pem >/dev/null 2>&1 || fail "broker CA"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
    -keyout broker.key -out broker.csr >/dev/null 2>&1 || fail "broker CSR"
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >broker.ext
openssl x509 -req -in broker.csr -CA bca.pem -CAkey bca.key -CAcreateserial -days 2 \
    -extfile broker.ext -out broker.pem >/dev/null 2>&1 || fail "broker certificate"

# ----- devid: a vendor with two reels, an OEM, a server with a secrets key -----
"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "vendor init"
"$devid" vendor mint --dir v --batch B1 --count 4 --out B1 --keep-keys 4 --quiet >/dev/null || fail "mint B1"
"$devid" vendor mint --dir v --batch B2 --count 3 --out B2 --keep-keys 1 --quiet >/dev/null || fail "mint B2"
"$devid" admin tenant add ACME --kind vendor >/dev/null || fail "tenant ACME"
"$devid" admin tenant add OEM1 --kind oem >/dev/null || fail "tenant OEM1"
VT=$("$devid" admin token add ACME --role vendor)
A1=$("$devid" admin token add OEM1 --role admin)
"$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem >/dev/null || fail "trust"
"$devid" admin secrets-key init "file:$tmp/secrets.key" >/dev/null || fail "secrets-key init"
"$devid" serve --listen 127.0.0.1:0 --secrets-key "file:$tmp/secrets.key" >serve.out 2>serve.log &
pids="$pids $!"
wait_for serve.out 'listening on' "devid serve"
export DEVID_SERVER="$(sed -n 's/.*listening on //p' serve.out)"
for b in B1 B2; do
	DEVID_TOKEN=$VT "$devid" vendor publish $b >/dev/null || fail "publish $b"
done
udid_of() { ls "$1"/chips/*.key | sed -n "$2p" | xargs basename | sed 's/\.key$//'; }
g1=$(udid_of B1 1)
g2=$(udid_of B1 2)
g3=$(udid_of B1 3)
u1=$(udid_of B2 1)

# ----- the broker -----
cat v/root.pem v/issuing.pem >vendor-chain.pem
admin_port=$(free_port)
dev_port=$(free_port)
[ "$admin_port" != "$dev_port" ] || dev_port=$(free_port)
mosquitto_ctrl dynsec init dynsec.json admin "$adminpw" >/dev/null 2>&1 || fail "dynsec init"
cat >mosquitto.conf <<EOF
# started as root, mosquitto would switch to the user "mosquitto", who cannot read \$tmp
user $(id -un)
per_listener_settings false
allow_anonymous false
persistence false
log_dest file $tmp/broker.log
log_type all
connection_messages true
plugin $plugin
plugin_opt_config_file $tmp/dynsec.json

# admin (devid's connector, this test's observer): TLS, dynsec password login
listener $admin_port 127.0.0.1
certfile $tmp/broker.pem
keyfile $tmp/broker.key

# devices: TLS with their birth certificates; the certificate's CN (the UDID) is the username
listener $dev_port 127.0.0.1
certfile $tmp/broker.pem
keyfile $tmp/broker.key
cafile $tmp/vendor-chain.pem
require_certificate true
use_identity_as_username true
EOF
start_broker() {
	mosquitto -c mosquitto.conf >>broker.out 2>&1 &
	broker_pid=$!
	pids="$pids $broker_pid"
	i=0
	until grep -q "mosquitto version .* running" broker.log 2>/dev/null &&
	    [ "$(grep -c 'running' broker.log)" -ge "${1:-1}" ]; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "mosquitto did not start: $(cat broker.out; tail -n 5 broker.log)"
		sleep 0.1
	done
}
start_broker 1
ctrl() {
	mosquitto_ctrl -h 127.0.0.1 -p "$admin_port" --cafile bca.pem -u admin -P "$adminpw" dynsec "$@" 2>&1
}
# the device role and an observer allowed to read every device topic
ctrl createRole device >/dev/null
ctrl addRoleACL device publishClientSend 'devices/#' allow >/dev/null
ctrl addRoleACL device subscribePattern 'devices/#' allow >/dev/null
ctrl createRole watcher >/dev/null
ctrl addRoleACL watcher subscribePattern 'devices/#' allow >/dev/null
ctrl createClient watcher -p "$watchpw" >/dev/null
ctrl addClientRole watcher watcher >/dev/null
ctrl getDefaultACLAccess | grep -q '^publishClientSend *: deny' ||
	fail "dynsec does not deny publishing by default: $(ctrl getDefaultACLAccess)"
ctrl getRole device | grep -q 'devices/#' || fail "dynsec role device: $(ctrl getRole device)"

has_role() { # UDID: the broker's dynsec has the client, with the device role
	ctrl getClient "$1" | grep -q '^Roles: *device'
}
wait_clients() { # WANT UDID...: until each has (present) or lacks (absent) its client
	want=$1
	shift
	i=0
	while :; do
		ok=1
		for u in "$@"; do
			if has_role "$u"; then [ "$want" = present ] || ok=0; else [ "$want" = absent ] || ok=0; fi
		done
		[ $ok = 1 ] && return 0
		i=$((i + 1))
		[ $i -lt 120 ] || fail "dynsec clients not $want after 60 s: $*; jobs: $(curl -sS -H "Authorization: Bearer $A1" "$DEVID_SERVER/api/v1/jobs")"
		sleep 0.5
	done
}

# watch NAME: an observer on the admin listener subscribed to devices/# for a few seconds
watch() {
	: >"$1.seen"
	mosquitto_sub -h 127.0.0.1 -p "$admin_port" --cafile bca.pem -u watcher -P "$watchpw" \
	    -t 'devices/#' -v -W "${2:-6}" >"$1.seen" 2>"$1.err" &
	watch_pid=$!
	sleep 0.7 # subscribed (mosquitto_sub has no ready signal; the publish comes after this)
}
watch_end() {
	wait "$watch_pid" 2>/dev/null
}
# pub CERT KEY TOPIC MESSAGE: a device publishes at QoS 1; status in $rc
pub() {
	run mosquitto_pub -h 127.0.0.1 -p "$dev_port" --cafile bca.pem --cert "$1" --key "$2" \
	    -q 1 -t "$3" -m "$4"
}

# ----- a connector with a bad config is refused with a reason -----
post_connector() { # NAME CONFIG-JSON: the status in $status, the answer in ./body
	status=$(curl -sS -o body -w '%{http_code}' -H "Authorization: Bearer $A1" -d \
	    "{\"name\":\"$1\",\"type\":\"mosquitto\",\"mode\":\"auto\",\"config\":$2}" \
	    "$DEVID_SERVER/api/v1/connectors")
}
ca_json=$(/usr/bin/python3 -c 'import json,sys; print(json.dumps(open("bca.pem").read()))')
good="\"host\":\"127.0.0.1\",\"ca\":$ca_json,\"username\":\"admin\",\"password\":\"$adminpw\""
for bad in "{$good,\"port\":0,\"role\":\"device\"}:port" \
    "{$good,\"port\":$admin_port,\"role\":\"dev/#\"}:role" \
    "{\"host\":\"127.0.0.1\",\"port\":1,\"ca\":\"not a pem\",\"username\":\"a\",\"password\":\"b\",\"role\":\"r\"}:ca" \
    "{\"host\":\"127.0.0.1\",\"port\":1,\"username\":\"a\",\"role\":\"r\"}:password"; do
	post_connector BAD "${bad%:*}"
	[ "$status" = 400 ] && grep -q "${bad##*:}" body || fail "bad config (${bad##*:}) got $status $(cat body)"
done
note "ok bad configs refused, naming the field (port, role, ca, password)"

post_connector MQ "{$good,\"port\":$admin_port,\"role\":\"device\"}"
[ "$status" = 201 ] || fail "connector: $status $(cat body)"
curl -sS -H "Authorization: Bearer $A1" "$DEVID_SERVER/api/v1/connectors" >connectors.json
grep -q '"passwordSet": *true' connectors.json && ! grep -q "$adminpw" connectors.json ||
	fail "the API shows the password or hides that it is set: $(cat connectors.json)"

# ----- the connector test: connect as the dynsec admin and listClients -----
conn_test() { # NAME PYTHON-EXPR WHAT: POST .../NAME/test answers 200 and j satisfies the expression
	status=$(curl -sS -o body -w '%{http_code}' -X POST -H "Authorization: Bearer $A1" \
	    "$DEVID_SERVER/api/v1/connectors/$1/test")
	[ "$status" = 200 ] && /usr/bin/python3 -c 'import json,sys; j=json.load(open("body")); sys.exit(0 if eval(sys.argv[1]) else 1)' "$2" ||
		fail "$3: $status $(cat body)"
}
conn_test MQ 'j["ok"] is True and j["message"].startswith("listClients: ")' "test MQ"
post_connector WRONGPW "{\"host\":\"127.0.0.1\",\"ca\":$ca_json,\"username\":\"admin\",\"password\":\"not-the-admin-password\",\"port\":$admin_port,\"role\":\"device\"}"
[ "$status" = 201 ] || fail "connector WRONGPW: $status $(cat body)"
conn_test WRONGPW 'j["ok"] is False and "refused" in j["message"] and "not-the-admin" not in j["message"]' "test WRONGPW"
status=$(curl -sS -o body -w '%{http_code}' -X DELETE -H "Authorization: Bearer $A1" "$DEVID_SERVER/api/v1/connectors/WRONGPW")
[ "$status" = 200 ] || fail "delete WRONGPW: $status $(cat body)"
note "ok connector test: listClients as the dynsec admin; a wrong password is ok:false with the broker's words"

# ----- claim B1: the connector creates one dynsec client per device, with the role -----
has_role "$g1" && fail "a client exists before the claim"
DEVID_TOKEN=$A1 "$devid" claim "$(cat B1/claim.txt)" >/dev/null || fail "claim B1"
wait_clients present "$g1" "$g2" "$g3" "$(udid_of B1 4)"
has_role "$u1" && fail "a device of the unclaimed batch got a client"
note "ok claim: every device of B1 is a dynsec client with the device role, B2's are not"

# ----- a claimed device publishes with its birth certificate; the observer sees it -----
watch genuine
pub "B1/chips/$g1.pem" "B1/chips/$g1.key" "devices/$g1/t" "hi from $g1"
[ $rc -eq 0 ] || fail_run "a claimed device could not publish"
watch_end
grep -qx "devices/$g1/t hi from $g1" genuine.seen || fail "the observer did not see the claimed device's message: $(cat genuine.seen genuine.err)"
note "ok claimed device connected with its birth certificate and its message was delivered"

# ----- an unclaimed device: the broker accepts its TLS login (its chain is the vendor's) but
# dynsec knows no such client, so the default ACL denies the publish -----
watch unclaimed
pub "B2/chips/$u1.pem" "B2/chips/$u1.key" "devices/$u1/t" "unclaimed"
watch_end
[ ! -s unclaimed.seen ] || fail "an unclaimed device's message was delivered: $(cat unclaimed.seen)"
grep -q "Denied PUBLISH from .*$u1" broker.log ||
	fail "the broker log shows no denied publish from the unclaimed device: $(grep "$u1" broker.log | tail -3)"
note "ok unclaimed device: connected (TLS chain valid) but its publish was denied and not delivered (mosquitto_pub exit $rc)"

# ----- a forged copy: the genuine subject on another key, self-signed -----
subj=$(openssl x509 -in "B1/chips/$g1.pem" -noout -subject -nameopt compat | sed 's/^subject=//')
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj "/$(echo "$subj" | sed 's|, |/|g')" -keyout forged.key -out forged.pem >/dev/null 2>&1 || fail "forge"
watch forged
pub forged.pem forged.key "devices/$g1/t" "forged"
watch_end
[ $rc -ne 0 ] || fail_run "mosquitto_pub with a forged certificate reported success"
[ ! -s forged.seen ] || fail "a forged copy's message was delivered: $(cat forged.seen)"
note "ok forged copy (same subject, other key, self-signed) refused at the TLS handshake"

# ----- revoke: the client is deleted, the connected device is disconnected and refused -----
mosquitto_sub -h 127.0.0.1 -p "$dev_port" --cafile bca.pem --cert "B1/chips/$g2.pem" \
    --key "B1/chips/$g2.key" -t "devices/$g2/#" -v >devsub.out 2>devsub.err &
devsub=$!
pids="$pids $devsub"
sleep 0.7
pub "B1/chips/$g2.pem" "B1/chips/$g2.key" "devices/$g2/cmd" "ping"
i=0
until grep -q "devices/$g2/cmd ping" devsub.out; do
	i=$((i + 1))
	[ $i -lt 50 ] || fail "the device's own subscriber got nothing before the revoke: $(cat devsub.out devsub.err)"
	sleep 0.1
done
DEVID_TOKEN=$A1 "$devid" revoke "$g2" >/dev/null || fail "revoke"
wait_clients absent "$g2"
i=0
while kill -0 "$devsub" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "the revoked device's mosquitto_sub was not disconnected within 10 s"
	sleep 0.1
done
watch revoked
pub "B1/chips/$g2.pem" "B1/chips/$g2.key" "devices/$g2/t" "after revoke"
watch_end
[ ! -s revoked.seen ] || fail "a revoked device's message was delivered: $(cat revoked.seen)"
has_role "$g1" || fail "revoking $g2 removed another device's client"
note "ok revoke: client deleted, the connected device was disconnected, its next publish went nowhere"

# ----- the broker is down during a claim: the clients arrive once it is back -----
kill "$broker_pid"
wait "$broker_pid" 2>/dev/null
conn_test MQ 'j["ok"] is False and "cannot connect" in j["message"]' "test MQ with the broker down"
note "ok connector test with the broker down: ok:false, the connection error"
DEVID_TOKEN=$A1 "$devid" claim "$(cat B2/claim.txt)" >/dev/null || fail "claim B2"
i=0
until curl -sS -H "Authorization: Bearer $A1" "$DEVID_SERVER/api/v1/jobs" | grep -q 'mosquitto: '; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "no failed delivery recorded while the broker was down: $(curl -sS -H "Authorization: Bearer $A1" "$DEVID_SERVER/api/v1/jobs")"
	sleep 0.1
done
start_broker 2
wait_clients present "$u1"
watch back
pub "B2/chips/$u1.pem" "B2/chips/$u1.key" "devices/$u1/t" "back"
watch_end
grep -qx "devices/$u1/t back" back.seen || fail "a B2 device could not publish after the broker came back: $(cat back.seen)"
note "ok broker down during the claim: the clients were created once it was back (outbox retry)"

# ----- the admin password is nowhere at rest or in the log -----
for f in devid.db* serve.log serve.out; do
	[ -f "$f" ] || continue
	! grep -q -a "$adminpw" "$f" || fail "the dynsec admin password is in $f"
done
note "ok the admin password is in neither the database files nor devid's log"
note "all mosquitto checks passed"
