#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# devid gateway end to end, with curl, openssl s_client and the openssl CLI as the devices and
# as devid's webhook: a vendor PKI and chips from `devid vendor`, the gateway's TLS
# certificate from openssl, events signed with `openssl dgst -hmac`. Covers: the admin port's
# signature (wrong, missing, bearer instead of HMAC: 401 and nothing changes), the event id
# header, events applied once, the 1,000-device and body caps; the device port admitting a
# device on the ACL (curl and s_client), refusing one not on it (403, connection closed,
# logged), refusing at the handshake a forged copy (same subject, other key), a chip of
# another vendor, a genuine certificate with another chip's key and no certificate; remove,
# another tenant's remove, GET /devid/acl; the ACL across a restart; the secret kept out of
# logs and of the process list; a clean stop (exit 0, no sanitizer report). With --ldevid-ca,
# certificates of that CA (directly or through an intermediate) name the device by subject:
# admitted for its tenant, refused for another tenant, a CN that is not one UDID, no O, a
# removed UDID, also on a resumed TLS session; a --trust CA's certificate is still known by
# its key; a leaf refused as an --ldevid-ca.
# Usage: gateway.sh DEVID
me=gateway
. "$(dirname "$0")/../integration/lib.sh"
devid=${1:-}
need_devid "$devid"
need_tool curl curl
need_tool openssl openssl
make_tmp
gw_pid=""
trap '[ -z "$gw_pid" ] || kill "$gw_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd $tmp"

secret='gateway-test-secret-0123456789'

# --- set-up: two vendors, chips, the gateway's TLS certificate ------------------------------

run "$devid" vendor init --dir v --vendor ACME
[ "$rc" -eq 0 ] || fail_run "vendor init"
run "$devid" vendor mint --dir v --batch B1 --count 4 --out B1 --keep-keys 3 --quiet
[ "$rc" -eq 0 ] || fail_run "vendor mint"
run "$devid" vendor init --dir v2 --vendor OTHER
[ "$rc" -eq 0 ] || fail_run "vendor init OTHER"
run "$devid" vendor mint --dir v2 --batch X1 --count 1 --out X1 --keep-keys 1 --quiet
[ "$rc" -eq 0 ] || fail_run "vendor mint OTHER"
set -- $(cd B1/chips && ls ./*.pem | sed 's|^\./||; s|\.pem$||')
[ $# -eq 3 ] || fail "expected 3 chips with keys, found $#"
u1=$1 u2=$2 u3=$3
ux=$(cd X1/chips && ls ./*.pem | sed 's|^\./||; s|\.pem$||')
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout gw.key \
    -out gw.pem -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
    -days 2 2>/dev/null || fail "openssl req (gateway certificate)"
printf '%s\n' "$secret" >secret
chmod 600 secret

# --- helpers --------------------------------------------------------------------------------

# start_gateway NAME SECRET-ARGS...: a gateway on free ports over gw.db; sets $dev, $adm, $gw_pid
start_gateway() {
	name=$1
	shift
	"$devid" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --tls-cert gw.pem \
	    --tls-key gw.key --trust v/root.pem --trust v/issuing.pem --db gw.db --threads 2 \
	    "$@" >"$name.out" 2>"$name.log" &
	gw_pid=$!
	i=0
	while ! grep -q 'admin on http://' "$name.out" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || { cat "$name.log" >&2; fail "$name did not start"; }
		kill -0 "$gw_pid" 2>/dev/null || { cat "$name.log" >&2; fail "$name exited"; }
		sleep 0.1
	done
	dev=$(sed -n 's|^devid gateway: devices on https://\([^,]*\), admin on http://.*|\1|p' "$name.out")
	adm=$(sed -n 's|^devid gateway: devices on https://[^,]*, admin on http://||p' "$name.out")
	[ -n "$dev" ] && [ -n "$adm" ] || fail "cannot read the ports from: $(cat "$name.out")"
	log=$name.log
}

# stop_gateway: SIGTERM; the gateway must exit 0 with no sanitizer report (leaks included)
stop_gateway() {
	kill -TERM "$gw_pid"
	wait "$gw_pid"
	st=$?
	gw_pid=""
	if grep -Eq 'ERROR: [A-Za-z]+Sanitizer|runtime error:' "$log"; then
		sed -n '/Sanitizer\|runtime error/,+40p' "$log" >&2
		fail "sanitizer report from the gateway ($log)"
	fi
	[ $st -eq 0 ] || { tail -20 "$log" >&2; fail "the gateway exited $st after SIGTERM"; }
}

hmac() { # hmac SECRET FILE: hex HMAC-SHA256
	openssl dgst -sha256 -hmac "$1" <"$2" | awk '{ print $NF }'
}

# push FILE EVENT-HEADER [SECRET]: a signed POST /devid/events; $status and body
push() {
	status=$(curl -sS -o body -w '%{http_code}' -H "X-Devid-Event: $2" \
	    -H "X-Devid-Signature: sha256=$(hmac "${3:-$secret}" "$1")" \
	    -H 'Content-Type: application/json' --data-binary "@$1" "http://$adm/devid/events")
}

# acl_get: the signed GET /devid/acl (HMAC of the empty body) into acl.json; $status
acl_get() {
	: >empty
	status=$(curl -sS -o acl.json -w '%{http_code}' \
	    -H "X-Devid-Signature: sha256=$(hmac "$secret" empty)" "http://$adm/devid/acl")
}

expect() { # expect STATUS WHAT [FILE]
	[ "$status" = "$1" ] || check_failed "$2: expected HTTP $1, got $status: $(head -c 300 "${3:-body}" 2>/dev/null)"
}

serial_of() {
	openssl x509 -in "B1/chips/$1.pem" -noout -subject -nameopt RFC2253 |
	    sed -n 's/.*serialNumber=\([^,]*\).*/\1/p'
}

