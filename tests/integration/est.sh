#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Operational certificates end to end with the real binaries on 127.0.0.1: a tenant CA whose
# key SoftHSM2 generates (read back sensitive and never extractable by pkcs11-tool), devid
# serve's EST port, and an independent EST client made of curl and the openssl CLI as in
# RFC 7030's examples. A claimed device enrolls (PKCS#7 certs-only, chains to cacerts, the
# CSR's key, devid's profile, 30 days); unclaimed, revoked, over quota, a broken CSR
# signature, no client certificate, a re-enroll changing the subject: 4xx and nothing issued;
# 100 enrollments from 8 parallel clients: 100 serials, 100 issuance records; the CRL lists
# a revoked device's certificate; devid-agent enrolls and renews with a pkcs11: key and
# connects to devid gateway, which trusts only the tenant CA, with its LDevID; the CA is
# rotated: both CAs in ca show and cacerts, the device renews onto the new one, which the
# gateway admits once its trust is reloaded, and each generation signs its own CRL.
# Usage: est.sh DEVID DEVID-AGENT
me=est
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../softhsm.sh"
devid=${1:-}
agent=${2:-}
need_devid "$devid"
[ -x "$agent" ] || fail "$agent: not an executable devid-agent"
need_tool curl curl
need_tool openssl openssl
need_tool pkcs11-tool opensc
need_tool python3 python3
softhsm_available || skip "SoftHSM2 is not installed (Debian package softhsm2)"
make_tmp
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd"
export DEVID_DB="sqlite:$tmp/devid.db"
secret="gateway-secret-0123456789abcdef"
pin=246810

wait_for() { # FILE PATTERN WHAT
	i=0
	until grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 150 ] || fail "$3 did not start: $(cat "$1" "$1.log" 2>/dev/null | tail -5)"
		sleep 0.1
	done
}

sql() { # a number from the database, read with Python's own sqlite3
	python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' \
	    "$tmp/devid.db" "$1"
}

issued() { sql "SELECT COUNT(*) FROM certificates"; }
audited() { sql "SELECT COUNT(*) FROM audit WHERE action LIKE 'est.%'"; }

# est OP CERT KEY CSR.b64 [LABEL]: POST a CSR, the status in $status, the body in resp.b64
est() {
	path=${5:+$5/}$1
	if [ -n "$2" ]; then
		set -- --cert "$2" --key "$3" --data-binary "@$4"
	else
		set -- --data-binary "@$4"
	fi
	status=$(curl -sS --cacert srv.pem -H 'Content-Type: application/pkcs10' \
	    -o resp.b64 -w '%{http_code}' "$@" "https://$est_addr/.well-known/est/$path") ||
		fail "curl $path failed"
}

csr() { # KEY SUBJECT OUT: a base64 PKCS#10 (with line breaks, as base64(1) writes it)
	openssl req -new -key "$1" -subj "$2" -outform DER 2>/dev/null | base64 >"$3" ||
		fail "openssl req"
}

p7_certs() { # B64 OUT.pem: the certificates of a certs-only PKCS#7
	base64 -d <"$1" >resp.p7 && openssl pkcs7 -inform DER -in resp.p7 -print_certs -out "$2" ||
		fail "not a PKCS#7: $(head -c 300 "$1")"
}

refused() { # WHAT WANT-STATUS: the last est() was refused and issued nothing
	[ "$status" = "$2" ] || fail "$1: HTTP $status, want $2: $(cat resp.b64)"
	[ "$(issued)" = "$before" ] || fail "$1: a certificate was issued"
	[ "$(audited)" = "$before_audit" ] || fail "$1: an issuance was audited"
	note "$1: $status $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["error"])' resp.b64)"
}

