#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# independent-verify: a reel minted by devid is accepted by checkers that share no code with
# devid (Python's cryptography package, the openssl command line), and a reel with one payload
# byte flipped is rejected by them and by `devid vendor verify`.
#
# Usage: sh independent-verify.sh DEVID
set -u
me=independent-verify
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

devid=${1:-}
need_devid "$devid"
py=/usr/bin/python3 # Debian's interpreter: the one python3-cryptography is installed for
[ -x "$py" ] || skip "$py is missing (Debian package python3)"
"$py" -c 'import cryptography' 2>/dev/null ||
	skip "$py has no cryptography module (Debian package python3-cryptography)"
need_tool openssl openssl
verifier=$here/verify_reel.py
[ -r "$verifier" ] || fail "$verifier: missing"

make_tmp
vendor=ACME.CHIPS
batch=R-2024.07-001
count=20
keep=3
v=$tmp/vendor
reel=$tmp/reel

run "$devid" vendor init --dir "$v" --vendor "$vendor"
[ "$rc" -eq 0 ] || fail_run "vendor init exited $rc"
run "$devid" vendor mint --dir "$v" --batch "$batch" --count $count --out "$reel" \
    --keep-keys $keep --threads 2
[ "$rc" -eq 0 ] || fail_run "vendor mint exited $rc"
grep -q "^minted $count chips" "$tmp/out" || fail_run "mint did not say \"minted $count chips\""

# the manifest signer chains to the root that also anchors the chips' TLS client
# certificates: its EKU (documentSigning, RFC 9336) keeps it from passing for one
openssl verify -purpose sslclient -CAfile "$v/root.pem" "$v/signer.pem" >"$tmp/ov" 2>&1 &&
	fail "openssl verify -purpose sslclient accepts the manifest signer: $(cat "$tmp/ov")"
grep -q 'unsuitable certificate purpose' "$tmp/ov" ||
	fail "openssl refuses the signer for another reason: $(cat "$tmp/ov")"
openssl verify -purpose any -CAfile "$v/root.pem" "$v/signer.pem" >/dev/null 2>&1 ||
	fail "the manifest signer does not chain to the root"
openssl x509 -in "$v/signer.pem" -noout -ext extendedKeyUsage 2>/dev/null |
	grep -q '1\.3\.6\.1\.5\.5\.7\.3\.36' || fail "the signer's EKU is not documentSigning"