# mkbody FILE EVENT ACTION TENANT UDID...: an event body as devid's webhook sends it
mkbody() {
	f=$1 ev=$2 act=$3 ten=$4
	shift 4
	{
		printf '{"event":"%s","action":"%s","tenant":"%s","devices":[' "$ev" "$act" "$ten"
		sep=
		for u in "$@"; do
			printf '%s{"udid":"%s","serial":"%s","batch":"B1","certificate":"%s"}' \
			    "$sep" "$u" "$(serial_of "$u")" \
			    "$(awk '{ printf "%s\\n", $0 }' "B1/chips/$u.pem")"
			sep=,
		done
		printf ']}'
	} >"$f"
}

# device CERT KEY: GET / on the device port; $status (000: no HTTP answer), $crc, headers, body
device() {
	status=$(curl -sS -o body -D headers -w '%{http_code}' --cert "$1" --key "$2" \
	    --cacert gw.pem "https://$dev/hello" 2>curl.err)
	crc=$?
}

admitted() { # admitted UDID WHAT
	device "B1/chips/$1.pem" "B1/chips/$1.key"
	[ "$status" = 200 ] && grep -q "\"udid\":\"$1\",\"status\":\"admitted\"" body &&
	    grep -q "welcome, device $1" body ||
	    check_failed "$2: expected the 200 greeting of $1, got $status: $(head -c 300 body) $(cat curl.err)"
}

refused() { # refused UDID REASON WHAT: 403, connection closed, reason logged
	device "B1/chips/$1.pem" "B1/chips/$1.key"
	[ "$status" = 403 ] || check_failed "$3: expected 403, got $status: $(head -c 300 body)"
	grep -qi '^connection: close' headers || check_failed "$3: the 403 does not close the connection"
	grep -q "msg=\"gateway device refused\" request_id=[0-9a-f]* reason=$2 udid=$1 " "$log" ||
	    check_failed "$3: no log line with reason=$2 udid=$1"
}

handshake_fails() { # handshake_fails CERT KEY WHAT: no HTTP answer at all
	device "$1" "$2"
	[ "$crc" -ne 0 ] && [ "$status" = 000 ] ||
	    check_failed "$3: expected the TLS handshake to fail, got curl $crc HTTP $status: $(head -c 200 body)"
}

# --- the command line -----------------------------------------------------------------------

