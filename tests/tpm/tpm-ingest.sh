#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# TPMs registered by their EK certificates, end to end on 127.0.0.1: two swtpm TPMs are
# manufactured with EK certificates (RSA 2048 and ECC P-384) from a local "EK CA" that a "TPM
# vendor root" signs and a "public root" cross-signs (ekpki.sh); the EK certificates are read
# back from the TPMs' NV, minted into a reel (devid vendor mint --from-ek) with both EK CA
# certificates in x5c, the vendor's first (OpenSSL 3.0 alone fails on that order), published
# to devid serve trusting only the public root for them, and claimed: the device list shows
# kind tpm and the UDIDs (SHA-256 of each EK's SubjectPublicKeyInfo, computed with openssl).
# A reel whose EK certificate chains only through an expired cross-certificate is refused and
# leaves nothing; an EK certificate without the EKU is refused, naming the rule.
# Usage: tpm-ingest.sh DEVID
me=tpm-ingest
. "$(dirname "$0")/../integration/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../swtpm.sh"
. "$here/ekpki.sh"
devid=${1:-}
need_devid "$devid"
swtpm_available || fail "swtpm, swtpm_setup or tpm2-tools is not installed (sh scripts/install-deps)"
command -v curl >/dev/null || fail "curl is not installed"
make_tmp
pids=""
trap 'swtpm_stop; for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd"
export DEVID_DB="sqlite:$tmp/devid.db"

ekpki_make "$tmp/pki" || fail "the EK PKI"
mkdir eks
for t in t1 t2; do
	swtpm_manufacture "$tmp/$t" --create-ek-cert --config "$tmp/pki/swtpm_setup.conf" --ecc ||
		fail "swtpm_setup $t"
	swtpm_start "$tmp/$t" || fail "swtpm $t"
	ekpki_read_ek "eks/$t" || fail "tpm2_nvread of $t's EK certificates"
	swtpm_stop
done
[ "$(ls eks | wc -l)" = 4 ] || fail "4 EK certificates expected: $(ls eks)"
# one of them as PEM: both forms are read
openssl x509 -inform der -in eks/t2-p384.der -out eks/t2-p384.pem && rm eks/t2-p384.der ||
	fail "PEM"
