#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# `devid-agent tpm-enroll` (src/agent/tpm_enroll.c): a TPM device enrolled by credential
# activation with the agent as the device, end to end on 127.0.0.1 (docs/tpm.md). The setup
# is tpm-enroll.sh's: swtpm TPMs A and B with RSA EK certificates from the local EK PKI
# (ekpki.sh), devid trusting only the public root that cross-signs the EK CA, the reel minted
# --from-ek from A's EK, published and claimed, a tenant CA.
#   A enrolls (exit 0): the LDevID verifies against the tenant CA with openssl verify, carries
#   A's UDID, and is issued to the key now persistent at --key-handle (fixedTPM, fixedParent,
#   sensitiveDataOrigin, sign, not restricted: the key never left the TPM), audited as
#   est.tpm_enroll; --out holds the CA from cacerts after it; `devid-agent renew --key
#   tpm2:handle=... --label` renews with that key in the TPM (devid finds the device by the
#   LDevID's CN), and hello with it is admitted by a TLS server that trusts the tenant CA.
#   Refused: TPM B, whose EK is in no batch (exit 1, the server's reason, B's handle left
#   empty, nothing issued); A while its tenant has no quota left (exit 1 at tpm/enroll, the
#   key made persistent before it evicted again); a self-made certificate whose CN is A's UDID, to renew (exit 1);
#   A again with its handle taken (exit 2, nothing sent); a handle
#   outside the owner's range, an unknown --ek (exit 2, usage); an unreachable TPM (exit 2,
#   its TCTI named in one line); --ek ecc on a TPM without a P-256 EK certificate (exit 2,
#   the NV index named).
# Usage: tpm-agent-enroll.sh DEVID DEVID-AGENT
me=tpm-agent-enroll
. "$(dirname "$0")/../integration/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../swtpm.sh"
. "$here/ekpki.sh"
. "$here/tpmdev.sh"
devid=${1:-}
agent=${2:-}
need_devid "$devid"
[ -x "$agent" ] || fail "$agent: not an executable devid-agent"
swtpm_available || fail "swtpm, swtpm_setup or tpm2-tools is not installed (sh scripts/install-deps)"
[ -e "$(openssl version -m | sed 's/^MODULESDIR: "\(.*\)"$/\1/')/tpm2.so" ] ||
	fail "the tpm2-openssl provider is not installed (sh scripts/install-deps)"
make_tmp
pids=""
trap 'swtpm_stop; for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd"
export DEVID_DB="sqlite:$tmp/devid.db"
unset TSS2_LOG

# persistent HANDLE: true if the running TPM holds a key at HANDLE
persistent() { tpm2_getcap handles-persistent 2>/dev/null | grep -qi "$1"; }
# refused WHAT STATUS PATTERN: the last run exited STATUS, its stderr one line naming PATTERN
# (this test runs the agent, so it replaces tpmdev.sh's refused, which reads curl answers)
refused() {
	[ "$rc" = "$2" ] || fail_run "$1: exit $rc, want $2"
	grep -q -- "$3" "$tmp/err" || fail_run "$1: stderr does not say \"$3\""
	[ "$(wc -l <"$tmp/err")" = 1 ] || fail_run "$1: more than one line on stderr"
	note "$1: exit $rc: $(cat "$tmp/err")"
}
# usage WHAT PATTERN: the last run was a usage error (exit 2) whose first line names PATTERN
usage() {
	[ "$rc" = 2 ] || fail_run "$1: exit $rc, want 2"
	head -1 "$tmp/err" | grep -q -- "$2" || fail_run "$1: stderr does not start with \"$2\""
	note "$1: exit $rc: $(head -1 "$tmp/err")"
}

# --- tpm-enroll.sh's setup (tpmdev.sh); TPM b, whose EK is in no batch; EK1 claimed ---------
tpmdev_setup
swtpm_manufacture "$tmp/b" --create-ek-cert --config "$tmp/pki/swtpm_setup.conf" ||
	fail "swtpm_setup b"
swtpm_start "$tmp/a" || fail "swtpm a"
a_has_p256=no
tpm2_nvreadpublic 0x01c0000a >/dev/null 2>&1 && a_has_p256=yes
swtpm_stop
run env DEVID_TOKEN="$A1" "$devid" claim "$(cat reel/claim.txt)"
[ $rc = 0 ] || fail_run "claim EK1"
est="https://$est_addr"