# --- the vendor, the OEM, the CA in SoftHSM2 ----------------------------------------------
"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "init"
"$devid" vendor mint --dir v --batch B1 --count 120 --out B1 --keep-keys 110 --quiet >/dev/null || fail "mint"
"$devid" vendor mint --dir v --batch B2 --count 2 --out B2 --keep-keys 1 --quiet >/dev/null || fail "mint"
"$devid" admin tenant add ACME --kind vendor >/dev/null
"$devid" admin tenant add OEM1 --kind oem >/dev/null
"$devid" admin tenant add OEM2 --kind oem >/dev/null
VT=$("$devid" admin token add ACME --role vendor)
A1=$("$devid" admin token add OEM1 --role admin)
"$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem >/dev/null
softhsm_setup "$tmp/hsm" devid-ca 13579 "$pin" || fail "SoftHSM2 token"
softhsm2-util --init-token --free --label device --so-pin 13579 --pin "$pin" >/dev/null ||
	fail "SoftHSM2 device token"

run "$devid" admin ca init --tenant OEM1 --pkcs11 "pkcs11:token=devid-ca;object=oem1-ca?pin-value=$pin"
[ $rc -eq 0 ] || fail_run "ca init"
grep -q "$pin" "$tmp/out" "$tmp/err" && fail "ca init printed the PIN"
run "$devid" admin ca init --tenant OEM1 --pkcs11 "pkcs11:token=devid-ca;object=other?pin-value=$pin"
[ $rc -ne 0 ] && grep -q "already" "$tmp/err" || fail_run "a second CA for OEM1"
pkcs11-tool --module "$DEVID_PKCS11_MODULE" --token-label devid-ca --login --pin "$pin" \
    --list-objects --type privkey >objects.txt 2>&1 || fail "pkcs11-tool: $(cat objects.txt)"
grep -q 'label: *oem1-ca' objects.txt || fail "no CA key in the token: $(cat objects.txt)"
grep -q 'Access:.*sensitive' objects.txt && grep -q 'never extractable' objects.txt ||
	fail "the CA key must be sensitive and never extractable: $(cat objects.txt)"
grep -q 'other' objects.txt && fail "the refused second CA left a key in the token"
note "CA key in SoftHSM2: $(grep 'Access:' objects.txt | sed 's/^ *//')"
"$devid" admin ca show --tenant OEM1 >ca-admin.pem || fail "ca show"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout srv.key -out srv.pem >/dev/null 2>&1 || fail "server cert"
"$devid" admin secrets-key init "file:$tmp/secrets.key" >/dev/null || fail "secrets-key init"
"$devid" serve --listen 127.0.0.1:0 --device-listen 127.0.0.1:0 --tls-cert srv.pem \
    --tls-key srv.key --secrets-key "file:$tmp/secrets.key" >serve.out 2>serve.log &
pids="$pids $!"
wait_for serve.out 'EST on' "devid serve"
export DEVID_SERVER="$(sed -n 's/.*listening on //p' serve.out)"
export DEVID_CACERT="$tmp/srv.pem"
est_addr=$(sed -n 's|.*EST on https://\([^/ ]*\).*|\1|p' serve.out)
[ -n "$est_addr" ] || fail "no EST address in: $(cat serve.out)"
grep -q "$pin" serve.out serve.log && fail "devid serve printed the PIN"
for b in B1 B2; do
	"$devid" vendor publish --token "$VT" "$b" >/dev/null || fail "publish $b"
done
"$devid" claim --token "$A1" "$(cat B1/claim.txt)" >/dev/null || fail "claim"

