#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# hello: `devid-agent hello` against servers that share no code with devid (openssl s_server,
# Python's ssl module), on 127.0.0.1, with device identities minted by `devid vendor`.
#
#   admitted (exit 0, greeting on stdout): chip cert alone to a server trusting root +
#     issuing; chip cert + issuing CA (the agent sends its chain) to a server trusting the
#     root only; a chunked JSON greeting; a DNS name checked against the server certificate
#   refused (exit 1): HTTP 403 with a JSON message; a server that hangs up after the handshake
#   connection or TLS failure (exit 3): a server that trusts another vendor (OpenSSL's alert
#     reason), a chain the server cannot complete, a server certificate not trusted by --ca,
#     a host name the server certificate does not carry, nothing listening, a timeout
#   usage or local error (exit 2, nothing sent): a key that is not the certificate's, key URI
#     schemes unknown, a bad tpm2: URI, a pkcs11: module that does not load, missing
#     files and options, bad --connect (keys in a token: hello-pkcs11.sh)
#
# Usage: sh hello.sh DEVID-AGENT DEVID
set -u
me='agent-hello'
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
# shellcheck source-path=SCRIPTDIR source=../integration/lib.sh
. "$here/../integration/lib.sh"

agent=${1:-}
devid=${2:-}
[ -x "$agent" ] || fail "usage: hello.sh DEVID-AGENT DEVID ($agent: not an executable)"
need_devid "$devid"
need_tool openssl openssl
need_tool python3 python3
make_tmp
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

# wait_for FILE ERE: waits up to 10 s for a line matching ERE in FILE (a server's log)
wait_for() {
	i=0
	while ! grep -Eq -- "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -le 100 ] || {
			sed -n '1,20p' "$1" >&2
			fail "no /$2/ in $1 after 10 s"
		}
		sleep 0.1
	done
}

# s_server NAME ARGS...: openssl s_server -www on 127.0.0.1, a port the kernel picks;
# sets $port. It answers HTTP 200 only to a client whose certificate it verified.
s_server() {
	name=$1
	shift
	openssl s_server -accept 127.0.0.1:0 -cert "$tmp/srv.pem" -key "$tmp/srv.key" \
	    -Verify 5 -verify_return_error -www "$@" >"$tmp/$name.log" 2>&1 &
	pids="$pids $!"
	wait_for "$tmp/$name.log" '^ACCEPT '
	port=$(sed -n 's/^ACCEPT .*:\([0-9][0-9]*\)$/\1/p' "$tmp/$name.log" | head -1)
	[ -n "$port" ] || fail "$name: no port in $tmp/$name.log"
}

# py_server NAME MODE ARGS...: tls_server.py on 127.0.0.1; sets $port
py_server() {
	name=$1
	shift
	python3 "$here/tls_server.py" "$@" --cert "$tmp/srv.pem" --key "$tmp/srv.key" \
	    >"$tmp/$name.log" 2>&1 &
	pids="$pids $!"
	wait_for "$tmp/$name.log" '^PORT '
	port=$(sed -n 's/^PORT //p' "$tmp/$name.log" | head -1)
}