# --- usage errors: nothing touches a TPM ----------------------------------------------------
run "$agent" tpm-enroll --est "$est" --ca srv.pem --out x.pem --key-handle 0x81800000
usage "a platform handle" "persistent handle of the owner"
run "$agent" tpm-enroll --est "$est" --ca srv.pem --out x.pem --key-handle 0x81000010 --ek dsa
usage "an unknown --ek" "expected rsa"
run "$agent" tpm-enroll --est "$est" --ca srv.pem --out x.pem
usage "no --key-handle" "needs --est, --ca, --out and --key-handle"
run "$agent" tpm-enroll --est "$est" --ca srv.pem --out x.pem --key-handle 0x81000010 \
    --tcti swtpm:host=127.0.0.1,port=1
refused "an unreachable TPM" 2 'TCTI "swtpm:host=127.0.0.1,port=1"'

# --- TPM B: its EK is in no batch -----------------------------------------------------------
before=$(issued)
swtpm_start "$tmp/b" || fail "swtpm b"
run "$agent" tpm-enroll --est "$est" --ca srv.pem --out b.pem --key-handle 0x81000010
refused "TPM B, whose EK is in no batch" 1 "not a device known to devid"
[ -e b.pem ] && fail "TPM B: a certificate file was written"
persistent 0x81000010 && fail "TPM B: the refused enrollment left a key at 0x81000010"
swtpm_stop
[ "$(issued)" = "$before" ] || fail "TPM B: a certificate was issued"

# --- TPM A enrolls --------------------------------------------------------------------------
swtpm_start "$tmp/a" || fail "swtpm a"
if [ $a_has_p256 = no ]; then
	run "$agent" tpm-enroll --est "$est" --ca srv.pem --out a.pem --key-handle 0x81000010 \
	    --label OEM1 --ek ecc
	refused "--ek ecc without a P-256 EK certificate" 2 "no EK certificate at NV index 0x01c0000a"
fi
tpm2_getcap handles-persistent >persistent-before || fail "tpm2_getcap"
# no quota left: tpm/enroll refuses after the key was made persistent; the handle is emptied
run "$devid" admin quota set --tenant OEM1 --max 0
[ $rc = 0 ] || fail_run "quota set 0"
run "$agent" tpm-enroll --est "$est" --ca srv.pem --out ldevid.pem --key-handle 0x81000010 \
    --label OEM1
refused "TPM A without quota" 1 "tpm/enroll refused by .*quota"
[ -e ldevid.pem ] && fail "TPM A without quota: a certificate file was written"
persistent 0x81000010 && fail "TPM A without quota: the key stayed at 0x81000010"
run "$devid" admin quota set --tenant OEM1 --max 10
[ $rc = 0 ] || fail_run "quota set 10"
# the TCTI from TPM2OPENSSL_TCTI (swtpm_start exports it), as tpm2: keys reach the TPM
run "$agent" tpm-enroll --est "$est" --ca srv.pem --out ldevid.pem --key-handle 0x81000010 \
    --label OEM1
[ $rc = 0 ] || fail_run "tpm-enroll of TPM A"
grep -q "^enrolled: udid=$udid serial=[0-9a-f]* notAfter=.* out=ldevid.pem key=tpm2:handle=0x81000010$" \
    "$tmp/out" || fail_run "tpm-enroll: its line on stdout"
[ -s "$tmp/err" ] && fail_run "tpm-enroll: something on stderr"
openssl verify -CAfile ca.pem ldevid.pem >verify.out 2>&1 || fail "openssl verify: $(cat verify.out)"
openssl x509 -in ldevid.pem -noout -subject | grep -q "CN *= *$udid" ||
	fail "the LDevID's CN is not the UDID $udid: $(openssl x509 -in ldevid.pem -noout -subject)"
# --out: the LDevID, then the CA from cacerts
awk '/BEGIN CERT/ { n++ } n == 2' ldevid.pem >second.pem
cmp -s second.pem ca.pem || fail "--out does not hold the tenant CA after the LDevID"
[ "$(issued)" = $((before + 1)) ] || fail "one certificate issued"
[ "$(sql "SELECT COUNT(*) FROM audit WHERE action = 'est.tpm_enroll' AND object = '$udid'")" = 1 ] ||
	fail "no est.tpm_enroll audit record"
