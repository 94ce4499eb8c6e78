#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# A TPM device enrolled by credential activation, end to end on 127.0.0.1 (docs/tpm.md):
# swtpm TPM A is manufactured with an RSA EK certificate from the local EK PKI (ekpki.sh);
# devid trusts only the public root that cross-signs the EK CA; the vendor mints the reel
# --from-ek and publishes it; the OEM claims it and has a CA (file key). The device side is
# tpm2-tools, openssl with the tpm2 provider (the CSR, signed in the TPM) and curl:
# tpm/activate, TPM2_ActivateCredential, tpm/enroll gives an LDevID whose key is the TPM's
# signing key and which openssl verify accepts against the tenant CA.
# Refused: TPM B, whose EK is in no batch (at activate); TPM B replaying A's activate request
# (it cannot activate the credential: enroll refused for a wrong secret, and that activation
# is spent); the replay of a used id; an EK certificate of a published but unclaimed batch;
# an AK that is not restricted; a CSR of another key; another EK certificate of A's EK key;
# bodies of another media type, with duplicate or missing members, bad base64.
# Usage: tpm-enroll.sh DEVID
me=tpm-enroll
. "$(dirname "$0")/../integration/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../swtpm.sh"
. "$here/ekpki.sh"
. "$here/tpmdev.sh"
devid=${1:-}
need_devid "$devid"
swtpm_available || fail "swtpm, swtpm_setup or tpm2-tools is not installed (sh scripts/install-deps)"
command -v curl >/dev/null || fail "curl is not installed"
[ -e "$(openssl version -m | sed 's/^MODULESDIR: "\(.*\)"$/\1/')/tpm2.so" ] ||
	fail "the tpm2-openssl provider is not installed (sh scripts/install-deps)"
make_tmp
pids=""
trap 'swtpm_stop; for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd"
export DEVID_DB="sqlite:$tmp/devid.db"

# --- the EK PKI, TPM A, the vendor, the OEM, devid serve (tpmdev.sh); TPM B and reel EK2 ---
tpmdev_setup
run env DEVID_TOKEN="$A1" "$devid" claim "$(cat reel/claim.txt)"
[ $rc = 0 ] || fail_run "claim EK1"
swtpm_manufacture "$tmp/b" --create-ek-cert --config "$tmp/pki/swtpm_setup.conf" ||
	fail "swtpm_setup b"
run "$devid" vendor mint --dir vd --batch EK2 --out reel2 --chain chain.pem \
    --from-ek pki/spare-ek.pem
[ $rc = 0 ] || fail_run "mint EK2"
run env DEVID_TOKEN="$VT" "$devid" vendor publish reel2
[ $rc = 0 ] || fail_run "publish EK2"

# --- TPM B first: its EK is in no batch; it keeps its keys for the replay below ------------
swtpm_start "$tmp/b" || fail "swtpm b"
ekpki_read_ek eks-b || fail "tpm2_nvread of b's EK certificate"
device b
activate_req b.json eks-b-rsa.der b-ak.pub b-key.pub b-attest b-sig b.csr
post tpm/activate b.json
refused "TPM B, whose EK is in no batch, activates" 403 "not a device known to devid"
swtpm_stop

# --- TPM A: the device ------------------------------------------------------------------------
swtpm_start "$tmp/a" || fail "swtpm a"
device a
activate_req a.json eks/a-rsa.der a-ak.pub a-key.pub a-attest a-sig a.csr
before=$(issued)

# hostile first, with A's own TPM: an AK that is not restricted (the signing key as "AK",
# certifying itself), a CSR of another key, another EK certificate with A's keys
t tpm2_certify -c 0x81000010 -C 0x81000010 -g sha256 -o self-attest -s self-sig ||
	fail "self certify"
activate_req free.json eks/a-rsa.der a-key.pub a-key.pub self-attest self-sig a.csr
post OEM1/tpm/activate free.json
refused "an AK that is not restricted" 403 "akPublic: .*restricted clear"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key \
    -subj /CN=other -outform DER -out other.csr 2>/dev/null || fail "other CSR"
activate_req other.json eks/a-rsa.der a-ak.pub a-key.pub a-attest a-sig other.csr
post tpm/activate other.json
refused "a CSR of another key than the certified one" 400 "csr: its key is not the signing key"
openssl x509 -in pki/spare-ek.pem -outform der -out spare-ek.der || fail "spare EK DER"
activate_req unclaimed.json spare-ek.der a-ak.pub a-key.pub a-attest a-sig a.csr
post tpm/activate unclaimed.json
refused "a TPM of a published batch nobody claimed" 403 "is not claimed"
post OEM2/tpm/activate a.json
refused "a label of another tenant" 403 "not claimed by tenant"
# another certificate of A's EK key, issued by the EK CA: same UDID, not the registered one
openssl x509 -inform der -in eks/a-rsa.der -noout -pubkey >a-ekpub.pem || fail "A's EK key"
openssl req -new -key other.key -subj /CN=forged 2>/dev/null |
    openssl x509 -req -CA pki/ekca.pem -CAkey pki/ekca.key -force_pubkey a-ekpub.pem \
	-days 1 -outform der -out forged.der 2>/dev/null || fail "forged EK certificate"
