# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=sh
# tpmdev.sh - a TPM device enrolling with devid by credential activation (docs/tpm.md), for
# tests; sourced after integration/lib.sh, swtpm.sh and ekpki.sh by a script that has set
# $devid, $tmp (its current directory), $pids (servers to kill on exit) and DEVID_DB. The device
# side is tpm2-tools, openssl with the tpm2 provider and curl.
#
#   tpmdev_setup          the EK PKI (pki/); TPM a (a/) manufactured with an RSA EK certificate
#                         from it (eks/a-rsa.der); the vendor TPMV (vd/) and its reel EK1 of that
#                         EK (reel/), trusted by devid through the public root only; tenants
#                         TPMV, OEM1, OEM2, tokens $VT (TPMV vendor) and $A1 (OEM1 admin), OEM1's
#                         CA (a file key; ca.pem); devid serve with its EST port (srv.pem;
#                         DEVID_SERVER, DEVID_CACERT, $est_addr); EK1 published, not claimed
#                         (reel/claim.txt); $udid, TPM a's UDID. No TPM is left running.
#   device PREFIX         in the running TPM: an AK (0x81000011), a signing key (0x81000010),
#                         their Certify and a CSR signed in the TPM: PREFIX-ak.pub,
#                         PREFIX-key.pub, PREFIX-attest, PREFIX-sig, PREFIX.csr, PREFIX-key.pem
#   tpmdev_enroll PREFIX LABEL
#                         the running TPM a, with device PREFIX's files, activates and enrolls
#                         at .well-known/est/LABEL/tpm/...: its LDevID in PREFIX-ldevid.pem
#   post PATH BODY        a JSON POST to the EST port: $status, the answer in ./resp
#   refused WHAT STATUS [PATTERN]
#                         the last post was refused with STATUS, its answer matching PATTERN
#   activate_req, credential, enroll_req, activate, csr_params_absent, sql, issued, t:
#                         the steps, as their comments say

sql() { # a number from the database, read with Python's own sqlite3
	python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' \
	    "$tmp/devid.db" "$1"
}
issued() { sql "SELECT COUNT(*) FROM certificates"; }
# tpm2-tools leave transient objects loaded; swtpm holds only three
t() { "$@" >>tools.log 2>&1 || { tail -5 tools.log >&2; return 1; }; tpm2_flushcontext -t; }

# post PATH BODY: a JSON POST to the EST port; the status in $status, the answer in resp
post() {
	status=$(curl -sS --cacert srv.pem -H 'Content-Type: application/json' -o resp \
	    -w '%{http_code}' --data-binary "@$2" "https://$est_addr/.well-known/est/$1") ||
		fail "curl $1 failed"
}
refused() { # WHAT WANT-STATUS [PATTERN]: the last post was refused, naming why
	[ "$status" = "$2" ] || fail "$1: HTTP $status, want $2: $(cat resp)"
	[ -z "${3:-}" ] || grep -q "$3" resp || fail "$1: the refusal does not say \"$3\": $(cat resp)"
	note "$1: $status $(cat resp)"
}

