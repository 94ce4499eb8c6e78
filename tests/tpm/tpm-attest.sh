# SPDX-License-Identifier: Apache-2.0
# tpm-attest.sh TOOL TESTS_DIR - the server's half of enrollment by credential activation
# (src/lib/tpm2_attest.c, through tpm2_attest_tool) against two real TPMs (swtpm) driven by
# tpm2-tools as a device would drive its TPM:
#   - MakeCredential in software to an RSA 2048, an ECC P-256 and an ECC P-384 EK, for an
#     ECC and an RSA AK: TPM2_ActivateCredential gives the secret back; the blob has the form
#     of tpm2_makecredential's;
#   - the names and public keys computed from TPM2B_PUBLIC are the TPM's own;
#   - TPM2_Certify of a signing key by the AK verifies;
# and what must be refused: activation by a TPM holding another EK or by another AK, a Certify
# by another AK or of another key, a tampered or truncated attest, an AK that is not
# restricted or not fixedTPM, a signing key that may decrypt or leave its TPM.
set -u
me=tpm-attest
tool=$1
. "$2/integration/lib.sh"
. "$2/swtpm.sh"

# a TPM test without its TPM fails: swtpm and tpm2-tools come with scripts/install-deps
swtpm_available || fail "swtpm, swtpm_setup or tpm2-tools missing (sh scripts/install-deps)"
make_tmp
trap 'swtpm_stop; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd $tmp"

