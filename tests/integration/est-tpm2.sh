#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# est-tpm2: devid-agent enrolls and renews over devid serve's EST with its key inside a TPM
# 2.0 (a throwaway swtpm, tests/swtpm.sh), named tpm2:handle=0x81000020. The chip's birth key
# from `devid vendor mint` is imported into the TPM (tpm2_import: wrapped by the TPM's storage
# key, then persisted) and deleted, as a factory would provision it; the agent's CSRs are
# signed by the TPM. (An imported key cannot be fixedTPM; tests/agent/hello-tpm2.sh shows
# keys born in the TPM and that they stay there.) Checked: the LDevID chains to the tenant CA, certifies the TPM key
# (the same public key as the birth certificate), renew --force gives a new one for the same
# key, and the renewed certificate authenticates the next renewal; the birth certificate with
# another chip's key is refused locally (exit 2) and nothing is issued.
# Usage: est-tpm2.sh DEVID DEVID-AGENT
me=est-tpm2
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../swtpm.sh"
devid=${1:-}
agent=${2:-}
need_devid "$devid"
[ -x "$agent" ] || fail "$agent: not an executable devid-agent"
command -v openssl >/dev/null 2>&1 || fail "openssl is not installed (Debian package openssl)"
command -v python3 >/dev/null 2>&1 || fail "python3 is not installed (Debian package python3)"
swtpm_available || fail "swtpm or tpm2-tools is missing (sh scripts/install-deps)"
make_tmp
pids=""
trap 'swtpm_stop; for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd"
export DEVID_DB="sqlite:$tmp/devid.db"

wait_for() { # FILE PATTERN WHAT
	i=0
	until grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 150 ] || fail "$3 did not start: $(cat "$1" "$1.log" 2>/dev/null | tail -5)"
		sleep 0.1
	done
}

issued() {
	python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM certificates").fetchone()[0])' \
	    "$tmp/devid.db"
}

# tpm CMD...: a tpm2-tools command, then its transient objects flushed (no resource manager)
tpm() {
	"$@" >>tpm2-tools.log 2>&1 || fail "$*: $(tail -3 tpm2-tools.log)"
	tpm2_flushcontext -t >>tpm2-tools.log 2>&1
}

spki() { # CERT: the SHA-256 of its public key
	openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum
}

# --- the vendor, the OEM and its CA, devid serve ----------------------------------------------
"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "vendor init"
"$devid" vendor mint --dir v --batch B1 --count 3 --out B1 --keep-keys 2 --quiet >/dev/null ||
	fail "vendor mint"
"$devid" admin tenant add ACME --kind vendor >/dev/null || fail "tenant ACME"
"$devid" admin tenant add OEM1 --kind oem >/dev/null || fail "tenant OEM1"
VT=$("$devid" admin token add ACME --role vendor)
A1=$("$devid" admin token add OEM1 --role admin)
"$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem >/dev/null ||
	fail "trust add"
run "$devid" admin ca init --tenant OEM1 --key-file "$tmp/ca.key"
[ $rc -eq 0 ] || fail_run "ca init"
"$devid" admin ca show --tenant OEM1 >ca.pem || fail "ca show"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout srv.key -out srv.pem >/dev/null 2>&1 ||
	fail "server cert"
"$devid" admin secrets-key init "file:$tmp/secrets.key" >/dev/null || fail "secrets-key init"
"$devid" serve --listen 127.0.0.1:0 --device-listen 127.0.0.1:0 --tls-cert srv.pem \
    --tls-key srv.key --secrets-key "file:$tmp/secrets.key" >serve.out 2>serve.log &