# activate_req OUT EK AK KEY ATTEST SIG CSR: the body of tpm/activate from the device's files
activate_req() {
	python3 - "$@" <<'EOF' || fail "activate request"
import base64, json, sys
out, ek, ak, key, attest, sig, csr = sys.argv[1:]
b = lambda p: base64.b64encode(open(p, "rb").read()).decode()
json.dump({"ekCertificate": b(ek), "akPublic": b(ak), "keyPublic": b(key),
           "certifyInfo": b(attest), "certifySignature": b(sig), "csr": b(csr)}, open(out, "w"))
EOF
}
# credential ANSWER OUT: the activation's id; OUT is what tpm2_activatecredential -i reads
credential() {
	python3 - "$1" "$2" <<'EOF' || fail "not an activation: $(cat "$1")"
import base64, json, sys
r = json.load(open(sys.argv[1]))
assert sorted(r) == ["credentialBlob", "encryptedSecret", "expiresAt", "id"], r
open(sys.argv[2], "wb").write(bytes.fromhex("badcc0de00000001") +
    base64.b64decode(r["credentialBlob"]) + base64.b64decode(r["encryptedSecret"]))
print(r["id"])
EOF
}
enroll_req() { # OUT ID SECRET-FILE
	python3 -c 'import base64, json, sys
json.dump({"id": sys.argv[2], "secret": base64.b64encode(open(sys.argv[3], "rb").read()).decode()},
    open(sys.argv[1], "w"))' "$@" || fail "enroll request"
}
# activate CRED OUT: TPM2_ActivateCredential with the EK's policy
# (PolicySecret(endorsement), the RSA EK's template L-1)
activate() {
	tpm2_flushcontext -t
	tpm2_startauthsession --policy-session -S session.ctx >>tools.log 2>&1 || return 1
	tpm2_policysecret -S session.ctx -c e >>tools.log 2>&1 &&
	    tpm2_activatecredential -c 0x81000011 -C 0x81010001 -i "$1" -o "$2" \
		-P session:session.ctx \
		>>tools.log 2>&1
	rc=$?
	tpm2_flushcontext session.ctx
	tpm2_flushcontext -t
	return $rc
}
# csr_params_absent CSR: tpm2-openssl 1.1 writes ecdsa-with-SHA256 with NULL parameters, which
# RFC 5758 3.2 forbids and devid refuses (as it refuses it from any device); the signature
# covers only the CertificationRequestInfo, so the device drops the NULL from the outer
# AlgorithmIdentifier (devid-agent signs through OpenSSL's own encoder and never sends it)
csr_params_absent() {
	python3 - "$1" <<'EOF' || fail "$1: the CSR's signature algorithm"
import sys
def tlv(b, i):  # (start of value, end) of the DER TLV at i
    n = b[i + 1]
    if n < 0x80:
        return i + 2, i + 2 + n
    k = n & 0x7F
    return i + 2 + k, i + 2 + k + int.from_bytes(b[i + 2:i + 2 + k], "big")
def der_len(n):
    if n < 0x80:
        return bytes([n])
    k = (n.bit_length() + 7) // 8
    return bytes([0x80 | k]) + n.to_bytes(k, "big")
b = open(sys.argv[1], "rb").read()
v, end = tlv(b, 0)
_, cri_end = tlv(b, v)
_, alg_end = tlv(b, cri_end)
alg = b[cri_end:alg_end]
oid = bytes.fromhex("06082a8648ce3d040302")
if alg == bytes.fromhex("300c") + oid + bytes.fromhex("0500"):
    alg = bytes.fromhex("300a") + oid
body = b[v:cri_end] + alg + b[alg_end:end]
open(sys.argv[1], "wb").write(b"\x30" + der_len(len(body)) + body)
EOF
}
# device PREFIX: in the running TPM, under the RSA EK (swtpm_setup made it persistent at
# 0x81010001, as TPM makers do), an AK
# (persistent 0x81000011), a signing key (persistent 0x81000010), its Certify by the AK, and a
# CSR signed in the TPM through tpm2-openssl. Persistent: they outlive swtpm's restarts.
device() {
	t tpm2_readpublic -c 0x81010001 -o "$1-ek.pub" || fail "$1: no EK at 0x81010001"
	t tpm2_createak -C 0x81010001 -c "$1-ak.ctx" -G ecc -g sha256 -s ecdsa -u "$1-ak.pub" ||
		fail "$1: createak"
	t tpm2_evictcontrol -C o -c "$1-ak.ctx" 0x81000011 || fail "$1: evictcontrol AK"
	t tpm2_createprimary -C o -g sha256 -G ecc256 -c "$1-srk.ctx" || fail "$1: createprimary"
	t tpm2_create -C "$1-srk.ctx" -G ecc256:ecdsa-sha256 -u "$1-key.pub" -r "$1-key.priv" \
	    -a "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign" || fail "$1: key"
	t tpm2_load -C "$1-srk.ctx" -u "$1-key.pub" -r "$1-key.priv" -c "$1-key.ctx" ||
		fail "$1: load"
	t tpm2_evictcontrol -C o -c "$1-key.ctx" 0x81000010 || fail "$1: evictcontrol key"
	t tpm2_certify -c 0x81000010 -C 0x81000011 -g sha256 -o "$1-attest" -s "$1-sig" ||
		fail "$1: certify"
	openssl req -provider tpm2 -provider default -new -key handle:0x81000010 \
	    -subj "/CN=$1" -outform DER -out "$1.csr" 2>>tools.log || fail "$1: CSR in the TPM"
	csr_params_absent "$1.csr"
	t tpm2_readpublic -c 0x81000010 -f pem -o "$1-key.pem" || fail "$1: readpublic"
}