# chips with keys: the first for the single checks, the rest for the parallel run
ls B1/chips/*.pem | sed 's|.*/||; s|\.pem$||' >udids.txt
[ "$(wc -l <udids.txt)" -eq 110 ] || fail "want 110 chips with keys"
c0=$(sed -n 1p udids.txt)
c1=$(sed -n 2p udids.txt)
c2=$(sed -n 3p udids.txt)
loose=$(ls B2/chips/*.pem | sed 's|.*/||; s|\.pem$||')

# --- cacerts and csrattrs ---------------------------------------------------------------
curl -sS --cacert srv.pem -o cacerts.b64 "https://$est_addr/.well-known/est/OEM1/cacerts" || fail "cacerts"
p7_certs cacerts.b64 ca.pem
[ "$(openssl x509 -in ca.pem -noout -fingerprint -sha256)" = \
    "$(openssl x509 -in ca-admin.pem -noout -fingerprint -sha256)" ] ||
	fail "cacerts differs from devid admin ca show"
openssl verify -CAfile ca.pem ca.pem >/dev/null || fail "the CA certificate is not a self-signed anchor"
curl -sS --cacert srv.pem -o attrs.b64 "https://$est_addr/.well-known/est/csrattrs" || fail "csrattrs"
base64 -d <attrs.b64 | openssl asn1parse -inform DER >attrs.txt 2>&1 || fail "csrattrs is not DER"
grep -q 'ecdsa-with-SHA256' attrs.txt || fail "csrattrs: $(cat attrs.txt)"

# --- a claimed device enrolls -------------------------------------------------------------
before=$(issued)
csr "B1/chips/$c0.key" "/CN=whatever the device asks" c0.b64
est simpleenroll "B1/chips/$c0.pem" "B1/chips/$c0.key" c0.b64
[ "$status" = 200 ] || fail "enroll: HTTP $status: $(cat resp.b64)"
p7_certs resp.b64 c0-ldevid.pem
[ "$(grep -c BEGIN c0-ldevid.pem)" = 1 ] || fail "the enrollment answer holds one certificate"
openssl verify -CAfile ca.pem -purpose sslclient c0-ldevid.pem >/dev/null ||
	fail "the LDevID does not chain to cacerts for clientAuth"
[ "$(openssl x509 -in c0-ldevid.pem -noout -pubkey)" = "$(openssl pkey -in "B1/chips/$c0.key" -pubout)" ] ||
	fail "the LDevID does not carry the CSR's key"
subject=$(openssl x509 -in c0-ldevid.pem -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
chipserial=$(openssl x509 -in "B1/chips/$c0.pem" -noout -subject -nameopt RFC2253,sep_multiline | sed -n 's/^ *serialNumber=//p')
case "$subject" in
*"CN=$c0"*) ;;
*) fail "subject $subject: CN is not the UDID" ;;
esac
case "$subject" in *"O=OEM1"*) ;; *) fail "subject $subject: O is not the tenant" ;; esac
[ -n "$chipserial" ] || chipserial=$(sql "SELECT serial FROM devices WHERE udid = '$c0'")
case "$subject" in *"serialNumber=$chipserial"*) ;; *) fail "subject $subject: serialNumber is not $chipserial" ;; esac
openssl x509 -in c0-ldevid.pem -noout -text >c0.txt
grep -q 'CA:FALSE' c0.txt && grep -q 'TLS Web Client Authentication' c0.txt &&
    grep -A1 'Key Usage: critical' c0.txt | grep -q 'Digital Signature' || fail "profile: $(cat c0.txt)"
grep -q 'CRL Distribution Points' c0.txt &&
	fail "without devid serve --public-url an LDevID names no CRL distribution point"
nb=$(date -d "$(openssl x509 -in c0-ldevid.pem -noout -startdate | sed 's/^notBefore=//')" +%s)
na=$(date -d "$(openssl x509 -in c0-ldevid.pem -noout -enddate | sed 's/^notAfter=//')" +%s)
days=$(((na - nb) / 86400))
[ $(((na - nb) % 86400)) = 0 ] || days="$((na - nb)) s"
[ "$days" = 30 ] || fail "validity: $days, want 30 days"
serial_len=$(openssl x509 -in c0-ldevid.pem -noout -serial | sed 's/serial=//' | tr -d '\n' | wc -c)
[ "$serial_len" = 32 ] || fail "serial of $serial_len hex digits, want 16 bytes"
[ "$(issued)" = $((before + 1)) ] && [ "$(sql "SELECT COUNT(*) FROM audit WHERE action = 'est.enroll'")" = 1 ] ||
	fail "one certificate, one audit record"
note "enrolled: $subject, 30 days, chains to cacerts"

# RFC 8951: one line of base64 with a Content-Transfer-Encoding header is as good
c3=$(sed -n 4p udids.txt)
openssl req -new -key "B1/chips/$c3.key" -subj /CN=x -outform DER 2>/dev/null | base64 -w0 >c3.b64
status=$(curl -sS --cacert srv.pem --cert "B1/chips/$c3.pem" --key "B1/chips/$c3.key" \
    -H 'Content-Type: application/pkcs10' -H 'Content-Transfer-Encoding: base64' \
    --data-binary @c3.b64 -o resp.b64 -w '%{http_code}' "https://$est_addr/.well-known/est/OEM1/simpleenroll")