run "$devid" gateway --help
[ "$rc" -eq 0 ] && grep -q '^usage: devid gateway' "$tmp/out" || check_failed_run "--help"
run "$devid" gateway --tls-cert gw.pem --tls-key gw.key --db x.db --secret "$secret"
[ "$rc" -eq 2 ] && grep -q 'required' "$tmp/err" || check_failed_run "no --trust is a usage error"
run "$devid" gateway --tls-cert gw.pem --tls-key gw.key --trust v/root.pem --db x.db --secret short
[ "$rc" -eq 2 ] && grep -q '16 to 1024 bytes' "$tmp/err" || check_failed_run "a short secret is refused"
run "$devid" gateway --tls-cert gw.pem --tls-key gw.key --trust "B1/chips/$u1.pem" --db x.db \
    --secret "$secret" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0
[ "$rc" -eq 1 ] && grep -q 'not a CA' "$tmp/err" || check_failed_run "a leaf as a trust anchor is refused"

# --- the admin port -------------------------------------------------------------------------

start_gateway gw1 --secret-file secret

acl_get
expect 200 "GET /devid/acl" acl.json
grep -q '^{"devices":\[\]}$' acl.json || check_failed "a new ACL is empty: $(cat acl.json)"
status=$(curl -sS -o body -w '%{http_code}' "http://$adm/devid/acl")
expect 401 "GET /devid/acl without a signature"
status=$(curl -sS -o body -w '%{http_code}' -H "Authorization: Bearer $secret" "http://$adm/devid/acl")
expect 401 "GET /devid/acl with the secret as a bearer token (the secret never travels)"

mkbody e1.json e1 add OEM1 "$u1" "$u2"
push e1.json e1 'not-the-secret-0123456789'
expect 401 "an event signed with another secret"
grep -q '"error":"unauthorized"' body || check_failed "401 body: $(cat body)"
status=$(curl -sS -o body -w '%{http_code}' -H 'X-Devid-Event: e1' --data-binary @e1.json \
    "http://$adm/devid/events")
expect 401 "an event without a signature"
# the signature of another body
mkbody e1b.json e1 add OEM1 "$u1"
status=$(curl -sS -o body -w '%{http_code}' -H 'X-Devid-Event: e1' \
    -H "X-Devid-Signature: sha256=$(hmac "$secret" e1b.json)" --data-binary @e1.json \
    "http://$adm/devid/events")
expect 401 "an event with the signature of another body"
grep -q 'reason=bad_signature method=POST' "$log" || check_failed "bad signatures are not logged"
push e1.json e9
expect 400 "X-Devid-Event differing from the body's event"
acl_get
grep -q '^{"devices":\[\]}$' acl.json || check_failed "refused events changed the ACL: $(cat acl.json)"
admitted_none=$(cat acl.json)

push e1.json e1
expect 200 "event e1 (add two)"
grep -q '"event":"e1","duplicate":false,"action":"add","tenant":"OEM1","devices":2,"changed":2' body ||
    check_failed "e1 answer: $(cat body)"
push e1.json e1
expect 200 "event e1 again"
grep -q '^{"event":"e1","duplicate":true}$' body || check_failed "a repeated event: $(cat body)"
[ "$(grep -c 'msg="gateway event applied" request_id=[0-9a-f]* event=e1 ' "$log")" -eq 1 ] ||
    check_failed "e1 was applied more than once"

# over the device cap (1,001 devices) and over the body cap (8 MiB)
{
	printf '{"event":"big","action":"add","tenant":"OEM1","devices":[{}'
	i=1
	while [ $i -le 1000 ]; do printf ',{}'; i=$((i + 1)); done
	printf ']}'
} >big.json
push big.json big
expect 400 "1,001 devices in one event"
grep -q 'allowed 1 to 1000' body || check_failed "the device cap's message: $(cat body)"
head -c 8388609 /dev/zero | tr '\0' ' ' >huge.json
push huge.json huge
expect 413 "a body over 8 MiB"

# --- the device port ------------------------------------------------------------------------

admitted "$u1" "a genuine device on the ACL (curl)"
grep -q "msg=\"gateway device admitted\" request_id=[0-9a-f]* udid=$u1 " "$log" || check_failed "the admission is not logged"
admitted "$u2" "the second device of e1"
printf 'GET /s HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n' |
    timeout 20 openssl s_client -connect "$dev" -cert "B1/chips/$u1.pem" \
	-key "B1/chips/$u1.key" -CAfile gw.pem -verify_return_error -quiet >sc.out 2>sc.err