chip=$(ls "$reel"/chips/*.pem | sed -n 1p)
openssl verify -purpose sslclient -CAfile "$v/root.pem" -untrusted "$v/issuing.pem" "$chip" \
    >/dev/null 2>&1 || fail "a birth certificate fails openssl verify -purpose sslclient"

# --- 1. the Python verifier accepts the reel -------------------------------------------
run "$py" "$verifier" "$reel" "$v/root.pem" "$v/signer.pem" --issuing "$v/issuing.pem" \
    --vendor "$vendor" --batch "$batch" --count $count
[ "$rc" -eq 0 ] || fail_run "the independent verifier rejects a freshly minted reel"
note "$(cat "$tmp/out")"

# --- 2. ... and rejects it with one payload byte flipped --------------------------------
# Flips one bit of a letter of entry 5's decoded payload (the JSON stays valid, so only the
# signature can catch it) and writes the entry back in base64url.
bad=$tmp/bad
cp -R "$reel" "$bad" || fail "cannot copy the reel"
"$py" - "$bad/manifest.json" <<'EOF' || fail "cannot tamper with the copy's manifest"
import base64, json, re, sys
path = sys.argv[1]
entries = json.load(open(path))
b64 = entries[5]["payload"]
raw = bytearray(base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)))
pos = re.search(rb'"model" *: *"', raw).end()
raw[pos] ^= 0x01
entries[5]["payload"] = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
assert entries[5]["payload"] != b64
json.dump(entries, open(path, "w"), indent=1)
EOF
cmp -s "$reel/manifest.json" "$bad/manifest.json" && fail "the tampered copy is unchanged"
run "$py" "$verifier" "$bad" "$v/root.pem" "$v/signer.pem" --issuing "$v/issuing.pem"
[ "$rc" -ne 0 ] || fail_run "the independent verifier accepts a payload with a flipped byte"
grep -q '^verify_reel: entry 5 .*signature does not verify' "$tmp/err" ||
	fail_run "the independent verifier did not reject entry 5 for its signature"
[ "$(grep -c '^verify_reel: entry' "$tmp/err")" -eq 1 ] ||
	fail_run "the independent verifier rejected more than the tampered entry"
run "$devid" vendor verify "$bad" --root "$v/root.pem" --signer "$v/signer.pem"
[ "$rc" -eq 1 ] || fail_run "devid vendor verify exited $rc on a tampered reel, expected 1"
grep -q 'entry 5' "$tmp/out" || fail_run "devid vendor verify did not name entry 5"

# a claim code that is not the one hashed into batch.json is caught too
cp -R "$reel" "$tmp/badclaim" || fail "cannot copy the reel"
sed 's/:[A-Z2-7]\{26\}$/:AAAAAAAAAAAAAAAAAAAAAAAAAA/' "$reel/claim.txt" >"$tmp/badclaim/claim.txt"
run "$py" "$verifier" "$tmp/badclaim" "$v/root.pem" "$v/signer.pem"
[ "$rc" -ne 0 ] || fail_run "the independent verifier accepts a claim.txt with the wrong code"
grep -q 'claimSha256' "$tmp/err" || fail_run "the independent verifier did not name claimSha256"

# --- 3. every rule of the verifier fires, and devid's own verify agrees -----------------
# Each mutation breaks one rule in entry 1 (or batch.json) and re-signs with the vendor's keys,
# so only that rule can catch it. Columns: mutation | what the independent verifier must
# say | what `devid vendor verify` must say, or "-" where DESIGN.md's acceptance rules do not
# cover it (the birth certificate profile is the vendor's business, not ingest's).
run "$devid" vendor init --dir "$tmp/other" --vendor OTHER
[ "$rc" -eq 0 ] || fail_run "second vendor init exited $rc"
while IFS='|' read -r mu want_py want_devid; do
	m=$tmp/m-$mu
	"$py" "$here/mutate_reel.py" "$reel" "$v" "$mu" "$m" "$tmp/other" ||
		fail "mutate_reel.py $mu failed"
	run "$py" "$verifier" "$m" "$v/root.pem" "$v/signer.pem" --issuing "$v/issuing.pem"
	[ "$rc" -eq 1 ] || fail_run "mutation $mu: the independent verifier exited $rc, expected 1"
	grep -Eq -- "$want_py" "$tmp/err" ||
		fail_run "mutation $mu: the independent verifier did not say /$want_py/"
	run "$devid" vendor verify "$m" --root "$v/root.pem" --signer "$v/signer.pem"
	if [ "$want_devid" = - ]; then
		# not asserted; said so the log shows where the two verifiers differ
		[ "$rc" -eq 0 ] && note "note: devid vendor verify accepts mutation $mu"
		rm -rf "$m"
		continue
	fi
	[ "$rc" -eq 1 ] || fail_run "mutation $mu: devid vendor verify exited $rc, expected 1"
	grep -Eq -- "$want_devid" "$tmp/out" ||
		fail_run "mutation $mu: devid vendor verify did not say /$want_devid/"
	case $want_devid in
	'^rejected: entry 1:'*)
		grep -q "^reel .*: $count entries, $((count - 1)) accepted, 1 rejected: REJECTED" \
		    "$tmp/out" || fail_run "mutation $mu: devid should reject entry 1 alone"
		;;
	esac
	rm -rf "$m"
done <<'EOF'
header-uid|entry 1 .*header.uniqueId .* != payload uniqueId|^rejected: entry 1: header.uniqueId
group-id|entry 1 .*groupId 'OTHER-BATCH' is not the batch id|^rejected: entry 1: groupId
jwk-x|entry 1 .*JWK x/y differ|^rejected: entry 1: JWK x/y
alg|entry 1 .*alg is 'ES384'|^rejected: entry 1: .*alg
x5t|entry 1 .*x5t#S256 .* is not the SHA-256 of signer.pem|^rejected: entry 1: .*signer not trusted
ca-true|entry 1 .*basicConstraints is not critical CA:FALSE|^rejected: entry 1: .*CA bit
foreign-issuer|entry 1 .*x5c\[0\]: issuer|^rejected: entry 1: x5c
foreign-chain|entry 1 .*x5c\[1\]: issuer .* is not .*Root CA|^rejected: entry 1: x5c
count|batch.json: count 21, manifest has 20 entries|^rejected batch: .*count
drop-entry|batch.json: count 20, manifest has 19 entries|^rejected batch: .*count
cn|entry 1 .*subject CN '0{64}' is not the UDID|-
not-after|entry 1 .*notAfter 2049-12-31 23:59:59|-
EOF

# --- 4. the openssl command line agrees on one kept chip --------------------------------
nkeys=$(find "$reel/chips" -name '*.key' | wc -l)
npems=$(find "$reel/chips" -name '*.pem' | wc -l)
{ [ "$nkeys" -eq $keep ] && [ "$npems" -eq $keep ]; } ||
	fail "chips/ holds $npems certificates and $nkeys keys, expected $keep of each"
pem=$(find "$reel/chips" -name '*.pem' | sort | sed -n 1p)
udid=${pem##*/}
udid=${udid%.pem}
key=$reel/chips/$udid.key
printf '%s\n' "$udid" | grep -Eq '^[0-9a-f]{64}$' || fail "chip file name $udid is not a UDID"
[ -r "$key" ] || fail "chips/$udid.pem has no chips/$udid.key beside it"

run openssl verify -CAfile "$v/root.pem" -untrusted "$v/issuing.pem" "$pem"
[ "$rc" -eq 0 ] || fail_run "openssl verify rejects chips/$udid.pem"
run openssl verify -purpose sslclient -CAfile "$v/root.pem" -untrusted "$v/issuing.pem" "$pem"
[ "$rc" -eq 0 ] || fail_run "openssl verify -purpose sslclient rejects chips/$udid.pem"

