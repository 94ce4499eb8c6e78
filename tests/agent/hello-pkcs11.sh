#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# hello-pkcs11: `devid-agent hello` with the chip key in a PKCS#11 token (a throwaway SoftHSM2),
# named by a pkcs11: URI, against openssl s_server requiring a client certificate: the
# token signs the TLS handshake (CertificateVerify) in TLS 1.3 and in TLS 1.2.
#
#   admitted (exit 0): TLS 1.3 and TLS 1.2 (s_server's greeting names the protocol); the
#     module found through p11-kit's proxy (no module named) when SoftHSM2 is registered
#   local errors (exit 2, nothing sent): a certificate of another key; a wrong PIN (named
#     CKR_PIN_INCORRECT, the PIN itself never printed); an object not in the token
#
# Usage: sh hello-pkcs11.sh DEVID-AGENT DEVID
set -u
me='agent-hello-pkcs11'
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
# shellcheck source-path=SCRIPTDIR source=../integration/lib.sh
. "$here/../integration/lib.sh"
# shellcheck source-path=SCRIPTDIR source=../softhsm.sh
. "$here/../softhsm.sh"

agent=${1:-}
devid=${2:-}
[ -x "$agent" ] || fail "usage: hello-pkcs11.sh DEVID-AGENT DEVID ($agent: not an executable)"
need_devid "$devid"
need_tool openssl openssl
softhsm_available || skip "SoftHSM2 is not installed (Debian package softhsm2)"
make_tmp
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

# s_server NAME ARGS...: openssl s_server -www on 127.0.0.1 requiring a verified client
# certificate; sets $port
s_server() {
	name=$1
	shift
	openssl s_server -accept 127.0.0.1:0 -cert "$tmp/srv.pem" -key "$tmp/srv.key" \
	    -Verify 5 -verify_return_error -www "$@" >"$tmp/$name.log" 2>&1 &
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

# --- a chip whose key is in the token, and nowhere else ---------------------------------------
run "$devid" vendor init --dir "$tmp/acme" --vendor ACME
[ "$rc" -eq 0 ] || fail_run "vendor init"
run "$devid" vendor mint --dir "$tmp/acme" --batch B1 --count 2 --out "$tmp/reel" --keep-keys 2
[ "$rc" -eq 0 ] || fail_run "vendor mint"
set -- "$tmp"/reel/chips/*.pem
[ $# -eq 2 ] || fail "expected 2 chip certificates, found $#"
chip=$1
other=$2
cat "$tmp/acme/root.pem" "$tmp/acme/issuing.pem" >"$tmp/acme-cas.pem"

pin=753951
softhsm_setup "$tmp/hsm" chip-se 8642097 "$pin" || fail "softhsm2-util --init-token failed"
softhsm_import_key "${chip%.pem}.key" devid 0a0b "$pin" || fail "softhsm2-util --import failed"
rm -f "${chip%.pem}.key"
key="pkcs11:token=chip-se;object=devid?pin-value=$pin"

{ openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$tmp/srvca.key" -out "$tmp/srvca.pem" -subj /CN=cloud-ca -days 2 \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$tmp/srv.key" -out "$tmp/srv.csr" -subj /CN=cloud &&
	printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$tmp/srv.ext" &&
	openssl x509 -req -in "$tmp/srv.csr" -CA "$tmp/srvca.pem" -CAkey "$tmp/srvca.key" \
	    -CAcreateserial -days 2 -extfile "$tmp/srv.ext" -out "$tmp/srv.pem"; } \
    >"$tmp/openssl.log" 2>&1 ||
	fail "openssl could not make the server certificates: $(tail -3 "$tmp/openssl.log")"

# --- admitted: the token signs the handshake ---------------------------------------------------
s_server tls13 -CAfile "$tmp/acme-cas.pem" -tls1_3
expect 0 'TLS 1.3 with the key in the token' '' \
    "$agent" hello --key "$key" --cert "$chip" --connect "127.0.0.1:$port" --ca "$tmp/srvca.pem"
grep -q 'TLSv1\.3' "$tmp/out" || check_failed_run "s_server's greeting does not say TLSv1.3"

s_server tls12 -CAfile "$tmp/acme-cas.pem" -tls1_2
expect 0 'TLS 1.2 with the key in the token' '' \
    "$agent" hello --key "$key" --cert "$chip" --connect "127.0.0.1:$port" --ca "$tmp/srvca.pem"
grep -q 'TLSv1\.2' "$tmp/out" || check_failed_run "s_server's greeting does not say TLSv1.2"
tls12=$port

if [ -r /usr/share/p11-kit/modules/softhsm2.module ]; then
	expect 0 'no module named: p11-kit'"'"'s proxy finds the SoftHSM2 token' '' \
	    env -u DEVID_PKCS11_MODULE "$agent" hello --key "$key" --cert "$chip" \
	    --connect "127.0.0.1:$tls12" --ca "$tmp/srvca.pem"
fi

# --- local errors: nothing is sent ------------------------------------------------------------
expect 2 'the certificate of another chip' 'pkcs11: key does not match certificate' \
    "$agent" hello --key "$key" --cert "$other" --connect "127.0.0.1:$tls12" \
    --ca "$tmp/srvca.pem"
grep -q "$pin" "$tmp/err" && check_failed_run "the PIN was printed"
expect 2 'a wrong PIN' 'CKR_PIN_INCORRECT' \
    "$agent" hello --key 'pkcs11:token=chip-se;object=devid?pin-value=1397531' --cert "$chip" \
    --connect "127.0.0.1:$tls12" --ca "$tmp/srvca.pem"
grep -q 1397531 "$tmp/err" && check_failed_run "a wrong PIN was printed"
expect 2 'an object not in the token' 'no private key matches' \
    "$agent" hello --key "pkcs11:token=chip-se;object=nosuch?pin-value=$pin" --cert "$chip" \
    --connect "127.0.0.1:$tls12" --ca "$tmp/srvca.pem"

stop_servers
finish "devid-agent hello with a key in SoftHSM2: TLS 1.3 and 1.2 admitted, local errors"