hex() { od -An -v -tx1 "$1" | tr -d ' \n'; }
unhex() { /usr/bin/python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' "$1"; }
# tpm2-tools leave transient objects loaded; swtpm holds only three
t() { "$@" >>tools.log 2>&1 || { tail -5 tools.log >&2; return 1; }; tpm2_flushcontext -t; }

# EK policy sessions: PolicySecret(endorsement); the P-384 EK (TCG template H-3) ORs it
# with PolicyB, SHA-384 digests from the TCG EK Credential Profile
activate() { # EK.ctx HASH AK.ctx CRED OUT
	tpm2_flushcontext -t
	tpm2_startauthsession -g "$2" --policy-session -S session.ctx >>tools.log 2>&1 || return 1
	tpm2_policysecret -S session.ctx -c e >>tools.log 2>&1 &&
	    if [ "$2" = sha384 ]; then
		    unhex 8bbf2266537c171cb56e403c4dc1d4b64f432611dc386e6f532050c3278c930e143e8bb1133824ccb431053871c6db53 >pa.dig
		    unhex d6032ce61f2fb3c240eb3cf6a33237ef2b6a16f4293c22b455e261cffd217ad5b4947c2d73e63005eed2dc2b3593d165 >pb.dig
		    tpm2_policyor -S session.ctx -l sha384:pa.dig,pb.dig >>tools.log 2>&1
	    fi &&
	    tpm2_activatecredential -c "$3" -C "$1" -i "$4" -o "$5" -P session:session.ctx \
		>>tools.log 2>&1
	rc=$?
	tpm2_flushcontext session.ctx
	tpm2_flushcontext -t
	return $rc
}

# --- TPM A: the device -------------------------------------------------------------------
swtpm_manufacture "$tmp/a" || fail "swtpm_setup (TPM A)"
swtpm_start "$tmp/a" || fail "swtpm (TPM A)"
t tpm2_createek -c ek-rsa.ctx -G rsa -u ek-rsa.pem -f pem || fail "createek rsa"
t tpm2_createek -c ek-p256.ctx -G ecc256 -u ek-p256.pem -f pem || fail "createek ecc256"
t tpm2_createek -c ek-p384.ctx -G ecc384 -u ek-p384.pem -f pem || fail "createek ecc384"
t tpm2_createak -C ek-rsa.ctx -c ak.ctx -G ecc -g sha256 -s ecdsa -u ak.pub -n ak.name ||
    fail "createak ecc"
t tpm2_createak -C ek-rsa.ctx -c ak-rsa.ctx -G rsa -g sha256 -s rsassa -u ak-rsa.pub \
    -n ak-rsa.name || fail "createak rsa"
t tpm2_createak -C ek-p256.ctx -c ak-p256.ctx -G ecc -g sha256 -s ecdsa -u ak-p256.pub ||
    fail "createak under the P-256 EK"
t tpm2_createak -C ek-p384.ctx -c ak-p384.ctx -G ecc -g sha256 -s ecdsa -u ak-p384.pub ||
    fail "createak under the P-384 EK"

[ "$("$tool" name ak.pub)" = "$(hex ak.name)" ] || fail "ECC AK: name differs from the TPM's"
[ "$("$tool" name ak-rsa.pub)" = "$(hex ak-rsa.name)" ] || fail "RSA AK: name differs"
for k in ak ak-rsa ak-p256 ak-p384; do
	"$tool" ak-check $k.pub || fail "$k: a tpm2_createak AK refused"
done

head -c 32 /dev/urandom >secret
for pair in rsa:ak:sha256 rsa:ak-rsa:sha256 p256:ak-p256:sha256 p384:ak-p384:sha384; do
	ek=${pair%%:*} rest=${pair#*:}
	ak=${rest%%:*} hash=${rest#*:}
	"$tool" makecred ek-$ek.pem $ak.pub secret cred-$ak || fail "makecred $ek/$ak"
	rm -f out
	activate ek-$ek.ctx "$hash" $ak.ctx cred-$ak out ||
	    fail "EK $ek, AK $ak: TPM2_ActivateCredential refused devid's credential"
	cmp -s out secret || fail "EK $ek, AK $ak: activation gave another secret"
done
note "MakeCredential to RSA 2048, P-256 and P-384 EKs activates"

# the same form as tpm2-tools' own MakeCredential (RSA and P-256; 5.4 cannot do P-384)
for ek in rsa p256; do
	alg=rsa
	[ $ek = p256 ] && alg=ecc
	ak=ak
	[ $ek = p256 ] && ak=ak-p256
	tpm2_makecredential -T none -u ek-$ek.pem -G $alg -s secret \
	    -n "$("$tool" name $ak.pub)" -o tools-$ek.cred >>tools.log 2>&1 ||
	    fail "tpm2_makecredential $ek"
	[ "$(wc -c <tools-$ek.cred)" = "$(wc -c <cred-$ak)" ] ||
	    fail "EK $ek: blob of $(wc -c <cred-$ak) bytes, tpm2-tools makes $(wc -c <tools-$ek.cred)"
	[ "$(head -c 12 tools-$ek.cred | hex /dev/stdin)" = "$(head -c 12 cred-$ak | hex /dev/stdin)" ] ||
	    fail "EK $ek: blob header and sizes differ from tpm2-tools'"
done

# a credential bound to one AK's name is not activated with another AK of the same TPM
rm -f out
activate ek-rsa.ctx sha256 ak-rsa.ctx cred-ak out && fail "activated with another AK"
[ -s out ] && fail "a secret came out for another AK"

# --- the signing key and its Certify ------------------------------------------------------
t tpm2_createprimary -C o -g sha256 -G ecc256 -c srk.ctx || fail "createprimary"
mkkey() { # NAME ATTRIBUTES
	t tpm2_create -C srk.ctx -G ecc256:ecdsa-sha256 -a "$2" -u "$1.pub" -r "$1.priv" &&
	    t tpm2_load -C srk.ctx -u "$1.pub" -r "$1.priv" -c "$1.ctx"
}
mkkey key "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign" || fail "signing key"
"$tool" key-check key.pub || fail "a fixedTPM P-256 signing key refused"
t tpm2_readpublic -c key.ctx -f pem -o key-tpm.pem || fail "readpublic"
"$tool" spki key.pub >key-devid.pem || fail "spki"
cmp -s key-tpm.pem key-devid.pem || fail "the signing key's SPKI differs from the TPM's"

t tpm2_certify -c key.ctx -C ak.ctx -g sha256 -o attest -s sig || fail "certify by the AK"
"$tool" certify ak.pub key.pub attest sig - || fail "a Certify by the AK refused"
printf '\000\377\125\252' >q
"$tool" certify ak.pub key.pub attest sig q || fail "qualifyingData 00ff55aa refused"
printf 'nonce' >q2
"$tool" certify ak.pub key.pub attest sig q2 2>err && fail "another qualifyingData accepted"
grep -q qualifyingData err || fail "qualifyingData refusal: $(cat err)"
t tpm2_certify -c key.ctx -C ak-rsa.ctx -g sha256 -o attest-rsa -s sig-rsa || fail "certify rsa"
"$tool" certify ak-rsa.pub key.pub attest-rsa sig-rsa - || fail "a Certify by the RSA AK refused"
note "TPM2_Certify by ECC and RSA AKs verifies"

# by another AK: the attest and signature of ak-rsa offered as ak's, and the other way round
"$tool" certify ak.pub key.pub attest-rsa sig-rsa - 2>err && fail "Certify by another AK accepted"
"$tool" certify ak-rsa.pub key.pub attest sig - 2>err && fail "Certify by another AK accepted"
# of another key: the certify is about key, not key2
mkkey key2 "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign" || fail "key2"
"$tool" certify ak.pub key2.pub attest sig - 2>err && fail "Certify of another key accepted"
grep -q "certified name" err || fail "other key: $(cat err)"

# tampered: one byte of the clock info, the magic; truncated; a byte added
cp attest bad && printf '\001' | dd of=bad bs=1 seek=60 conv=notrunc 2>/dev/null
cmp -s attest bad && fail "tamper did not change the attest"
"$tool" certify ak.pub key.pub bad sig - 2>err && fail "tampered attest accepted"
grep -q "does not verify" err || fail "tampered attest: $(cat err)"
cp attest bad && printf '\377' | dd of=bad bs=1 seek=3 conv=notrunc 2>/dev/null
"$tool" certify ak.pub key.pub bad sig - 2>err && fail "bad magic accepted"
grep -q "TPM_GENERATED_VALUE" err || fail "bad magic: $(cat err)"
head -c 100 attest >bad
"$tool" certify ak.pub key.pub bad sig - 2>err && fail "truncated attest accepted"
{ cat attest; printf x; } >bad
"$tool" certify ak.pub key.pub bad sig - 2>err && fail "attest with a trailing byte accepted"
{ cat ak.pub; printf x; } >bad
"$tool" name bad 2>/dev/null && fail "TPM2B_PUBLIC with a trailing byte accepted"

# keys that prove nothing: an unrestricted "AK" (would sign forged attests), an AK that may
# leave the TPM, a signing key that also decrypts or was imported
mkkey free "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign" || fail "free key"
"$tool" ak-check free.pub 2>err && fail "an unrestricted AK accepted"
grep -q "restricted clear" err || fail "unrestricted AK: $(cat err)"
t tpm2_create -C srk.ctx -G ecc256:ecdsa-sha256:null -u moving.pub -r moving.priv \
    -a "sensitivedataorigin|userwithauth|restricted|sign" || fail "create a duplicable AK"
"$tool" ak-check moving.pub 2>err && fail "an AK without fixedTPM accepted"
grep -q "fixedTPM clear" err || fail "duplicable AK: $(cat err)"
"$tool" key-check ak.pub 2>err && fail "a restricted key accepted as the signing key"
t tpm2_create -C srk.ctx -G ecc256 -u dec.pub -r dec.priv \
    -a "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign|decrypt" ||
    fail "a sign+decrypt key"
"$tool" key-check dec.pub 2>err && fail "a signing key that decrypts accepted"
grep -q "decrypt set" err || fail "sign+decrypt key: $(cat err)"
t tpm2_create -C srk.ctx -G ecc256:ecdsa-sha256 -u dup.pub -r dup.priv \
    -a "sensitivedataorigin|userwithauth|sign" || fail "create a duplicable signing key"
"$tool" key-check dup.pub 2>err && fail "a signing key without fixedTPM accepted"
"$tool" key-check ak-rsa.pub 2>/dev/null && fail "an RSA key accepted as the signing key"
note "unrestricted or movable AKs and movable, decrypting or restricted signing keys refused"
swtpm_stop

# --- TPM B: another TPM with another EK ---------------------------------------------------
swtpm_manufacture "$tmp/b" || fail "swtpm_setup (TPM B)"
swtpm_start "$tmp/b" || fail "swtpm (TPM B)"
t tpm2_createek -c b-ek.ctx -G rsa -u b-ek.pem -f pem || fail "TPM B: createek"
t tpm2_createak -C b-ek.ctx -c b-ak.ctx -G ecc -g sha256 -s ecdsa -u b-ak.pub || fail "B: AK"
# B claims A's identity: devid wraps to A's EK for B's AK; B cannot activate it
"$tool" makecred ek-rsa.pem b-ak.pub secret cred-b || fail "makecred for B's AK"
rm -f out
activate b-ek.ctx sha256 b-ak.ctx cred-b out && fail "TPM B activated a credential made for A's EK"
[ -s out ] && fail "TPM B recovered a secret"
# B replays A's credential with its own keys
rm -f out
activate b-ek.ctx sha256 b-ak.ctx cred-ak out && fail "TPM B activated A's credential"
# B certifies a key of its own with its AK, offered as signed by A's AK
t tpm2_createprimary -C o -g sha256 -G ecc256 -c b-srk.ctx || fail "B: createprimary"
t tpm2_create -C b-srk.ctx -G ecc256:ecdsa-sha256 -u b-key.pub -r b-key.priv \
    -a "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign" || fail "B: key"
t tpm2_load -C b-srk.ctx -u b-key.pub -r b-key.priv -c b-key.ctx || fail "B: load"
t tpm2_certify -c b-key.ctx -C b-ak.ctx -g sha256 -o b-attest -s b-sig || fail "B: certify"
"$tool" certify b-ak.pub b-key.pub b-attest b-sig - || fail "B's own Certify refused"
"$tool" certify ak.pub b-key.pub b-attest b-sig - 2>/dev/null &&
    fail "a Certify by TPM B's AK accepted for A's AK"
note "another TPM can neither activate nor certify for A"
exit 0