[ "$status" = 200 ] || fail "one-line base64 with Content-Transfer-Encoding: HTTP $status: $(cat resp.b64)"
p7_certs resp.b64 c3-ldevid.pem

# --- refusals: 4xx, nothing issued ---------------------------------------------------------
before=$(issued)
before_audit=$(audited)
csr "B2/chips/$loose.key" /CN=x loose.b64
est simpleenroll "B2/chips/$loose.pem" "B2/chips/$loose.key" loose.b64
refused "unclaimed device" 403
est simpleenroll "" "" c0.b64
refused "no client certificate" 403
head -c 20000 /dev/zero | tr '\0' 'A' >big.b64
est simpleenroll "" "" big.b64
refused "a body over the cap, before any authentication" 413
# a CSR whose signature is broken: the last byte of the DER (inside the signature) flipped
openssl req -new -key "B1/chips/$c1.key" -subj /CN=x -outform DER -out c1.der 2>/dev/null
python3 -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[-1]^=1; open(sys.argv[1],"wb").write(b)' c1.der
base64 <c1.der >c1-broken.b64
est simpleenroll "B1/chips/$c1.pem" "B1/chips/$c1.key" c1-broken.b64
refused "CSR with a broken signature" 400
csr "B1/chips/$c0.key" /CN=someone-else changed.b64
est simplereenroll c0-ldevid.pem "B1/chips/$c0.key" changed.b64
refused "re-enroll changing the subject" 400
est simpleenroll "B1/chips/$c1.pem" "B1/chips/$c1.key" c0.b64
refused "a CSR for another device's key" 400
csr "B1/chips/$c1.key" /CN=x c1.b64
est simpleenroll "B1/chips/$c1.pem" "B1/chips/$c1.key" c1.b64 OEM2
refused "another tenant's label" 403
# one key, one UDID: the device's own key with its point compressed (a valid proof of
# possession) would give a certificate whose UDID is no device's
openssl ec -in "B1/chips/$c1.key" -conv_form compressed -out c1-compressed.key 2>/dev/null ||
	fail "openssl ec -conv_form compressed"
csr c1-compressed.key /CN=x c1-compressed.b64
est simpleenroll "B1/chips/$c1.pem" "B1/chips/$c1.key" c1-compressed.b64
refused "a CSR with the device's key, point compressed" 400
grep -q 'EC point must be uncompressed (RFC 5480 2.2): compressed form 0' resp.b64 ||
	fail "the refusal names the rule: $(cat resp.b64)"
# the vendor's manifest signer is no device (and its EKU is documentSigning, not clientAuth)
csr v/signer.key /CN=x signer.b64
est simpleenroll v/signer.pem v/signer.key signer.b64
refused "the manifest signer's certificate" 403

# re-enroll keeping the subject works (RFC 7030 4.2.2)
openssl req -new -key "B1/chips/$c0.key" -subj "/$(echo "$subject" | python3 -c 'import sys; print("/".join(reversed(sys.stdin.read().strip().split(","))))')" \
    -outform DER 2>/dev/null | base64 >same.b64
est simplereenroll c0-ldevid.pem "B1/chips/$c0.key" same.b64
[ "$status" = 200 ] || fail "re-enroll keeping the subject: HTTP $status: $(cat resp.b64)"
p7_certs resp.b64 c0-renewed.pem
[ "$(openssl x509 -in c0-renewed.pem -noout -subject -nameopt RFC2253)" = "subject=$subject" ] ||
	fail "the renewed certificate changed the subject"