grep -q '^HTTP/1.1 200' sc.out && grep -q "\"udid\":\"$u1\"" sc.out ||
    check_failed "s_client as $u1: $(head -c 300 sc.out) $(tail -3 sc.err)"

refused "$u3" not_on_acl "a genuine device not on the ACL"
# a keep-alive request: the server closes after the 403 (timeout would say 124 otherwise)
printf 'GET / HTTP/1.1\r\nHost: gw\r\n\r\n' |
    timeout 20 openssl s_client -connect "$dev" -cert "B1/chips/$u3.pem" \
	-key "B1/chips/$u3.key" -CAfile gw.pem -quiet >sc.out 2>sc.err
st=$?
grep -q '^HTTP/1.1 403' sc.out && [ $st -ne 124 ] ||
    check_failed "s_client as $u3: exit $st, $(head -c 300 sc.out)"

# forged: a self-signed copy of u1's identity (same subject, another key)
subj=$(openssl x509 -in "B1/chips/$u1.pem" -noout -subject -nameopt compat | sed 's/^subject=//')
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout forged.key \
    -out forged.pem -subj "$subj" -days 30 2>/dev/null || fail "openssl req (forged copy)"
[ "$(openssl x509 -in forged.pem -noout -subject)" = \
    "$(openssl x509 -in "B1/chips/$u1.pem" -noout -subject)" ] ||
    fail "the forged copy does not have the genuine subject"
handshake_fails forged.pem forged.key "a forged copy of a device on the ACL"
grep -q 'msg="http client certificate rejected" .* depth=0 reason=self-signed_certificate' "$log" ||
    check_failed "the forged copy's refusal is not logged"
handshake_fails "X1/chips/$ux.pem" "X1/chips/$ux.key" "a chip of another vendor"
grep -q 'msg="http client certificate rejected" .* reason=unable_to_get_local_issuer_certificate' "$log" ||
    check_failed "the other vendor's refusal is not logged"
# a genuine certificate with another chip's key: curl will not even send it ...
handshake_fails "B1/chips/$u1.pem" "B1/chips/$u2.key" "u1's certificate with u2's key"
# ... so make a key file holding u1's public key and u2's private scalar: the client's
# CertificateVerify is signed with the wrong key and the gateway must refuse it
openssl ec -in "B1/chips/$u2.key" -outform DER -out k2.der 2>/dev/null
openssl x509 -in "B1/chips/$u1.pem" -noout -pubkey | openssl pkey -pubin -outform DER -out p1.der
if [ "$(wc -c <k2.der)" -eq 121 ] && [ "$(wc -c <p1.der)" -eq 91 ]; then
	{ head -c 56 k2.der; tail -c 65 p1.der; } >mixed.der
	openssl ec -inform DER -in mixed.der -out mixed.key 2>/dev/null || fail "openssl ec (mixed key)"
	handshake_fails "B1/chips/$u1.pem" mixed.key "u1's certificate, signing with u2's key"
	grep -q 'msg="http tls refused" .* alert=decrypt_error' "$log" ||
	    check_failed "the bad CertificateVerify is not logged"
else
	check_failed "unexpected DER key sizes: $(wc -c <k2.der) and $(wc -c <p1.der)"
fi
status=$(curl -sS -o body -w '%{http_code}' --cacert gw.pem "https://$dev/hello" 2>curl.err)
[ "$status" = 000 ] || check_failed "no client certificate: expected a failed handshake, got $status"

# --- remove, another tenant's remove, the ACL ----------------------------------------------

mkbody e2.json e2 remove OEM1 "$u1"
push e2.json e2
expect 200 "event e2 (remove u1)"
grep -q '"changed":1,"skipped":0' body || check_failed "e2 answer: $(cat body)"
refused "$u1" removed "a removed device"
mkbody e3.json e3 remove OEM2 "$u2"
push e3.json e3
expect 200 "event e3 (another tenant removes u2)"
grep -q '"changed":0,"skipped":1' body || check_failed "e3 answer: $(cat body)"
admitted "$u2" "a device another tenant tried to remove"

