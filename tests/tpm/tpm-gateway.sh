#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# devid gateway admits a TPM device by its LDevID (docs/tpm.md, "Admission by LDevID"): the
# setup of tpm-enroll.sh (tpmdev.sh: swtpm TPM A with an EK certificate from the local EK PKI,
# devid trusting only the public root, the reel minted --from-ek and published, OEM1's CA);
# the gateway takes OEM1's CA and a test CA as --ldevid-ca and OEM2's CA as --trust; an auto
# webhook connector pushes the reel when OEM1 claims it; TPM A enrolls by credential
# activation. devid-agent hello, with the LDevID and its key in the TPM (tpm2-openssl), is
# admitted: 200 naming the UDID. (openssl s_client -provider tpm2 cannot: the provider's
# digests hold TPM objects, and swtpm has room for three.) Refused (403, the reason logged):
# a certificate of OEM2's CA (in --trust, not an --ldevid-ca) for the same key and subject,
# known by its key's hash, which is on no ACL row; certificates of the test CA whose O is
# another tenant, whose CN is not a UDID (or is one in upper case), or that have no O; after
# a reload (SIGHUP) that replaces the test CA's file, that CA's certificates fail the
# handshake and the new CA's are admitted; after a revoke, whose remove event reaches the
# gateway, the device itself.
# Usage: tpm-gateway.sh DEVID DEVID-AGENT
me=tpm-gateway
. "$(dirname "$0")/../integration/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../swtpm.sh"
. "$here/ekpki.sh"
. "$here/tpmdev.sh"
devid=${1:-}
agent=${2:-}
need_devid "$devid"
[ -x "$agent" ] || fail "usage: tpm-gateway.sh DEVID DEVID-AGENT ($agent: not an executable)"
swtpm_available || fail "swtpm, swtpm_setup or tpm2-tools is not installed (sh scripts/install-deps)"
command -v curl >/dev/null || fail "curl is not installed"
[ -e "$(openssl version -m | sed 's/^MODULESDIR: "\(.*\)"$/\1/')/tpm2.so" ] ||
	fail "the tpm2-openssl provider is not installed (sh scripts/install-deps)"
make_tmp
pids=""
trap 'swtpm_stop; for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd"
export DEVID_DB="sqlite:$tmp/devid.db"
secret='tpm-gateway-secret-0123456789'

tpmdev_setup
run "$devid" admin ca init --tenant OEM2 --key-file "$tmp/ca2.key"
[ $rc = 0 ] || fail_run "ca init OEM2"
"$devid" admin ca show --tenant OEM2 >ca2.pem || fail "ca show OEM2"

# testca NAME: a CA of the test's own (not devid's), NAME.pem and NAME.key
testca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" \
	    -out "$1.pem" -subj "/CN=$1/O=TEST" -days 2 \
	    -addext basicConstraints=critical,CA:TRUE,pathlen:0 \
	    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null || fail "CA $1"
}
testca testca
testca testca2
cp testca.pem ldevid-test.pem
cat >leaf.ext <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid:always
EOF
# leaf OUT CA SUBJECT: a certificate by CA (CA.pem, CA.key) for TPM A's signing key
leaf() {
	openssl req -new -key testca.key -subj "$3" 2>/dev/null |
	    openssl x509 -req -CA "$2.pem" -CAkey "$2.key" -force_pubkey a-key.pem -days 1 \
		-set_serial "0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" \
		-extfile leaf.ext -out "$1" 2>/dev/null || fail "certificate $1"
}

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout gw.key \
    -out gw.pem -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -days 2 2>/dev/null ||
	fail "gateway certificate"
"$devid" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --tls-cert gw.pem \
    --tls-key gw.key --ldevid-ca ca.pem --ldevid-ca ldevid-test.pem --trust ca2.pem \
    --db gw.db --secret "$secret" --threads 2 >gateway.out 2>gateway.log &
gateway_pid=$!
pids="$pids $gateway_pid"
wait_line gateway.out 'admin on' gateway
dev=$(sed -n 's|.*devices on https://\([^,]*\),.*|\1|p' gateway.out)
adm=$(sed -n 's|.*admin on http://||p' gateway.out)

