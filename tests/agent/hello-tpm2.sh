#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# hello-tpm2: `devid-agent hello` with the device key inside a TPM 2.0 (a throwaway swtpm,
# tests/swtpm.sh), named by a tpm2: URI, against openssl s_server requiring a client
# certificate: the TPM signs the TLS handshake (CertificateVerify) in TLS 1.3 and 1.2.
#
#   admitted (exit 0): a persistent key (tpm2_createprimary, tpm2_create, tpm2_evictcontrol:
#     tpm2:handle=0x81000010) and a key file (openssl genpkey -provider tpm2: tpm2:file=PATH),
#     each with a birth certificate from a test CA made from a CSR the TPM signed
#   the key never leaves the TPM: the persistent key is fixedTPM, fixedParent and
#     sensitiveDataOrigin; the key file holds only the TPM-wrapped blob (TSS2 PRIVATE KEY):
#     OpenSSL cannot read it without the TPM, cannot turn it into a PKCS#8 private key, shows
#     no private value, and another TPM cannot load it
#   local errors (exit 2, nothing sent): the certificate of the other key; a handle with no
#     key; a missing file; a PEM key that is not a TPM key; a key with a password (no
#     prompt); an RSA key; the provider not installed; the
#     TPM unreachable (its TCTI named, in one line: tpm2-tss's own log is silenced)
#
# Usage: sh hello-tpm2.sh DEVID-AGENT
set -u
me='agent-hello-tpm2'
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
# shellcheck source-path=SCRIPTDIR source=../integration/lib.sh
. "$here/../integration/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../swtpm.sh
. "$here/../swtpm.sh"

agent=${1:-}
[ -x "$agent" ] || fail "usage: hello-tpm2.sh DEVID-AGENT ($agent: not an executable)"
command -v openssl >/dev/null 2>&1 || fail "openssl is not installed (Debian package openssl)"
swtpm_available || fail "swtpm or tpm2-tools is missing (sh scripts/install-deps)"
make_tmp
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
trap 'swtpm_stop; stop_servers; rm -rf "$tmp"' EXIT

# s_server NAME ARGS...: openssl s_server -www on 127.0.0.1 requiring a verified client
# certificate; sets $port
s_server() {
	name=$1
	shift
	openssl s_server -accept 127.0.0.1:0 -cert "$tmp/srv.pem" -key "$tmp/srv.key" \
	    -CAfile "$tmp/devca.pem" -Verify 5 -verify_return_error -www "$@" \
	    >"$tmp/$name.log" 2>&1 &
	pids="$pids $!"
	i=0
	while ! grep -q '^ACCEPT ' "$tmp/$name.log" 2>/dev/null; do
		i=$((i + 1))
		[ $i -le 100 ] || fail "$name: s_server did not start: $(head -5 "$tmp/$name.log")"
		sleep 0.1
	done
	port=$(sed -n 's/^ACCEPT .*:\([0-9][0-9]*\)$/\1/p' "$tmp/$name.log" | head -1)
	[ -n "$port" ] || fail "$name: no port in $tmp/$name.log"
}

# tpm CMD...: a tpm2-tools command; then the transient objects it left are flushed (swtpm
# has no resource manager, and holds only 3)
tpm() {
	"$@" >>"$tmp/tpm2-tools.log" 2>&1 || fail "$*: $(tail -3 "$tmp/tpm2-tools.log")"
	tpm2_flushcontext -t >>"$tmp/tpm2-tools.log" 2>&1
}

# birth KEY CN OUT: a certificate from the test CA for the TPM key KEY (an OpenSSL key name),
# issued from a CSR the TPM signed
birth() {
	openssl req -new -provider tpm2 -provider default -key "$1" -subj "/CN=$2" \
	    -out "$tmp/$2.csr" >>"$tmp/openssl.log" 2>&1 &&
	    openssl x509 -req -in "$tmp/$2.csr" -CA "$tmp/devca.pem" -CAkey "$tmp/devca.key" \
		-CAcreateserial -days 2 -extfile "$tmp/dev.ext" -out "$3" >>"$tmp/openssl.log" 2>&1 ||
		fail "a birth certificate for $1: $(tail -3 "$tmp/openssl.log")"
}