acl_get
expect 200 "GET /devid/acl" acl.json
for u in "$u1" "$u2"; do
	grep -q "{\"udid\":\"$u\",\"serial\":\"$(serial_of "$u")\",\"batch\":\"B1\",\"tenant\":\"OEM1\"" acl.json ||
	    check_failed "$u in the ACL: $(cat acl.json)"
done
grep -q "\"udid\":\"$u1\",[^}]*\"state\":\"removed\"}" acl.json || check_failed "u1 removed: $(cat acl.json)"
grep -q "\"udid\":\"$u2\",[^}]*\"state\":\"active\"}" acl.json || check_failed "u2 active: $(cat acl.json)"
grep -q "$u3" acl.json && check_failed "u3 is in the ACL"
cp acl.json acl-before.json

grep -qF "$secret" "$log" gw1.out && check_failed "the secret is in the gateway's output"
stop_gateway

# --- restart: the ACL is in SQLite; the secret given on the command line --------------------

start_gateway gw2 --secret "$secret"
if [ -r "/proc/$gw_pid/cmdline" ]; then
	tr '\0' ' ' <"/proc/$gw_pid/cmdline" | grep -qF "$secret" &&
	    check_failed "--secret is still readable in /proc/PID/cmdline"
fi
acl_get
cmp -s acl.json acl-before.json || check_failed "the ACL changed across a restart: $(cat acl.json)"
[ "$(cat acl.json)" != "$admitted_none" ] || check_failed "the ACL is empty after a restart"
admitted "$u2" "a device on the ACL after a restart"
refused "$u1" removed "a removed device after a restart"
push e1.json e1
grep -q '^{"event":"e1","duplicate":true}$' body || check_failed "e1 after a restart: $(cat body)"
refused "$u1" removed "a repeated add after a restart does not re-admit"
grep -qF "$secret" "$log" gw2.out && check_failed "the secret is in the gateway's output"
stop_gateway

# --- --ldevid-ca: a CA's certificates name their device by subject (chips; TPMs: tpm-gateway) --

# ca NAME [ISSUER]: a CA of the test's own, NAME.pem and NAME.key, self-signed or by ISSUER
ca() {
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
	    -subj "/CN=$1/O=TEST" -out "$1.csr" 2>/dev/null || fail "CA $1 request"
	printf '%s\n' 'basicConstraints=critical,CA:TRUE' 'keyUsage=critical,keyCertSign,cRLSign' \
	    'subjectKeyIdentifier=hash' 'authorityKeyIdentifier=keyid:always' >ca.ext
	if [ -n "${2:-}" ]; then
		openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -set_serial 7 -days 2 \
		    -extfile ca.ext -out "$1.pem" 2>/dev/null || fail "CA $1"
	else
		openssl x509 -req -in "$1.csr" -signkey "$1.key" -days 2 -extfile ca.ext \
		    -out "$1.pem" 2>/dev/null || fail "CA $1"
	fi
}
# ldevid OUT CA SUBJECT: a certificate by CA for chip u2's key
ldevid() {
	printf '%s\n' 'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature' \
	    'extendedKeyUsage=clientAuth' 'subjectKeyIdentifier=hash' \
	    'authorityKeyIdentifier=keyid:always' >leaf.ext
	openssl pkey -in "B1/chips/$u2.key" -pubout -out u2-pub.pem 2>/dev/null || fail "u2's key"
	openssl req -new -key "B1/chips/$u3.key" -subj "$3" 2>/dev/null |
	    openssl x509 -req -CA "$2.pem" -CAkey "$2.key" -force_pubkey u2-pub.pem -days 1 \
		-set_serial "0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" -extfile leaf.ext \
		-out "$1" 2>/dev/null || fail "certificate $1"
}
# by_subject CERT STATUS REASON WHAT: u2's key with CERT; REASON (or "admitted") logged by LDevID
by_subject() {
	device "$1" "B1/chips/$u2.key"
	[ "$status" = "$2" ] || check_failed "$4: expected $2, got $status: $(head -c 300 body)"
	if [ "$3" = admitted ]; then
		tail -n 3 "$log" | grep -q 'msg="gateway device admitted" .*identity=ldevid' ||
		    check_failed "$4: not admitted by LDevID: $(tail -n 3 "$log")"
	else
		tail -n 3 "$log" | grep -q "msg=\"gateway device refused\" .*reason=$3 .*identity=ldevid" ||
		    check_failed "$4: no reason=$3 by LDevID: $(tail -n 3 "$log")"
	fi
}
ca opca
ca opsub opca
ca other
run "$devid" gateway --tls-cert gw.pem --tls-key gw.key --ldevid-ca "B1/chips/$u1.pem" \
    --db x.db --secret "$secret" --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0