udid_of() { # CERT: lowercase hex SHA-256 of its SubjectPublicKeyInfo
	case $1 in *.der) form=der ;; *) form=pem ;; esac
	openssl x509 -inform $form -in "$1" -noout -pubkey | openssl pkey -pubin -outform der |
		sha256sum | awk '{ print $1 }'
}
for f in eks/*; do udid_of "$f"; done | sort >want.udids

"$devid" vendor init --dir vd --vendor TPMV >/dev/null || fail "vendor init"
cat pki/ekca.pem pki/ekca-cross.pem >chain.pem
run "$devid" vendor mint --dir vd --batch EK1 --out reel --chain chain.pem --from-ek eks
[ $rc = 0 ] || fail_run "mint --from-ek"
grep -q "minted 4 TPMs" out || fail_run "4 TPMs minted"
# the manifest signer chains to the devid vendor root; the EKs only to the public root
cat vd/root.pem pki/proot.pem >roots.pem
run "$devid" vendor verify reel --root roots.pem --signer vd/signer.pem
[ $rc = 0 ] || fail_run "vendor verify of the TPM reel (public root trusted)"
run "$devid" vendor verify reel --root vd/root.pem --signer vd/signer.pem
[ $rc != 0 ] && grep -q "x5c does not reach a trusted vendor root" out ||
	fail_run "vendor verify without the public root must refuse"
# the XML form of a TPM reel (docs/xml-manifest.md): minted so, and converted, it verifies alike
run "$devid" vendor mint --dir vd --batch EK1 --out reelx --chain chain.pem --from-ek eks --format xml
[ $rc = 0 ] && [ -f reelx/manifest.xml ] && [ ! -e reelx/manifest.json ] ||
	fail_run "mint --from-ek --format xml"
run "$devid" vendor verify reelx --root roots.pem --signer vd/signer.pem
[ $rc = 0 ] && grep -q "4 entries, 4 accepted" out || fail_run "vendor verify of the XML TPM reel"
mkdir reelc && cp reel/batch.json reel/claim.txt reelc/ || fail "copy reel"
"$devid" vendor convert reel/manifest.json reelc/manifest.xml >/dev/null || fail "convert"
"$devid" vendor verify reel --root vd/root.pem --signer vd/signer.pem >verify-json.out
run "$devid" vendor verify reelc --root vd/root.pem --signer vd/signer.pem
[ $rc != 0 ] && cmp -s out verify-json.out ||
	fail_run "the XML form of the TPM reel is not verified as its JSON form"
rm -rf reelx reelc

"$devid" admin tenant add TPMV --kind vendor >/dev/null || fail "tenant"
"$devid" admin tenant add OEM1 --kind oem >/dev/null || fail "tenant"
VT=$("$devid" admin token add TPMV --role vendor)
A1=$("$devid" admin token add OEM1 --role admin)
"$devid" admin trust add --vendor TPMV --root roots.pem --signer vd/signer.pem >/dev/null ||
	fail "trust add"
: >serve.out
"$devid" admin secrets-key init "file:$tmp/secrets.key" >/dev/null || fail "secrets-key init"
"$devid" serve --listen 127.0.0.1:0 --secrets-key "file:$tmp/secrets.key" >serve.out \
    2>>serve.log &
pids="$pids $!"
wait_line serve.out 'listening on' serve
url=$(sed -n 's/.*listening on //p' serve.out)
export DEVID_SERVER=$url

run env DEVID_TOKEN="$VT" "$devid" vendor publish reel
[ $rc = 0 ] || fail_run "publish of the TPM reel"
run env DEVID_TOKEN="$A1" "$devid" claim "$(cat reel/claim.txt)"
[ $rc = 0 ] || fail_run "claim"
api GET "/api/v1/devices?batch=TPMV/EK1"
[ "$status" = 200 ] || fail "device list: $status $(cat body)"
python3 -c 'import json,sys
d = json.load(open("body"))["devices"]
assert all(x["kind"] == "tpm" for x in d), d
print("\n".join(sorted(x["udid"] for x in d)))' >got.udids || fail "device kinds: $(cat body)"
cmp -s want.udids got.udids || fail "UDIDs: want $(cat want.udids), got $(cat got.udids)"
udid=$(head -1 want.udids)
api GET "/api/v1/devices/$udid"
grep -q '"kind": *"tpm"' body && grep -q '"keyType": *"\(RSA 2048\|EC P-384\)"' body ||
	fail "device $udid: $(cat body)"
note "ok: 4 EKs of 2 swtpm TPMs published, claimed, listed as kind tpm with their UDIDs"

# an EK certificate whose only path to the public root is an expired cross-certificate
cat pki/ekca.pem pki/ekca-cross-expired.pem >chain-expired.pem
run "$devid" vendor mint --dir vd --batch EK2 --out reel2 --chain chain-expired.pem \
    --from-ek pki/spare-ek.pem
[ $rc = 0 ] || fail_run "mint of the expired-path reel"
run env DEVID_TOKEN="$VT" "$devid" vendor publish reel2
[ $rc != 0 ] || fail_run "a reel reaching the public root only through an expired cross-certificate was accepted"
grep -q "depth 1: certificate has expired" err || fail_run "the refusal names the expired cross-certificate"
# nothing was left: the same EK, with a valid path, goes in under the same batch name
rm -rf reel2
run "$devid" vendor mint --dir vd --batch EK2 --out reel2 --chain chain.pem --from-ek pki/spare-ek.pem
[ $rc = 0 ] || fail_run "mint EK2"
run env DEVID_TOKEN="$VT" "$devid" vendor publish reel2
[ $rc = 0 ] || fail_run "the refused reel left something behind: the good one is refused"
note "ok: an expired cross-certificate as the only path is refused and leaves nothing"

# an EK certificate without tcg-kp-EKCertificate: mint refuses it, and so does the server
run "$devid" vendor mint --dir vd --batch EK3 --out reel3 --chain chain.pem \
    --from-ek pki/spare-noeku.pem
[ $rc != 0 ] && grep -q "TCG EK profile: extendedKeyUsage missing" err ||
	fail_run "mint must refuse an EK certificate without the EKU, naming the rule"
[ ! -e reel3 ] || fail "a refused mint left reel3"
"$devid" vendor mint --dir vd --batch EK3 --out reel3 --chain chain.pem \
    --from-ek pki/spare-ek.pem >/dev/null || fail "mint EK3"
python3 "$here/resign_entry.py" reel3/manifest.json pki/spare-noeku.pem vd/signer.key ||
	fail "re-signing EK3"
run env DEVID_TOKEN="$VT" "$devid" vendor publish reel3
[ $rc != 0 ] || fail_run "an EK certificate without the EKU was accepted"
grep -q "x5c\[0\] EK certificate: TCG EK profile: extendedKeyUsage missing: tcg-kp-EKCertificate (2.23.133.8.1) required" err ||
	fail_run "the refusal names the EKU rule"
note "ok: an EK certificate without the EKU is refused, naming the rule"
