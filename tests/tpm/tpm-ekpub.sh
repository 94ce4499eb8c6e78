# SPDX-License-Identifier: Apache-2.0
# tpm-ekpub.sh TOOL TESTS_DIR - an EK's public area rebuilt from its EK certificate
# (src/lib/tpm2_ekpub.c, through tpm2_attest_tool ekpub) is, byte for byte, the TPM2B_PUBLIC
# the TPM itself reports: a swtpm TPM manufactured with RSA 2048 and ECC P-384 EK
# certificates (ekpki.sh), read back from NV; compared with what tpm2_createek -G rsa and
# -G ecc write and with the persistent EKs swtpm_setup made (0x81010001 RSA, template L-1;
# 0x81010016 ECC P-384, template H-3). The P-256 EK of tpm2_createek -G ecc (template L-2)
# has no certificate in swtpm: the test's EK CA issues one for its key. A key no default
# template makes (RSA 3072, ECC P-521, RSA exponent 3) is refused, naming why.
set -u
me=tpm-ekpub
tool=$1
. "$2/integration/lib.sh"
. "$2/swtpm.sh"
. "$2/tpm/ekpki.sh"

swtpm_available || fail "swtpm, swtpm_setup or tpm2-tools missing (sh scripts/install-deps)"
make_tmp
trap 'swtpm_stop; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd $tmp"

ekpki_make "$tmp/pki" || fail "the EK PKI"
swtpm_manufacture "$tmp/t1" --create-ek-cert --config "$tmp/pki/swtpm_setup.conf" --ecc ||
	fail "swtpm_setup"
swtpm_start "$tmp/t1" || fail "swtpm"
ekpki_read_ek ek || fail "tpm2_nvread of the EK certificates"
[ -s ek-rsa.der ] && [ -s ek-p384.der ] || fail "swtpm made no RSA or no P-384 EK certificate"

same() { # REBUILT TPM'S WHAT
	cmp -s "$1" "$2" || fail "$3: rebuilt $(od -An -v -tx1 "$1" | tr -d ' \n'), the TPM has $(od -An -v -tx1 "$2" | tr -d ' \n')"
}

# RSA 2048, template L-1
"$tool" ekpub ek-rsa.der rsa.rebuilt || fail "ekpub of the RSA EK certificate"
tpm2_createek -c - -G rsa -u rsa.pub >createek-rsa.out 2>>tools.log || fail "tpm2_createek -G rsa"
same rsa.rebuilt rsa.pub "RSA 2048 EK (tpm2_createek)"
tpm2_readpublic -c 0x81010001 -f tss -o rsa-0x81010001.pub >/dev/null 2>>tools.log ||
	fail "tpm2_readpublic 0x81010001"
same rsa.rebuilt rsa-0x81010001.pub "RSA 2048 EK (0x81010001)"
note "ok: RSA 2048 EK (L-1) rebuilt byte for byte"

# ECC P-384, template H-3
"$tool" ekpub ek-p384.der p384.rebuilt || fail "ekpub of the P-384 EK certificate"
tpm2_readpublic -c 0x81010016 -f tss -o p384.pub >/dev/null 2>>tools.log ||
	fail "tpm2_readpublic 0x81010016"
same p384.rebuilt p384.pub "ECC P-384 EK (0x81010016)"
note "ok: ECC P-384 EK (H-3) rebuilt byte for byte"

# ECC P-256, template L-2: an EK certificate for the key tpm2_createek -G ecc made
tpm2_createek -c - -G ecc -u p256.pub >createek-ecc.out 2>>tools.log || fail "tpm2_createek -G ecc"
h=$(sed -n 's/^persistent-handle: *//p' createek-ecc.out)
[ -n "$h" ] || fail "tpm2_createek printed no handle: $(cat createek-ecc.out)"
tpm2_readpublic -c "$h" -f pem -o p256.pem >/dev/null 2>>tools.log || fail "tpm2_readpublic $h"
sed 's/keyEncipherment/keyAgreement/' pki/ek.ext >ecc.ext
openssl x509 -req -in pki/spare.csr -force_pubkey p256.pem -CA pki/ekca.pem \
    -CAkey pki/ekca.key -set_serial 0x7e10 -days 365 -extfile ecc.ext -outform der \
    -out ek-p256.der 2>>tools.log || fail "the P-256 EK certificate"
"$tool" ekpub ek-p256.der p256.rebuilt || fail "ekpub of the P-256 EK certificate"
same p256.rebuilt p256.pub "ECC P-256 EK (tpm2_createek)"
note "ok: ECC P-256 EK (L-2) rebuilt byte for byte"

# keys no default EK template makes
other() { # NAME GENPKEY-ARGS... : an EK-profile certificate of such a key
	n=$1
	shift
	openssl genpkey "$@" -out "$n.key" 2>>tools.log &&
	    openssl req -new -key "$n.key" -subj /CN=x -out "$n.csr" 2>>tools.log &&
	    openssl x509 -req -in "$n.csr" -CA pki/ekca.pem -CAkey pki/ekca.key -days 365 \
		-extfile pki/ek.ext -outform der -out "$n.der" 2>>tools.log || fail "certificate $n"
}
other rsa3072 -algorithm RSA -pkeyopt rsa_keygen_bits:3072
other p521 -algorithm EC -pkeyopt ec_paramgen_curve:P-521
other e3 -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -pkeyopt rsa_keygen_pubexp:3
for c in "rsa3072:RSA 3072 bits, want 2048" "p521:ECC curve secp521r1, want NIST P-256 or P-384" \
    "e3:RSA exponent is not 65537"; do
	run "$tool" ekpub "${c%%:*}.der" "${c%%:*}.rebuilt"
	[ $rc = 1 ] && grep -q "${c#*:}" err || fail_run "ekpub of ${c%%:*} must refuse: ${c#*:}"
	[ ! -e "${c%%:*}.rebuilt" ] || fail "a refused ekpub wrote ${c%%:*}.rebuilt"
done
note "ok: RSA 3072, ECC P-521 and exponent 3 refused, naming why"
finish