status=$(curl -sS --cacert srv.pem -o body -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $A1" -H 'Content-Type: application/json' --data-binary \
    "{\"name\":\"GW\",\"type\":\"webhook\",\"mode\":\"auto\",\"config\":{\"url\":\"http://$adm/devid/events\",\"secret\":\"$secret\"}}" \
    "$DEVID_SERVER/api/v1/connectors")
[ "$status" = 201 ] || fail "create the webhook connector: $status $(cat body)"
run env DEVID_TOKEN="$A1" "$devid" claim "$(cat reel/claim.txt)"
[ $rc = 0 ] || fail_run "claim EK1"

# wait_acl STATE: until the gateway's ACL lists TPM A in STATE (30 s)
wait_acl() {
	i=0
	sig=$(printf '' | openssl dgst -sha256 -hmac "$secret" | awk '{ print $NF }')
	until curl -sS -H "X-Devid-Signature: sha256=$sig" "http://$adm/devid/acl" 2>/dev/null |
	    grep -q "\"udid\":\"$udid\",[^}]*\"tenant\":\"OEM1\",\"state\":\"$1\""; do
		i=$((i + 1))
		[ $i -lt 300 ] || fail "TPM A is not $1 on the gateway's ACL: $(tail -3 serve.log)"
		sleep 0.1
	done
}
wait_acl active
note "ok: the webhook pushed TPM A (its EK certificate) to the gateway"

# --- TPM A enrolls and connects with its LDevID ---------------------------------------------
swtpm_start "$tmp/a" || fail "swtpm a"
device a
tpmdev_enroll a OEM1
openssl x509 -in a-ldevid.pem -noout -subject | grep -q "CN = $udid, O = OEM1" ||
	fail "the LDevID's subject: $(openssl x509 -in a-ldevid.pem -noout -subject)"

# hello CERT: devid-agent hello on the device port with CERT and TPM A's signing key
# (tpm2:handle=0x81000010, through tpm2-openssl); $status: 200 (the greeting in hello.out), the
# status of a refusal, or 000 when the handshake failed
hello() {
	"$agent" hello --key tpm2:handle=0x81000010 --cert "$1" --connect "$dev" --ca gw.pem \
	    >hello.out 2>hello.err
	case $? in
	0) status=200 ;;
	1) status=$(sed -n 's/.*: HTTP \([0-9]*\) .*/\1/p' hello.err) ;;
	*) status=000 ;;
	esac
}
gw_admitted() { # CERT WHAT: 200 naming TPM A's UDID, logged as by LDevID
	n=$(grep -c 'msg="gateway device admitted"' gateway.log)
	hello "$1"
	[ "$status" = 200 ] || fail "$2: HTTP $status: $(cat hello.err) $(tail -n 3 gateway.log)"
	grep -q "\"udid\":\"$udid\",\"status\":\"admitted\"" hello.out ||
		fail "$2: the greeting: $(cat hello.out)"
	[ "$(grep -c 'msg="gateway device admitted"' gateway.log)" = $((n + 1)) ] &&
	    tail -n 5 gateway.log | grep -q "msg=\"gateway device admitted\" .*udid=$udid .*identity=ldevid" ||
		fail "$2: the admission is not logged as by LDevID: $(tail -n 3 gateway.log)"
	note "ok: $2: 200"
}
gw_refused() { # CERT REASON WHAT: 403, and the log says why
	n=$(grep -c "msg=\"gateway device refused\" .*reason=$2 " gateway.log)
	hello "$1"
	[ "$status" = 403 ] || fail "$3: HTTP $status, want 403: $(cat hello.err)"
	[ "$(grep -c "msg=\"gateway device refused\" .*reason=$2 " gateway.log)" = $((n + 1)) ] ||
		fail "$3: no reason=$2 logged: $(tail -n 3 gateway.log)"
	note "ok: $3: 403, reason=$2"
}

gw_admitted a-ldevid.pem "TPM A with its LDevID, the key in the TPM"