# --- the TPM and its keys ---------------------------------------------------------------------
swtpm_start "$tmp/tpm" || fail "swtpm did not start"
tpm tpm2_createprimary -C o -g sha256 -G ecc -c "$tmp/primary.ctx"
tpm tpm2_create -C "$tmp/primary.ctx" -G ecc256:ecdsa-sha256 -u "$tmp/dev.pub" -r "$tmp/dev.priv"
tpm tpm2_load -C "$tmp/primary.ctx" -u "$tmp/dev.pub" -r "$tmp/dev.priv" -c "$tmp/dev.ctx"
tpm tpm2_evictcontrol -C o -c "$tmp/dev.ctx" 0x81000010
handle='tpm2:handle=0x81000010'
openssl genpkey -provider tpm2 -algorithm EC -pkeyopt group:P-256 -out "$tmp/dev.tss" \
    >>"$tmp/openssl.log" 2>&1 || fail "openssl genpkey -provider tpm2: $(tail -3 "$tmp/openssl.log")"
file="tpm2:file=$tmp/dev.tss"

{ openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$tmp/devca.key" -out "$tmp/devca.pem" -subj /CN=device-ca -days 2 \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign &&
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$tmp/srvca.key" -out "$tmp/srvca.pem" -subj /CN=cloud-ca -days 2 \
	    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$tmp/srv.key" -out "$tmp/srv.csr" -subj /CN=cloud &&
	printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$tmp/srv.ext" &&
	openssl x509 -req -in "$tmp/srv.csr" -CA "$tmp/srvca.pem" -CAkey "$tmp/srvca.key" \
	    -CAcreateserial -days 2 -extfile "$tmp/srv.ext" -out "$tmp/srv.pem"; } \
    >>"$tmp/openssl.log" 2>&1 ||
	fail "openssl could not make the certificates: $(tail -3 "$tmp/openssl.log")"
printf 'keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$tmp/dev.ext"
birth handle:0x81000010 dev-handle "$tmp/dev-handle.pem"
birth "$tmp/dev.tss" dev-file "$tmp/dev-file.pem"

# --- the keys never leave the TPM --------------------------------------------------------------
tpm2_readpublic -c 0x81000010 >"$tmp/readpublic.txt" 2>&1 || fail "tpm2_readpublic 0x81000010"
grep -q 'value: fixedtpm|fixedparent|sensitivedataorigin' "$tmp/readpublic.txt" ||
	check_failed "the persistent key is not fixedTPM, fixedParent, sensitiveDataOrigin: $(grep value: "$tmp/readpublic.txt" | head -1)"
[ "$(head -1 "$tmp/dev.tss")" = '-----BEGIN TSS2 PRIVATE KEY-----' ] ||
	check_failed "the key file is not a TSS2 PRIVATE KEY: $(head -1 "$tmp/dev.tss")"
openssl pkey -in "$tmp/dev.tss" -noout >/dev/null 2>&1 &&
	check_failed "OpenSSL reads the key file without the TPM"
openssl pkcs8 -topk8 -nocrypt -provider tpm2 -provider default -in "$tmp/dev.tss" \
    >"$tmp/pkcs8.pem" 2>/dev/null
grep -q 'BEGIN PRIVATE KEY' "$tmp/pkcs8.pem" &&
	check_failed "the TPM key could be exported as a PKCS#8 private key"
openssl pkey -provider tpm2 -provider default -in "$tmp/dev.tss" -text -noout \
    >"$tmp/text.txt" 2>&1 || fail "openssl pkey -text of the key file: $(tail -3 "$tmp/text.txt")"
for a in fixedTPM fixedParent sensitiveDataOrigin; do
	grep -q "^ *$a\$" "$tmp/text.txt" || check_failed "the key file's key is not $a"
done
grep -q '^priv:' "$tmp/text.txt" && check_failed "a private value is shown: $(cat "$tmp/text.txt")"
tpm2_flushcontext -t >/dev/null 2>&1

# --- admitted: the TPM signs the handshake -----------------------------------------------------
s_server tls13 -tls1_3
tls13=$port
s_server tls12 -tls1_2
tls12=$port
for k in handle file; do
	eval "uri=\$$k"
	expect 0 "TLS 1.3 with the $k key in the TPM" '' \
	    "$agent" hello --key "$uri" --cert "$tmp/dev-$k.pem" --connect "127.0.0.1:$tls13" \
	    --ca "$tmp/srvca.pem"
	grep -q 'TLSv1\.3' "$tmp/out" || check_failed_run "s_server's greeting does not say TLSv1.3"
	expect 0 "TLS 1.2 with the $k key in the TPM" '' \
	    "$agent" hello --key "$uri" --cert "$tmp/dev-$k.pem" --connect "127.0.0.1:$tls12" \
	    --ca "$tmp/srvca.pem"
	grep -q 'TLSv1\.2' "$tmp/out" || check_failed_run "s_server's greeting does not say TLSv1.2"
done
expect 0 'the scheme in capitals' '' \
    "$agent" hello --key 'TPM2:handle=0x81000010' --cert "$tmp/dev-handle.pem" \
    --connect "127.0.0.1:$tls13" --ca "$tmp/srvca.pem"