# the key: persistent, the LDevID's, made in the TPM and kept in it
tpm2_readpublic -c 0x81000010 -f pem -o key.pem >readpublic.out 2>&1 ||
	fail "no key at 0x81000010: $(cat readpublic.out)"
openssl x509 -in ldevid.pem -noout -pubkey >ldevid-key.pem || fail "LDevID key"
cmp -s ldevid-key.pem key.pem || fail "the LDevID's key is not the key at 0x81000010"
for a in fixedtpm fixedparent sensitivedataorigin userwithauth sign; do
	grep -q "$a" readpublic.out || fail "the key at 0x81000010 is not $a: $(cat readpublic.out)"
done
grep -q "restricted" readpublic.out && fail "the key at 0x81000010 is restricted"
tpm2_getcap handles-persistent >persistent-after || fail "tpm2_getcap"
[ "$(diff persistent-before persistent-after | grep '^[<>]')" = "> - 0x81000010" ] ||
	fail "persistent handles: 0x81000010 alone should be new: $(diff persistent-before persistent-after)"
tpm2_getcap handles-transient | grep -q 0x80 && fail "transient objects were left loaded"
note "ok: TPM A enrolled: the LDevID verifies against the tenant CA, its key at 0x81000010"

# A again: the handle is taken; nothing is sent
run "$agent" tpm-enroll --est "$est" --ca srv.pem --out again.pem --key-handle 0x81000010
refused "A again with its handle taken" 2 "0x81000010 holds a key already"
[ "$(issued)" = $((before + 1)) ] || fail "the refused run issued a certificate"

# --- the key in use: renew and hello through tpm2-openssl ----------------------------------
# the LDevID certifies the signing key, not the EK: devid finds the device by its subject's
# CN, and cacerts by the label (the key names no device)
run "$agent" renew --key tpm2:handle=0x81000010 --cert ldevid.pem --est "$est" --ca srv.pem \
    --out renewed.pem --label OEM1 --force
[ $rc = 0 ] || fail_run "renew with the key in the TPM"
openssl x509 -in renewed.pem -noout -pubkey >renewed-key.pem || fail "renewed key"
cmp -s renewed-key.pem key.pem || fail "the renewed certificate is not for the TPM's key"
openssl verify -CAfile ca.pem renewed.pem >verify.out 2>&1 ||
	fail "openssl verify of the renewed certificate: $(cat verify.out)"
openssl x509 -in renewed.pem -noout -subject | grep -q "CN *= *$udid" ||
	fail "the renewed LDevID's CN is not the UDID"
[ "$(issued)" = $((before + 2)) ] || fail "renew issued no certificate"
[ "$(sql "SELECT COUNT(*) FROM audit WHERE action = 'est.reenroll' AND object = '$udid'")" = 1 ] ||
	fail "no est.reenroll audit record for $udid"
# a made-up certificate naming A's UDID in its subject does not renew
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj "/CN=$udid" -keyout forged.key -out forged.pem >/dev/null 2>&1 || fail "forged LDevID"
run "$agent" renew --key file:forged.key --cert forged.pem --est "$est" --ca srv.pem \
    --out forged-renewed.pem --label OEM1 --force
refused "a self-made certificate with A's UDID as its CN" 1 "operational certificate"
[ "$(issued)" = $((before + 2)) ] || fail "the forged LDevID was renewed"

openssl s_server -accept 127.0.0.1:0 -cert srv.pem -key srv.key -Verify 1 -CAfile ca.pem \
    -verify_return_error -www >s_server.out 2>&1 &
pids="$pids $!"
wait_line s_server.out '^ACCEPT ' s_server
port=$(sed -n 's/^ACCEPT .*:\([0-9][0-9]*\)$/\1/p' s_server.out | head -1)
[ -n "$port" ] || fail "no s_server port in: $(cat s_server.out)"
run "$agent" hello --key tpm2:handle=0x81000010 --cert ldevid.pem --connect "127.0.0.1:$port" \
    --ca srv.pem
[ $rc = 0 ] || fail_run "hello with the TPM key and the LDevID"
swtpm_stop
note "ok: renew and hello with tpm2:handle=0x81000010; refusals as expected"
exit 0