# OEM2's CA is trusted for the handshake, not as an --ldevid-ca: its word on the subject
# counts for nothing; the certificate is known by its key, which is on no ACL row
openssl req -new -key testca.key -subj "/CN=$udid/O=OEM1" 2>/dev/null |
    openssl x509 -req -CA ca2.pem -CAkey ca2.key -force_pubkey a-key.pem -days 1 \
	-extfile leaf.ext -out oem2.pem 2>/dev/null || fail "a certificate of OEM2's CA"
gw_refused oem2.pem not_on_acl "a certificate of a CA that is not an --ldevid-ca"
tail -n 5 gateway.log | grep -q 'reason=not_on_acl .*identity=key' ||
	fail "OEM2's certificate was not known by its key: $(tail -n 3 gateway.log)"

# the test CA is an --ldevid-ca: its word is taken, for its subject's rules
leaf other.pem testca "/CN=$udid/O=OTHER"
gw_refused other.pem ldevid_other_tenant "an --ldevid-ca's certificate naming another tenant"
grep -q "reason=ldevid_other_tenant udid=$udid .*tenant=OTHER" gateway.log ||
	fail "the other tenant is not logged"
leaf name.pem testca "/CN=device-1/O=OEM1"
gw_refused name.pem ldevid_cn_not_udid "an --ldevid-ca's certificate whose CN is not a UDID"
upper=$(echo "$udid" | tr a-f A-F)
leaf upper.pem testca "/CN=$upper/O=OEM1"
gw_refused upper.pem ldevid_cn_not_udid "a UDID in upper case"
leaf noorg.pem testca "/CN=$udid"
gw_refused noorg.pem ldevid_no_tenant "an --ldevid-ca's certificate without an O"
leaf test.pem testca "/CN=$udid/O=OEM1"
gw_admitted test.pem "the test CA's certificate for TPM A of OEM1"

# --- reload: the --ldevid-ca file now holds another CA ------------------------------------
leaf test2.pem testca2 "/CN=$udid/O=OEM1"
hello test2.pem
[ "$status" = 000 ] || fail "a CA the gateway does not know yet: HTTP $status"
cp testca2.pem ldevid-test.pem
kill -HUP "$gateway_pid"
i=0
until grep -q 'msg="reloaded trust and certificate"' gateway.log; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "no reload: $(tail -n 3 gateway.log)"
	sleep 0.1
done
gw_admitted test2.pem "after a reload, the new --ldevid-ca's certificate"
unknown='msg="http client certificate rejected" .*reason=unable_to_get_local_issuer_certificate'
n=$(grep -c "$unknown" gateway.log)
hello test.pem
[ "$status" = 000 ] || fail "the replaced --ldevid-ca's certificate after a reload: HTTP $status"
[ "$(grep -c "$unknown" gateway.log)" = $((n + 1)) ] ||
	fail "the replaced CA's handshake refusal is not logged: $(tail -n 3 gateway.log)"
note "ok: a reload re-reads the --ldevid-ca files"

# --- revoke: the remove event reaches the gateway ------------------------------------------
status=$(curl -sS --cacert srv.pem -o body -w '%{http_code}' -X POST \
    -H "Authorization: Bearer $A1" "$DEVID_SERVER/api/v1/devices/$udid/revoke")
[ "$status" = 200 ] || fail "revoke: $status $(cat body)"
wait_acl removed
gw_refused a-ldevid.pem removed "TPM A after its removal"
grep -q "reason=removed udid=$udid .*identity=ldevid tenant=OEM1" gateway.log ||
	fail "the removal's refusal is not logged by LDevID"

swtpm_stop
kill -TERM "$gateway_pid"
wait "$gateway_pid" || fail "the gateway did not stop cleanly"
if grep -Eq 'ERROR: [A-Za-z]+Sanitizer|runtime error:' gateway.log serve.log; then
	fail "sanitizer report: $(grep -h -A20 'Sanitizer\|runtime error' gateway.log serve.log | head -40)"
fi
note "ok: the gateway admits TPM A by its LDevID and refuses what it must"
exit 0