tpm2_getcap handles-transient >"$tmp/transient.txt" 2>&1
[ -s "$tmp/transient.txt" ] && check_failed "the agent left transient objects in the TPM: $(cat "$tmp/transient.txt")"

# --- local errors: nothing is sent -------------------------------------------------------------
expect 2 'the certificate of the other key' \
    'TPM key at handle 0x81000010 does not match certificate .*dev-file\.pem' \
    "$agent" hello --key "$handle" --cert "$tmp/dev-file.pem" --connect "127.0.0.1:$tls13" \
    --ca "$tmp/srvca.pem"
expect 2 'a handle with no key' 'TPM key at handle 0x81000011: the TPM .* has no key there.*handle' \
    "$agent" hello --key 'tpm2:handle=0x81000011' --cert "$tmp/dev-handle.pem" \
    --connect "127.0.0.1:$tls13" --ca "$tmp/srvca.pem"
expect 2 'a missing key file' 'TPM key file .*missing\.tss: .*No such file' \
    "$agent" hello --key "tpm2:file=$tmp/missing.tss" --cert "$tmp/dev-file.pem" \
    --connect "127.0.0.1:$tls13" --ca "$tmp/srvca.pem"
expect 2 'a PEM key that is not a TPM key' 'not a TPM key file .*file:PATH' \
    "$agent" hello --key "tpm2:file=$tmp/devca.key" --cert "$tmp/dev-file.pem" \
    --connect "127.0.0.1:$tls13" --ca "$tmp/srvca.pem"
grep -q "$(sed -n 2p "$tmp/devca.key")" "$tmp/err" && check_failed_run "key material in a message"
expect 2 'a bad tpm2: URI' 'unknown attribute "object"' \
    "$agent" hello --key 'tpm2:object=dev' --cert "$tmp/dev-file.pem" \
    --connect "127.0.0.1:$tls13" --ca "$tmp/srvca.pem"
openssl genpkey -provider tpm2 -algorithm EC -pkeyopt group:P-256 -pkeyopt user-auth:0451 \
    -out "$tmp/password.tss" >>"$tmp/openssl.log" 2>&1 || fail "genpkey with a password"
expect 2 'a key with a password: no prompt' 'TPM key file .*password\.tss: .*needs a password' \
    "$agent" hello --key "tpm2:file=$tmp/password.tss" --cert "$tmp/dev-file.pem" \
    --connect "127.0.0.1:$tls13" --ca "$tmp/srvca.pem"
openssl genpkey -provider tpm2 -algorithm RSA -pkeyopt bits:2048 -out "$tmp/rsa.tss" \
    >>"$tmp/openssl.log" 2>&1 || fail "genpkey RSA in the TPM"
expect 2 'an RSA key' 'TPM key file .*rsa\.tss: the key is RSA; devid-agent takes EC keys' \
    "$agent" hello --key "tpm2:file=$tmp/rsa.tss" --cert "$tmp/dev-file.pem" \
    --connect "127.0.0.1:$tls13" --ca "$tmp/srvca.pem"
mkdir "$tmp/no-modules"
expect 2 'the tpm2 provider not installed' \
    'the tpm2 provider of tpm2-openssl is not installed .*no-modules.*Debian package tpm2-openssl' \
    env OPENSSL_MODULES="$tmp/no-modules" "$agent" hello --key "$handle" \
    --cert "$tmp/dev-handle.pem" --connect "127.0.0.1:$tls13" --ca "$tmp/srvca.pem"

# the TPM stopped: unreachable through its TCTI
tcti=$TPM2OPENSSL_TCTI
swtpm_stop
sleep 0.2
expect 2 'the TPM unreachable' "the TPM is unreachable through TPM2OPENSSL_TCTI=\"$tcti\"" \
    "$agent" hello --key "$handle" --cert "$tmp/dev-handle.pem" \
    --connect "127.0.0.1:$tls13" --ca "$tmp/srvca.pem"
[ "$(wc -l <"$tmp/err")" -eq 1 ] || check_failed_run "more than one line on stderr"

# another TPM cannot load the key file: the blob is wrapped by this TPM's storage key
swtpm_start "$tmp/other-tpm" || fail "a second swtpm did not start"
expect 2 'the key file in another TPM' 'TPM key file .*dev\.tss: the TPM .* cannot load it' \
    "$agent" hello --key "$file" --cert "$tmp/dev-file.pem" --connect "127.0.0.1:$tls13" \
    --ca "$tmp/srvca.pem"
swtpm_stop

stop_servers
finish "devid-agent hello with keys in a TPM (swtpm): persistent and file, TLS 1.3 and 1.2; the key stays in the TPM; local errors"