activate_req forged.json forged.der a-ak.pub a-key.pub a-attest a-sig a.csr
post tpm/activate forged.json
refused "another certificate of A's EK key" 403 "not the one registered"
# the bodies: a media type, JSON, the members
status=$(curl -sS --cacert srv.pem -H 'Content-Type: application/pkcs10' -o resp \
    -w '%{http_code}' --data-binary @a.json "https://$est_addr/.well-known/est/tpm/activate")
refused "a body that is not JSON by its type" 415 "application/json"
printf '{"akPublic":"AAAA","akPublic":"AAAA"}' >dup.json
post tpm/activate dup.json
refused "duplicate members" 400 "duplicate members refused"
python3 -c 'import json; d = json.load(open("a.json")); del d["certifyInfo"]; json.dump(d, open("miss.json", "w"))'
post tpm/activate miss.json
refused "a member missing" 400 "member certifyInfo missing"
printf '{"id":"00","secret":"not base64!"}' >bad.json
post tpm/enroll bad.json
refused "a secret that is not base64" 400 "secret: not base64"
[ "$(sql "SELECT COUNT(*) FROM tpm_activations")" = 0 ] || fail "a refused activate stored one"

# TPM B replays A's activate request: devid wraps a secret to A's EK; B cannot unwrap it
post tpm/activate a.json
[ "$status" = 201 ] || fail "activate (for the replay): HTTP $status: $(cat resp)"
stolen=$(credential resp stolen.cred)
swtpm_stop
swtpm_start "$tmp/b" || fail "swtpm b"
rm -f b-secret
activate stolen.cred b-secret && fail "TPM B activated a credential for A's EK"
[ -s b-secret ] && fail "TPM B recovered a secret"
head -c 32 /dev/urandom >b-secret
enroll_req b-enroll.json "$stolen" b-secret
post tpm/enroll b-enroll.json
refused "TPM B answers A's activation with a guessed secret" 403 "wrong secret"
swtpm_stop

# --- TPM A enrolls ------------------------------------------------------------------------
swtpm_start "$tmp/a" || fail "swtpm a"
enroll_req spent.json "$stolen" b-secret
post tpm/enroll spent.json
refused "the activation B spent, answered again" 403 "no pending activation"
post OEM1/tpm/activate a.json
[ "$status" = 201 ] || fail "activate: HTTP $status: $(cat resp)"
id=$(credential resp a.cred)
[ "$(sql "SELECT COUNT(*) FROM tpm_activations")" = 1 ] || fail "one pending activation"
sql "SELECT secret_sha256 FROM tpm_activations" | grep -qx '[0-9a-f]\{64\}' ||
	fail "the secret is stored as its SHA-256"
activate a.cred a-secret || fail "TPM A cannot activate devid's credential"
[ "$(wc -c <a-secret)" = 32 ] || fail "a 32-byte secret expected"
[ "$(issued)" = "$before" ] || fail "a certificate was issued before enroll"
enroll_req a-enroll.json "$id" a-secret
post OEM1/tpm/enroll a-enroll.json
[ "$status" = 200 ] || fail "enroll: HTTP $status: $(cat resp)"
base64 -d <resp >resp.p7 && openssl pkcs7 -inform DER -in resp.p7 -print_certs -out ldevid.pem ||
	fail "enroll answered no PKCS#7: $(head -c 300 resp)"
openssl verify -CAfile ca.pem ldevid.pem >verify.out 2>&1 || fail "openssl verify: $(cat verify.out)"
openssl x509 -in ldevid.pem -noout -pubkey >ldevid-key.pem || fail "LDevID key"
cmp -s ldevid-key.pem a-key.pem || fail "the LDevID's key is not the TPM's signing key"
openssl x509 -in ldevid.pem -noout -subject | grep -q "CN *= *$udid" ||
	fail "the LDevID's CN is not the UDID $udid: $(openssl x509 -in ldevid.pem -noout -subject)"
[ "$(issued)" = $((before + 1)) ] || fail "one certificate issued"
[ "$(sql "SELECT COUNT(*) FROM audit WHERE action = 'est.tpm_enroll' AND object = '$udid'")" = 1 ] ||
	fail "no est.tpm_enroll audit record"
note "ok: TPM A activated and enrolled: the LDevID verifies against the tenant CA, its key in the TPM"
# the key is the TPM's: a signature made in the TPM verifies with the LDevID
printf 'hello' >msg
openssl pkeyutl -provider tpm2 -provider default -sign -inkey handle:0x81000010 -rawin \
    -digest sha256 -in msg -out msg.sig 2>>tools.log || fail "sign in the TPM"
openssl pkeyutl -verify -certin -inkey ldevid.pem -rawin -digest sha256 -in msg \
    -sigfile msg.sig >/dev/null || fail "the TPM's signature does not verify with the LDevID"

post OEM1/tpm/enroll a-enroll.json
refused "the replay of a used id" 403 "no pending activation"
[ "$(issued)" = $((before + 1)) ] || fail "the replay issued a certificate"
grep -q "$(od -An -tx1 a-secret | tr -d ' \n')" serve.out serve.log && fail "the secret was logged"

curl -sS --cacert srv.pem -o metrics.txt "$DEVID_SERVER/metrics" || fail "metrics"
grep -q '^devid_est_issued_total{op="tpm_enroll"} 1' metrics.txt || fail "metrics: tpm_enroll"
grep -q '^devid_est_refused_total{reason="activation"} 3' metrics.txt ||
	fail "metrics: activation refusals: $(grep refused metrics.txt)"
note "ok: replays, an EK in no batch, an unclaimed TPM, an unrestricted AK refused"
exit 0