# --- identities ----------------------------------------------------------------------------
# two vendors; the server's own CA; a server certificate for 127.0.0.1 and localhost
run "$devid" vendor init --dir "$tmp/acme" --vendor ACME
[ "$rc" -eq 0 ] || fail_run "vendor init"
run "$devid" vendor mint --dir "$tmp/acme" --batch B1 --count 2 --out "$tmp/reel" --keep-keys 2
[ "$rc" -eq 0 ] || fail_run "vendor mint"
run "$devid" vendor init --dir "$tmp/other" --vendor OTHER
[ "$rc" -eq 0 ] || fail_run "vendor init OTHER"
set -- "$tmp"/reel/chips/*.pem
[ $# -eq 2 ] || fail "expected 2 chip certificates, found $#"
chip=$1
chipkey=${1%.pem}.key
otherkey=${2%.pem}.key
udid=$(basename "$chip" .pem)
cat "$chip" "$tmp/acme/issuing.pem" >"$tmp/chip-chain.pem"
cat "$tmp/acme/root.pem" "$tmp/acme/issuing.pem" >"$tmp/acme-cas.pem"
cat "$tmp/other/root.pem" "$tmp/other/issuing.pem" >"$tmp/other-cas.pem"

mkcert() { # NAME SUBJECT [SAN]: NAME.key, NAME.pem (signed by srvca unless SAN is empty)
	if [ -z "${3:-}" ]; then
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		    -keyout "$tmp/$1.key" -out "$tmp/$1.pem" -subj "$2" -days 2 \
		    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
	else
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		    -keyout "$tmp/$1.key" -out "$tmp/$1.csr" -subj "$2" &&
		    printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$3" >"$tmp/$1.ext" &&
		    openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/srvca.pem" \
			-CAkey "$tmp/srvca.key" -CAcreateserial -days 2 -extfile "$tmp/$1.ext" \
			-out "$tmp/$1.pem"
	fi
}
{ mkcert srvca /CN=cloud-ca && mkcert srv /CN=cloud 'IP:127.0.0.1,DNS:localhost' &&
	mkcert elsewhere /CN=elsewhere 'DNS:elsewhere.example' &&
	mkcert strangerca /CN=stranger-ca; } >"$tmp/openssl.log" 2>&1 ||
	fail "openssl could not make the server certificates: $(tail -3 "$tmp/openssl.log")"

# --- admitted ------------------------------------------------------------------------------
s_server trusts-acme -CAfile "$tmp/acme-cas.pem"
acme_port=$port
expect 0 'chip certificate alone, server trusts root + issuing' '' \
    "$agent" hello --key "file:$chipkey" --cert "$chip" --connect "127.0.0.1:$port" \
    --ca "$tmp/srvca.pem"
grep -q 's_server' "$tmp/out" || check_failed_run "the greeting of s_server -www is not on stdout"
expect 0 'a DNS name the server certificate carries' '' \
    "$agent" hello --key "file://localhost$chipkey" --cert "$chip" --connect "localhost:$port" \
    --ca "$tmp/srvca.pem" --timeout 5

s_server trusts-root -CAfile "$tmp/acme/root.pem"
expect 0 'chip + issuing CA in the cert file, server trusts the root only' '' \
    "$agent" hello --key "file:$chipkey" --cert "$tmp/chip-chain.pem" \
    --connect "127.0.0.1:$port" --ca "$tmp/srvca.pem"
expect 3 'chip certificate alone, server trusts the root only' \
    'did not accept the device certificate: .*alert' \
    "$agent" hello --key "file:$chipkey" --cert "$chip" --connect "127.0.0.1:$port" \
    --ca "$tmp/srvca.pem"

py_server greet greet --client-ca "$tmp/acme-cas.pem"
expect 0 'a chunked JSON greeting' '' \
    "$agent" hello --key "file:$chipkey" --cert "$chip" --connect "127.0.0.1:$port" \
    --ca "$tmp/srvca.pem"
grep -q "\"udid\": \"$udid\"" "$tmp/out" ||
	check_failed_run "the greeting does not name the device's UDID $udid"

# --- refused -------------------------------------------------------------------------------
py_server refuse refuse --client-ca "$tmp/acme-cas.pem" --message 'device not on the ACL'
expect 1 'HTTP 403 with a JSON message' 'refused by 127\.0\.0\.1:[0-9]+: HTTP 403 Forbidden: .*device not on the ACL' \
    "$agent" hello --key "file:$chipkey" --cert "$chip" --connect "127.0.0.1:$port" \
    --ca "$tmp/srvca.pem"
[ -s "$tmp/out" ] && check_failed_run "a refusal printed something on stdout"

py_server hangup hangup --client-ca "$tmp/acme-cas.pem"
expect 1 'a server that hangs up after the handshake' 'without an HTTP response' \
    "$agent" hello --key "file:$chipkey" --cert "$chip" --connect "127.0.0.1:$port" \
    --ca "$tmp/srvca.pem"

# --- connection and TLS failures -------------------------------------------------------------
s_server trusts-other -CAfile "$tmp/other-cas.pem"
expect 3 'a server that trusts another vendor' \
    'did not accept the device certificate: .*(unknown ca|certificate required|bad certificate)' \
    "$agent" hello --key "file:$chipkey" --cert "$chip" --connect "127.0.0.1:$port" \
    --ca "$tmp/srvca.pem"
# Python's server sends its alert and closes with our request unread: the reset often fails
# the agent's write first, and the alert must still be the reason given
py_server py-trusts-other refuse --client-ca "$tmp/other-cas.pem"
expect 3 'a Python server that trusts another vendor' \
    'did not accept the device certificate: .*unknown ca' \
    "$agent" hello --key "file:$chipkey" --cert "$chip" --connect "127.0.0.1:$port" \
    --ca "$tmp/srvca.pem"
expect 3 'a server certificate not trusted by --ca' \
    'server certificate verification failed against .*strangerca\.pem: ' \
    "$agent" hello --key "file:$chipkey" --cert "$chip" --connect "127.0.0.1:$acme_port" \
    --ca "$tmp/strangerca.pem"
expect 3 'a server certificate of the vendor root is not trusted either' \
    'verification failed' \
    "$agent" hello --key "file:$chipkey" --cert "$chip" --connect "127.0.0.1:$acme_port" \
    --ca "$tmp/acme/root.pem"

openssl s_server -accept 127.0.0.1:0 -cert "$tmp/elsewhere.pem" -key "$tmp/elsewhere.key" \
    -www >"$tmp/elsewhere.log" 2>&1 &
pids="$pids $!"
wait_for "$tmp/elsewhere.log" '^ACCEPT '
port=$(sed -n 's/^ACCEPT .*:\([0-9][0-9]*\)$/\1/p' "$tmp/elsewhere.log" | head -1)
expect 3 'a server certificate for another name' 'verification failed.*IP address mismatch' \
    "$agent" hello --key "file:$chipkey" --cert "$chip" --connect "127.0.0.1:$port" \
    --ca "$tmp/srvca.pem"

free_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
expect 3 'nothing listening' 'cannot connect to 127\.0\.0\.1:[0-9]+: Connection refused' \
    "$agent" hello --key "file:$chipkey" --cert "$chip" --connect "127.0.0.1:$free_port" \
    --ca "$tmp/srvca.pem"

py_server silent silent
expect 3 'a server that never answers, --timeout 1' 'timed out after 1000 ms' \
    "$agent" hello --key "file:$chipkey" --cert "$chip" --connect "127.0.0.1:$port" \
    --ca "$tmp/srvca.pem" --timeout 1

# --- local errors: nothing is sent ----------------------------------------------------------
# these point at the silent server: had anything been sent, they would time out instead
silent=127.0.0.1:$port
expect 2 'a key that is not the certificate'"'"'s' \
    "key .*$(basename "$otherkey") does not match certificate .*$udid" \
    "$agent" hello --key "file:$otherkey" --cert "$chip" --connect "$silent" \
    --ca "$tmp/srvca.pem" --timeout 30
grep -q 'PRIVATE KEY' "$tmp/err" && check_failed_run "key material in a message"
expect 2 'an unknown key scheme' 'unknown scheme "foo:"' \
    "$agent" hello --key 'foo:bar' --cert "$chip" --connect "$silent" --ca "$tmp/srvca.pem"
expect 2 'a key path without a scheme' 'no scheme.*file:PATH' \
    "$agent" hello --key "$chipkey" --cert "$chip" --connect "$silent" --ca "$tmp/srvca.pem"
expect 2 'a pkcs11: key whose module does not load' 'missing-p11\.so: cannot load' \
    "$agent" hello --key "pkcs11:token=se;object=devid?module-path=$tmp/missing-p11.so&pin-value=4321" \
    --cert "$chip" --connect "$silent" --ca "$tmp/srvca.pem"
grep -q 4321 "$tmp/err" && check_failed_run "a PIN of a pkcs11: URI was printed"
expect 2 'a tpm2: URI naming a transient handle' 'handle 0x80000001 is not a persistent handle' \
    "$agent" hello --key 'tpm2:handle=0x80000001' --cert "$chip" --connect "$silent" \
    --ca "$tmp/srvca.pem"
expect 2 'a missing key file' 'missing\.key: No such file' \
    "$agent" hello --key "file:$tmp/missing.key" --cert "$chip" --connect "$silent" \
    --ca "$tmp/srvca.pem"
expect 2 'a missing CA file' 'CA file: .*missing-ca\.pem' \
    "$agent" hello --key "file:$chipkey" --cert "$chip" --connect "$silent" \
    --ca "$tmp/missing-ca.pem" --timeout 30
expect 2 'no options' 'needs --key, --cert, --connect and --ca' "$agent" hello
expect 2 'a bad --connect' 'brackets' \
    "$agent" hello --key "file:$chipkey" --cert "$chip" --connect '::1:4433' \
    --ca "$tmp/srvca.pem"
expect 2 'a bad --timeout' '--timeout' \
    "$agent" hello --key "file:$chipkey" --cert "$chip" --connect "$silent" \
    --ca "$tmp/srvca.pem" --timeout 0
expect 2 'an unknown option' 'unknown option' "$agent" hello --frobnicate
expect 2 'no command' '' "$agent"
expect 2 'an unknown command' 'unknown command' "$agent" frob
expect 2 'enroll without options' 'needs --key, --cert, --est, --ca and --out' "$agent" enroll
expect 2 'renew without options' 'needs --key, --cert, --est, --ca and --out' "$agent" renew
expect 0 '--help' '' "$agent" --help
grep -q '^usage: devid-agent' "$tmp/out" || check_failed_run "--help prints the usage on stdout"
expect 0 'hello --help' '' "$agent" hello --help

stop_servers
finish "devid-agent hello: admitted, refused, TLS and connection failures, local errors"