# tpmdev_setup: see the top of this file
tpmdev_setup() {
	ekpki_make "$tmp/pki" || fail "the EK PKI"
	swtpm_manufacture "$tmp/a" --create-ek-cert --config "$tmp/pki/swtpm_setup.conf" ||
		fail "swtpm_setup a"
	mkdir eks
	swtpm_start "$tmp/a" || fail "swtpm a"
	ekpki_read_ek eks/a || fail "tpm2_nvread of a's EK certificate"
	swtpm_stop

	"$devid" vendor init --dir vd --vendor TPMV >/dev/null || fail "vendor init"
	cat pki/ekca.pem pki/ekca-cross.pem >chain.pem
	run "$devid" vendor mint --dir vd --batch EK1 --out reel --chain chain.pem --from-ek eks
	[ $rc = 0 ] || fail_run "mint --from-ek"
	# the manifest signer chains to the devid vendor root; the EKs only to the public root
	cat vd/root.pem pki/proot.pem >roots.pem
	"$devid" admin tenant add TPMV --kind vendor >/dev/null || fail "tenant"
	"$devid" admin tenant add OEM1 --kind oem >/dev/null || fail "tenant"
	"$devid" admin tenant add OEM2 --kind oem >/dev/null || fail "tenant"
	VT=$("$devid" admin token add TPMV --role vendor)
	A1=$("$devid" admin token add OEM1 --role admin)
	"$devid" admin trust add --vendor TPMV --root roots.pem --signer vd/signer.pem >/dev/null ||
		fail "trust add"
	run "$devid" admin ca init --tenant OEM1 --key-file "$tmp/ca.key"
	[ $rc = 0 ] || fail_run "ca init"
	"$devid" admin ca show --tenant OEM1 >ca.pem || fail "ca show"

	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout srv.key -out srv.pem \
	    >/dev/null 2>&1 || fail "server cert"
	"$devid" admin secrets-key init "file:$tmp/secrets.key" >/dev/null ||
		fail "secrets-key init"
	"$devid" serve --listen 127.0.0.1:0 --device-listen 127.0.0.1:0 --tls-cert srv.pem \
	    --tls-key srv.key --secrets-key "file:$tmp/secrets.key" >serve.out 2>serve.log &
	pids="$pids $!"
	wait_line serve.out 'EST on' serve
	DEVID_SERVER="$(sed -n 's/.*listening on //p' serve.out)"
	DEVID_CACERT="$tmp/srv.pem"
	export DEVID_SERVER DEVID_CACERT
	est_addr=$(sed -n 's|.*EST on https://\([^/ ]*\).*|\1|p' serve.out)
	[ -n "$est_addr" ] || fail "no EST address in: $(cat serve.out)"
	run env DEVID_TOKEN="$VT" "$devid" vendor publish reel
	[ $rc = 0 ] || fail_run "publish EK1"
	udid=$(openssl x509 -inform der -in eks/a-rsa.der -noout -pubkey |
	    openssl pkey -pubin -outform der | sha256sum | awk '{ print $1 }')
}

# tpmdev_enroll PREFIX LABEL: see the top of this file
tpmdev_enroll() {
	activate_req "$1.json" eks/a-rsa.der "$1-ak.pub" "$1-key.pub" "$1-attest" "$1-sig" "$1.csr"
	post "$2/tpm/activate" "$1.json"
	[ "$status" = 201 ] || fail "$1: activate: HTTP $status: $(cat resp)"
	tpmdev_id=$(credential resp "$1.cred")
	activate "$1.cred" "$1-secret" || fail "$1: the TPM cannot activate devid's credential"
	enroll_req "$1-enroll.json" "$tpmdev_id" "$1-secret"
	post "$2/tpm/enroll" "$1-enroll.json"
	[ "$status" = 200 ] || fail "$1: enroll: HTTP $status: $(cat resp)"
	base64 -d <resp >"$1.p7" &&
	    openssl pkcs7 -inform DER -in "$1.p7" -print_certs -out "$1-ldevid.pem" ||
		fail "$1: enroll answered no PKCS#7: $(head -c 300 resp)"
}