# quota: set it to what is used; a new device is refused, a holder still renews
used=$(sql "SELECT used FROM quotas q JOIN tenants t ON t.id = q.tenant_id WHERE t.name = 'OEM1'")
run "$devid" admin quota set --tenant OEM1 --max "$used"
[ $rc -eq 0 ] || fail_run "quota set"
before=$(issued)
before_audit=$(audited)
est simpleenroll "B1/chips/$c1.pem" "B1/chips/$c1.key" c1.b64
refused "over quota" 403
grep -q quota_exceeded resp.b64 || fail "over quota says so: $(cat resp.b64)"
q=$(curl -sS --cacert srv.pem -H "Authorization: Bearer $A1" "$DEVID_SERVER/api/v1/quota")
case "$q" in *"\"max\":$used"*) ;; *) fail "GET /api/v1/quota: $q" ;; esac
status=$(curl -sS --cacert srv.pem -o put.json -w '%{http_code}' -X PUT -H "Authorization: Bearer $A1" \
    -H 'Content-Type: application/json' --data '{"max":null}' "$DEVID_SERVER/api/v1/quota")
[ "$status" = 200 ] || [ "$status" = 204 ] || fail "PUT /api/v1/quota: $status $(cat put.json)"

# revoked: refused, and its certificates on the CRL
"$devid" revoke --token "$A1" "$c0" >/dev/null || fail "revoke"
est simpleenroll "B1/chips/$c0.pem" "B1/chips/$c0.key" c0.b64
refused "revoked device" 403
est simplereenroll c0-ldevid.pem "B1/chips/$c0.key" same.b64
refused "revoked device re-enrolling" 403
curl -sS --cacert srv.pem -o crl.der -w '%{content_type}\n' "$DEVID_SERVER/api/v1/tenants/OEM1/crl" >crl.type ||
	fail "GET crl"
grep -q 'application/pkix-crl' crl.type || fail "CRL content type: $(cat crl.type)"
openssl crl -inform DER -in crl.der -CAfile ca.pem -noout 2>crl.verify || fail "CRL: $(cat crl.verify)"
grep -q 'verify OK' crl.verify || fail "the CRL does not verify with the CA: $(cat crl.verify)"
openssl crl -inform DER -in crl.der -noout -text >crl.txt
for f in c0-ldevid.pem c0-renewed.pem; do
	sn=$(openssl x509 -in $f -noout -serial | sed 's/serial=//')
	grep -qi "$sn" crl.txt || fail "the CRL does not list $f ($sn)"
done
openssl crl -inform DER -in crl.der -out crl.pem || fail "CRL to PEM"
openssl verify -crl_check -CRLfile crl.pem -CAfile ca.pem c0-ldevid.pem >/dev/null 2>&1 &&
	fail "a revoked LDevID still verifies against the CRL"
note "revoked: enrollment refused, $(grep -c 'Serial Number' crl.txt) certificates on the CRL"

# --- 100 enrollments from 8 parallel clients ------------------------------------------------
before=$(issued)
before_audit=$(audited)
sed -n '11,110p' udids.txt >batch.txt
while read -r u; do
	openssl req -new -key "B1/chips/$u.key" -subj /CN=x -outform DER 2>/dev/null | base64 >"p-$u.b64"
done <batch.txt
export est_addr
xargs -P 8 -I{} sh -c 'curl -sS --cacert srv.pem --cert B1/chips/{}.pem --key B1/chips/{}.key \
    -H "Content-Type: application/pkcs10" --data-binary @p-{}.b64 -o r-{}.b64 -w "%{http_code}\n" \
    "https://$est_addr/.well-known/est/simpleenroll"' <batch.txt >codes.txt
[ "$(grep -c '^200$' codes.txt)" = 100 ] || fail "parallel: $(sort codes.txt | uniq -c)"
while read -r u; do
	base64 -d <"r-$u.b64" | openssl pkcs7 -inform DER -print_certs | openssl x509 -noout -serial
done <batch.txt | sort -u >serials.txt
[ "$(wc -l <serials.txt)" = 100 ] || fail "parallel: $(wc -l <serials.txt) distinct serials, want 100"
[ "$(issued)" = $((before + 100)) ] || fail "parallel: $(($(issued) - before)) certificates stored"
[ "$(audited)" = $((before_audit + 100)) ] || fail "parallel: $(($(audited) - before_audit)) issuance records"
note "100 enrollments from 8 parallel clients: 100 distinct serials, 100 issuance records"
"$devid" admin audit verify OEM1 >/dev/null || fail "the audit chain does not verify"