pids="$pids $!"
wait_for serve.out 'EST on' "devid serve"
export DEVID_SERVER="$(sed -n 's/.*listening on //p' serve.out)"
export DEVID_CACERT="$tmp/srv.pem"
est="https://$(sed -n 's|.*EST on https://\([^/ ]*\).*|\1|p' serve.out)"
[ "$est" != https:// ] || fail "no EST address in: $(cat serve.out)"
"$devid" vendor publish --token "$VT" B1 >/dev/null || fail "publish"
"$devid" claim --token "$A1" "$(cat B1/claim.txt)" >/dev/null || fail "claim"
set -- B1/chips/*.pem
[ $# -eq 2 ] || fail "want 2 chips with keys, found $#"
chip=${1%.pem}
other=${2%.pem}
cat "$chip.pem" v/issuing.pem >birth.pem

# --- the chip key into the TPM, and out of the file system -------------------------------------
swtpm_start "$tmp/tpm" || fail "swtpm did not start"
tpm tpm2_createprimary -C o -g sha256 -G ecc -c primary.ctx
tpm tpm2_import -C primary.ctx -G ecc -i "$chip.key" -u chip.pub -r chip.priv
tpm tpm2_load -C primary.ctx -u chip.pub -r chip.priv -c chip.ctx
tpm tpm2_evictcontrol -C o -c chip.ctx 0x81000020
rm -f "$chip.key"
key='tpm2:handle=0x81000020'

# --- enroll, renew ---------------------------------------------------------------------------
before=$(issued)
run "$agent" enroll --key "$key" --cert "$other.pem" --est "$est" --ca srv.pem --out x.pem
[ $rc -eq 2 ] && grep -q 'TPM key at handle 0x81000020 does not match certificate' "$tmp/err" ||
	fail_run "enroll with another chip's certificate"
[ ! -e x.pem ] && [ "$(issued)" = "$before" ] || fail "a refused enroll issued something"

run "$agent" enroll --key "$key" --cert birth.pem --est "$est" --ca srv.pem --out ldevid.pem
[ $rc -eq 0 ] && grep -q '^enrolled: ' "$tmp/out" || fail_run "devid-agent enroll with a tpm2: key"
openssl verify -CAfile ca.pem -purpose sslclient ldevid.pem >/dev/null 2>&1 ||
	fail "the LDevID does not chain to the tenant CA"
[ "$(spki ldevid.pem)" = "$(spki "$chip.pem")" ] || fail "the LDevID is not for the TPM key"
[ "$(issued)" = $((before + 1)) ] || fail "enroll: $(($(issued) - before)) certificates stored"

run "$agent" renew --key "$key" --cert ldevid.pem --est "$est" --ca srv.pem --out renewed.pem
[ $rc -eq 0 ] && grep -q 'not due' "$tmp/out" && [ ! -e renewed.pem ] || fail_run "renew when not due"
run "$agent" renew --force --key "$key" --cert ldevid.pem --est "$est" --ca srv.pem --out renewed.pem
[ $rc -eq 0 ] && grep -q '^renewed: ' "$tmp/out" || fail_run "devid-agent renew --force with a tpm2: key"
[ "$(openssl x509 -in renewed.pem -noout -serial)" != "$(openssl x509 -in ldevid.pem -noout -serial)" ] ||
	fail "renew gave the same certificate"
[ "$(spki renewed.pem)" = "$(spki "$chip.pem")" ] || fail "the renewed certificate is not for the TPM key"
openssl verify -CAfile ca.pem -purpose sslclient renewed.pem >/dev/null 2>&1 ||
	fail "the renewed certificate does not chain to the tenant CA"
run "$agent" renew --force --key "$key" --cert renewed.pem --est "$est" --ca srv.pem --out renewed.pem
[ $rc -eq 0 ] || fail_run "renew in place with the renewed certificate"
[ "$(issued)" = $((before + 3)) ] || fail "$(($(issued) - before)) certificates stored, want 3"
tpm2_getcap handles-transient >transient.txt 2>&1
[ -s transient.txt ] && fail "the agent left transient objects in the TPM: $(cat transient.txt)"

note "ok: devid-agent enrolled and renewed over EST with its key in a TPM (swtpm, tpm2:handle=)"