[ "$rc" -eq 1 ] && grep -q 'ldevid-ca: .*not a CA' "$tmp/err" ||
    check_failed_run "a leaf as an --ldevid-ca is refused"
# the ACL: u1 removed, u2 active, both OEM1's; u3 absent
start_gateway gw3 --secret "$secret" --ldevid-ca opca.pem --trust other.pem
ldevid l-u2.pem opca "/CN=$u2/O=OEM1"
by_subject l-u2.pem 200 admitted "an --ldevid-ca's certificate of u2"
ldevid l-u1.pem opca "/CN=$u1/O=OEM1"
by_subject l-u1.pem 403 removed "u2's key named u1 (removed) by an --ldevid-ca"
ldevid l-oem2.pem opca "/CN=$u2/O=OEM2"
by_subject l-oem2.pem 403 ldevid_other_tenant "an --ldevid-ca's certificate naming another tenant"
ldevid l-name.pem opca "/CN=device-2/O=OEM1"
by_subject l-name.pem 403 ldevid_cn_not_udid "a CN that is not a UDID"
ldevid l-two.pem opca "/CN=$u2/CN=$u2/O=OEM1"
by_subject l-two.pem 403 ldevid_cn_not_udid "two CNs"
ldevid l-noorg.pem opca "/CN=$u2"
by_subject l-noorg.pem 403 ldevid_no_tenant "no O"
ldevid l-sub.pem opsub "/CN=$u2/O=OEM1"
cat l-sub.pem opsub.pem >l-sub-chain.pem
by_subject l-sub-chain.pem 200 admitted "through an intermediate below an --ldevid-ca"
# a resumed session keeps no verified chain: the leaf is verified again against the
# --ldevid-ca certificates and still named by its subject (by its key it would be u2, admitted)
resumed() { # CERT NAME REASON S_CLIENT-ARG: s_client as CERT with u2's key; 403 for REASON
	printf 'GET / HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n' |
	    timeout 20 openssl s_client -connect "$dev" -cert "$1" -key "B1/chips/$u2.key" \
		-CAfile gw.pem -verify_return_error -ign_eof "$4" "$2.sess" >sc.out 2>sc.err
	grep -q 'HTTP/1.1 403' sc.out &&
	    tail -n 3 "$log" | grep -q "msg=\"gateway device refused\" .*reason=$3 .*identity=ldevid" ||
	    check_failed "$1 ($4): expected 403 for $3: $(grep HTTP sc.out) $(tail -n 3 sc.err) $(tail -n 3 "$log")"
}
resumed l-oem2.pem oem2 ldevid_other_tenant -sess_out
resumed l-oem2.pem oem2 ldevid_other_tenant -sess_in
grep -q '^Reused, ' sc.out || check_failed "the session of l-oem2.pem was not resumed"
resumed l-u1.pem u1 removed -sess_out
resumed l-u1.pem u1 removed -sess_in
grep -q '^Reused, ' sc.out || check_failed "the session of l-u1.pem was not resumed"
# a CA in --trust only: the subject counts for nothing, the key names the device
ldevid t-u1.pem other "/CN=$u1/O=OEM1"
device t-u1.pem "B1/chips/$u2.key"
[ "$status" = 200 ] && grep -q "\"udid\":\"$u2\"" body ||
    check_failed "a --trust CA's certificate naming u1 with u2's key: $status $(head -c 300 body)"
tail -n 3 "$log" | grep -q "msg=\"gateway device admitted\" .*udid=$u2 .*identity=key" ||
    check_failed "a --trust CA's certificate is not known by its key: $(tail -n 3 "$log")"
stop_gateway

finish "admission by ACL, refusals at and after the handshake, signed events applied once, restart, --ldevid-ca"