# --- devid-agent with a pkcs11: key, and the gateway trusting only the tenant CA ----------
softhsm_label=device
softhsm_import_key "B1/chips/$c2.key" chip "$(printf %s "$c2" | cut -c1-8)" "$pin" || fail "import the chip key"
key="pkcs11:token=device;object=chip?pin-value=$pin"
cat "B1/chips/$c2.pem" v/issuing.pem >c2-birth.pem
run "$agent" enroll --key "$key" --cert c2-birth.pem --est "https://$est_addr" --ca srv.pem --out c2-ldevid.pem
[ $rc -eq 0 ] || fail_run "devid-agent enroll with a pkcs11: key"
grep -q "$pin" "$tmp/out" "$tmp/err" && fail "devid-agent printed the PIN"
openssl verify -CAfile ca.pem -purpose sslclient c2-ldevid.pem >/dev/null || fail "agent's LDevID"
run "$agent" renew --key "$key" --cert c2-ldevid.pem --est "https://$est_addr" --ca srv.pem --out c2-renewed.pem
[ $rc -eq 0 ] && grep -q "not due" "$tmp/out" && [ ! -e c2-renewed.pem ] || fail_run "renew when not due"
run "$agent" renew --force --key "$key" --cert c2-ldevid.pem --est "https://$est_addr" --ca srv.pem --out c2-renewed.pem
[ $rc -eq 0 ] || fail_run "devid-agent renew --force"
[ "$(openssl x509 -in c2-renewed.pem -noout -serial)" != "$(openssl x509 -in c2-ldevid.pem -noout -serial)" ] ||
	fail "renew gave the same certificate"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout gw.key -out gw.pem >/dev/null 2>&1 || fail "gateway cert"
: >gw.out
cp ca.pem gw-trust.pem
"$devid" gateway --listen 127.0.0.1:0 --tls-cert gw.pem --tls-key gw.key --trust gw-trust.pem \
    --admin-listen 127.0.0.1:0 --secret "$secret" --db "$tmp/gateway.db" >gw.out 2>gw.log &
gw_pid=$!
pids="$pids $gw_pid"
wait_for gw.out 'admin on' "the gateway"
gw_dev=$(sed -n 's|.*devices on https://\([^,]*\),.*|\1|p' gw.out)
gw_admin=$(sed -n 's|.*admin on http://\([^ ]*\).*|\1|p' gw.out)
cat >conn.json <<EOF
{"type":"webhook","mode":"auto","config":{"url":"http://$gw_admin/devid/events","secret":"$secret"}}
EOF
status=$(curl -sS --cacert srv.pem -o conn.out -w '%{http_code}' -X PUT -H "Authorization: Bearer $A1" \
    -H 'Content-Type: application/json' --data @conn.json "$DEVID_SERVER/api/v1/connectors/GW")
[ "$status" = 201 ] || [ "$status" = 200 ] || fail "connector: $status $(cat conn.out)"
status=$(curl -sS --cacert srv.pem -o prov.out -w '%{http_code}' -X POST -H "Authorization: Bearer $A1" \
    -H 'Content-Type: application/json' --data "{\"connector\":\"GW\",\"devices\":[\"$c2\"]}" \
    "$DEVID_SERVER/api/v1/provision")
[ "$status" = 202 ] || [ "$status" = 200 ] || fail "provision: $status $(cat prov.out)"
i=0
while [ $i -lt 100 ]; do # until the push has reached the gateway
	run "$agent" hello --key "$key" --cert c2-renewed.pem --connect "$gw_dev" --ca gw.pem --timeout 5
	[ $rc -eq 0 ] && break
	i=$((i + 1))
	sleep 0.2
done
run "$agent" hello --key "$key" --cert c2-renewed.pem --connect "$gw_dev" --ca gw.pem --timeout 5
[ $rc -eq 0 ] || fail_run "the device with its LDevID (pkcs11: key) is not admitted"
grep -q "$c2" "$tmp/out" || fail_run "the greeting does not name the device"
run "$agent" hello --key "$key" --cert c2-birth.pem --connect "$gw_dev" --ca gw.pem --timeout 5
[ $rc -ne 0 ] || fail_run "the birth certificate is admitted by a gateway that trusts only the tenant CA"
note "devid-agent enrolled and renewed with a pkcs11: key and connects with its LDevID"