# the UDID is the SHA-256 of the DER SubjectPublicKeyInfo
run sh -c 'openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER |
    openssl dgst -sha256 -r' sh "$pem"
spki_hash=$(awk '{ print $1 }' "$tmp/out")
[ "$spki_hash" = "$udid" ] ||
	fail "SHA-256 of the SPKI is $spki_hash, the file is named $udid"

run openssl x509 -in "$pem" -noout -text
[ "$rc" -eq 0 ] || fail_run "openssl x509 -text fails on chips/$udid.pem"
cp "$tmp/out" "$tmp/text"
# expect_line ERE WHAT: some line of the certificate text matches ERE
expect_line() {
	grep -Eq "$1" "$tmp/text" || {
		sed 's/^/    /' "$tmp/text" >&2
		fail "chips/$udid.pem: $2 (no line matches /$1/)"
	}
}
# expect_ext NAME VALUE-ERE CRIT: the extension's header line and the line after it
expect_ext() {
	got=$(awk -v name="X509v3 $1:" '
	    index($0, name) { hdr = $0; getline; sub(/^ +/, ""); sub(/ +$/, "")
		print (hdr ~ /critical/ ? "critical" : "noncritical") " " $0; exit }' "$tmp/text")
	[ -n "$got" ] || fail "chips/$udid.pem: no $1 extension"
	case $got in "$3 "*) ;; *) fail "chips/$udid.pem: $1 is ${got%% *}, expected $3" ;; esac
	printf '%s\n' "${got#* }" | grep -Eq "$2" ||
		fail "chips/$udid.pem: $1 is \"${got#* }\", expected /$2/"
}
expect_line '^ +Version: 3 ' 'not X.509 v3'
expect_line "^ +Subject: O ?= ?$vendor, CN ?= ?$udid, serialNumber ?= ?[0-9a-f]+\$" \
	"subject is not O=$vendor, CN=<udid>, serialNumber=<serial>"
expect_line '^ +Not After ?: Dec 31 23:59:59 9999 GMT$' 'notAfter is not 9999-12-31 23:59:59'
expect_line '^ +Signature Algorithm: ecdsa-with-SHA256$' 'not signed with ecdsa-with-SHA256'
expect_line '(ASN1 OID: prime256v1|NIST CURVE: P-256)' 'the key is not P-256'
expect_ext 'Basic Constraints' '^CA:FALSE$' critical
expect_ext 'Key Usage' '^Digital Signature$' critical
expect_ext 'Extended Key Usage' 'TLS Web Client Authentication' noncritical
expect_ext 'Subject Key Identifier' '^([0-9A-F]{2}:)+[0-9A-F]{2}$' noncritical
expect_ext 'Authority Key Identifier' '^(keyid:)?([0-9A-F]{2}:)+[0-9A-F]{2}$' noncritical
run openssl x509 -in "$pem" -noout -enddate
grep -qx 'notAfter=Dec 31 23:59:59 9999 GMT' "$tmp/out" || fail_run "openssl -enddate differs"

# the certificate's AKI is the issuing CA's SKI
ski_of() {
	openssl x509 -in "$1" -noout -text |
		awk '/X509v3 Subject Key Identifier:/ { getline; gsub(/ /, ""); print; exit }'
}
aki=$(awk '/X509v3 Authority Key Identifier:/ { getline; gsub(/ |keyid:/, ""); print; exit }' \
	"$tmp/text")
issuing_ski=$(ski_of "$v/issuing.pem")
{ [ -n "$aki" ] && [ "$aki" = "$issuing_ski" ]; } ||
	fail "chips/$udid.pem: AKI $aki is not the issuing CA's SKI $issuing_ski"

# the chip's key file holds the key of its certificate
openssl pkey -in "$key" -pubout >"$tmp/key.pub" 2>"$tmp/err" ||
	fail "openssl pkey cannot read chips/$udid.key: $(cat "$tmp/err")"
openssl x509 -in "$pem" -noout -pubkey >"$tmp/cert.pub" 2>"$tmp/err" ||
	fail "openssl x509 -pubkey fails: $(cat "$tmp/err")"
cmp -s "$tmp/key.pub" "$tmp/cert.pub" || fail "chips/$udid.key is not the key of chips/$udid.pem"

# the kept certificates are those of the first K entries (their x5c[0], byte for byte)
for f in "$reel"/chips/*.pem; do
	openssl x509 -in "$f" -outform DER | openssl base64 -A
	echo
done >"$tmp/kept"
"$py" - "$reel/manifest.json" "$tmp/kept" $keep <<'EOF' ||
import base64, json, sys
entries = json.load(open(sys.argv[1]))
kept = set(open(sys.argv[2]).read().split())
first = set()
for e in entries[:int(sys.argv[3])]:
    p = e["payload"]
    pay = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    first.update(k["x5c"][0] for k in pay["publicKeySet"]["keys"] if "x5c" in k)
sys.exit(0 if kept == first else 1)
EOF
	fail "chips/*.pem are not the x5c[0] certificates of the first $keep manifest entries"

note "ok: $count entries verified by Python cryptography; chip $udid verified by openssl"
