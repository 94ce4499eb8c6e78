# SPDX-License-Identifier: Apache-2.0
# tpm-dps.sh DEVID TESTS_DIR VECTORS_DIR - the azure-dps connector enrolls TPM devices with
# TPM attestation: a swtpm TPM manufactured with RSA 2048 and ECC P-384 EK certificates
# (ekpki.sh) is registered by them (devid vendor mint --from-ek), published and claimed beside
# two chips; the stand-in DPS (tests/integration/dps_endpoint.py), which checks each body
# against the service's OpenAPI document and TpmAttestation's endorsementKey as a TPM2B_PUBLIC
# of an EK, receives for each EK an enrollment whose registration id is the UDID and whose
# endorsementKey is exactly what tpm2_readpublic of that EK writes (0x81010001, 0x81010016);
# the chips keep X.509 attestation. A revoke disables a TPM's enrollment, still by its EK.
set -u
me=tpm-dps
devid=$1
. "$2/integration/lib.sh"
. "$2/swtpm.sh"
. "$2/tpm/ekpki.sh"
vectors=$3
need_devid "$devid"
need_tool curl curl
swtpm_available || fail "swtpm, swtpm_setup or tpm2-tools missing (sh scripts/install-deps)"
[ -f "$vectors/azure-dps/service.json" ] || skip "no DPS OpenAPI document in $vectors/azure-dps"
/usr/bin/python3 -c 'import cryptography' 2>/dev/null || fail "python3-cryptography is not installed"
make_tmp
pids=""
trap 'swtpm_stop; for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd $tmp"
export DEVID_DB="sqlite:$tmp/devid.db"

ekpki_make "$tmp/pki" || fail "the EK PKI"
swtpm_manufacture "$tmp/t1" --create-ek-cert --config "$tmp/pki/swtpm_setup.conf" --ecc ||
	fail "swtpm_setup"
swtpm_start "$tmp/t1" || fail "swtpm"
mkdir eks
ekpki_read_ek eks/t1 || fail "tpm2_nvread of the EK certificates"
[ "$(ls eks | wc -l)" = 2 ] || fail "2 EK certificates expected: $(ls eks)"
udid_of() { # CERT.der: lowercase hex SHA-256 of its SubjectPublicKeyInfo
	openssl x509 -inform der -in "$1" -noout -pubkey | openssl pkey -pubin -outform der |
		sha256sum | awk '{ print $1 }'
}
mkdir want
for k in rsa:0x81010001 p384:0x81010016; do
	tpm2_readpublic -c "${k#*:}" -f tss -o "want/$(udid_of "eks/t1-${k%%:*}.der")" \
	    >/dev/null 2>>tools.log || fail "tpm2_readpublic ${k#*:}"
done
swtpm_stop

"$devid" vendor init --dir vd --vendor TPMV >/dev/null || fail "vendor init"
cat pki/ekca.pem pki/ekca-cross.pem >chain.pem
"$devid" vendor mint --dir vd --batch EK1 --out reel --chain chain.pem --from-ek eks \
    >/dev/null || fail "mint --from-ek"
"$devid" vendor mint --dir vd --batch C1 --count 2 --out chips --quiet >/dev/null ||
	fail "mint of 2 chips"
cat vd/root.pem pki/proot.pem >roots.pem
"$devid" admin tenant add TPMV --kind vendor >/dev/null || fail "tenant"
"$devid" admin tenant add OEM1 --kind oem >/dev/null || fail "tenant"
VT=$("$devid" admin token add TPMV --role vendor)
A1=$("$devid" admin token add OEM1 --role admin)
"$devid" admin trust add --vendor TPMV --root roots.pem --signer vd/signer.pem >/dev/null ||
	fail "trust add"
"$devid" admin secrets-key init "file:$tmp/secrets.key" >/dev/null || fail "secrets-key init"
: >serve.out
"$devid" serve --listen 127.0.0.1:0 --secrets-key "file:$tmp/secrets.key" >serve.out \
    2>>serve.log &