# --- CA rotation (docs/operations.md): the next key in the token; the old CA stays trusted ---
run "$devid" admin ca rotate --tenant OEM1 --pkcs11 "pkcs11:token=devid-ca;object=oem1-ca?pin-value=$pin"
[ $rc -ne 0 ] && grep -q "current key" "$tmp/err" || fail_run "a rotation onto the current key"
run "$devid" admin ca rotate --tenant OEM1 --pkcs11 "pkcs11:token=devid-ca;object=oem1-ca-2?pin-value=$pin" \
    --out ca2.pem
[ $rc -eq 0 ] || fail_run "ca rotate"
grep -q "$pin" "$tmp/out" "$tmp/err" && fail "ca rotate printed the PIN"
"$devid" admin ca show --tenant OEM1 >bundle.pem || fail "ca show"
openssl crl2pkcs7 -nocrl -certfile bundle.pem | openssl pkcs7 -print_certs -noout |
	grep '^subject' >bundle.txt
[ "$(wc -l <bundle.txt)" = 2 ] && head -1 bundle.txt | grep -q 'generation 2' ||
	fail "ca show after a rotation: want the new CA, then the old: $(cat bundle.txt)"
curl -sS --cacert srv.pem -o cacerts2.b64 "https://$est_addr/.well-known/est/OEM1/cacerts" ||
	fail "cacerts"
p7_certs cacerts2.b64 cacerts2.pem
[ "$(grep -c 'BEGIN CERTIFICATE' cacerts2.pem)" = 4 ] ||
	fail "cacerts after a rotation: want the new CA, the old and the two key update certificates"
# the device renews with its old-generation certificate and gets one of the new CA
run "$agent" renew --force --key "$key" --cert c2-renewed.pem --est "https://$est_addr" --ca srv.pem \
    --out c2-gen2.pem
[ $rc -eq 0 ] || fail_run "renewal with a certificate of the retired CA"
openssl verify -CAfile ca2.pem -purpose sslclient c2-gen2.pem >/dev/null ||
	fail "the renewed certificate does not chain to the new CA"
# a cloud that trusts only the old CA refuses it until the new one is added to its trust
run "$agent" hello --key "$key" --cert c2-gen2.pem --connect "$gw_dev" --ca gw.pem --timeout 5
[ $rc -ne 0 ] || fail_run "a gateway that trusts only the old CA admits the new CA's certificate"
cp bundle.pem gw-trust.pem
kill -HUP "$gw_pid"
i=0
until run "$agent" hello --key "$key" --cert c2-gen2.pem --connect "$gw_dev" --ca gw.pem --timeout 5 &&
	[ $rc -eq 0 ]; do
	i=$((i + 1))
	[ $i -lt 50 ] || fail_run "the gateway does not admit the new CA's certificate after a reload"
	sleep 0.1
done
run "$agent" hello --key "$key" --cert c2-renewed.pem --connect "$gw_dev" --ca gw.pem --timeout 5
[ $rc -eq 0 ] || fail_run "the old CA's certificate is refused while it is valid"
# each generation's CRL, signed by its own key
"$devid" revoke --token "$A1" "$c2" >/dev/null || fail "revoke c2"
for g in 1 2; do
	path=/api/v1/tenants/OEM1/crl
	anchor=ca.pem
	cert=c2-renewed.pem
	[ $g = 2 ] && path=$path/2 && anchor=ca2.pem && cert=c2-gen2.pem
	curl -sS --cacert srv.pem -o "crl$g.der" "$DEVID_SERVER$path" || fail "GET $path"
	openssl crl -inform DER -in "crl$g.der" -CAfile "$anchor" -noout 2>"crl$g.verify" &&
		grep -q 'verify OK' "crl$g.verify" || fail "$path does not verify with its CA: $(cat "crl$g.verify")"
	sn=$(openssl x509 -in "$cert" -noout -serial | sed 's/serial=//')
	openssl crl -inform DER -in "crl$g.der" -noout -text | grep -qi "$sn" ||
		fail "$path does not list $cert"
done
note "CA rotated: old and new CA in ca show and cacerts, renewal moves to the new CA, one CRL each"
exit 0