pids="$pids $!"
wait_line serve.out 'listening on' serve
url=$(sed -n 's/.*listening on //p' serve.out)
export DEVID_SERVER=$url
for r in reel chips; do
	DEVID_TOKEN=$VT "$devid" vendor publish $r >/dev/null 2>>serve.log || fail "publish $r"
done

KEY=$(/usr/bin/python3 -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())')
/usr/bin/python3 "$2/integration/dps_endpoint.py" "$vectors/azure-dps/service.json" "$KEY" \
    enroll 127.0.0.1 6000 >dps.port 2>dps.log &
pids="$pids $!"
wait_file dps.port "the stand-in DPS"
dps="http://127.0.0.1:$(cat dps.port)"
api POST /api/v1/connectors "{\"name\":\"DPS\",\"type\":\"azure-dps\",\"mode\":\"auto\",\"config\":{\"endpoint\":\"$dps\",\"policyName\":\"enroll\",\"policyKey\":\"$KEY\"}}"
[ "$status" = 201 ] || fail "create DPS: $status $(cat body)"
for r in reel chips; do
	DEVID_TOKEN=$A1 "$devid" claim "$(cat $r/claim.txt)" >/dev/null || fail "claim $r"
done

# wait_for PYTHON-EXPR: until it holds over s, the stand-in's state (30 s)
wait_for() {
	i=0
	until curl -sS "$dps/_test/state" >state.json &&
		/usr/bin/python3 -c "import json,sys
s = json.load(open('state.json'))
sys.exit(0 if ($1) else 1)"; do
		i=$((i + 1))
		[ $i -lt 300 ] || { api GET /api/v1/jobs; fail "waited for: $1; jobs: $(cat body); stand-in: $(head -c 600 state.json)"; }
		sleep 0.1
	done
}
# check PYTHON: asserts over s, the stand-in's state, and want/ (UDID -> the TPM's EK public)
check() {
	curl -sS "$dps/_test/state" >state.json || fail "cannot read the stand-in's state"
	/usr/bin/python3 -c "import base64, json, os
s = json.load(open('state.json'))
want = {u: open('want/' + u, 'rb').read() for u in os.listdir('want')}
$1" || fail "stand-in state: $(head -c 600 state.json)"
}
wait_for 'len(s["enrollments"]) == 4'
check '
assert not s["violations"], s["violations"]
tpm = {u: e for u, e in s["enrollments"].items() if u in want}
assert sorted(tpm) == sorted(want), (sorted(tpm), sorted(want))
for u, e in tpm.items():
    assert e["attestation"]["type"] == "tpm", e["attestation"]
    assert e["registrationId"] == u and e["provisioningStatus"] == "enabled"
    assert base64.b64decode(e["attestation"]["tpm"]["endorsementKey"]) == want[u], "the EK public of " + u
    assert s["tpm"][u] == e["attestation"]["tpm"]["endorsementKey"]
chips = [e for u, e in s["enrollments"].items() if u not in want]
assert len(chips) == 2 and all(e["attestation"]["type"] == "x509" for e in chips), chips
assert sorted(s["tpm"]) == sorted(want), sorted(s["tpm"])
'
note "ok: 2 TPMs enrolled with TPM attestation by exactly their EK publics, 2 chips by X.509"

u=$(ls want | head -1)
api POST "/api/v1/devices/$u/revoke"
[ "$status" = 200 ] || fail "revoke: $status $(cat body)"
wait_for "s['enrollments']['$u']['provisioningStatus'] == 'disabled'"
check "
assert not s['violations'], s['violations']
e = s['enrollments']['$u']
assert e['attestation']['type'] == 'tpm'
assert base64.b64decode(e['attestation']['tpm']['endorsementKey']) == want['$u']
assert [o['mode'] for o in s['ops'] if o['id'] == '$u'] == ['create', 'update'], s['ops']
"
note "ok: a revoked TPM's enrollment disabled, still by its EK"
finish
