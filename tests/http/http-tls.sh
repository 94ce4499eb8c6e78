#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# http-tls: the TLS port, seen by curl and openssl s_client, with certificates made by the
# openssl command line. client-auth require: no client certificate, or one from another CA,
# gets no HTTP answer; a certificate from the CA gets 200, and the handler reads the
# verified chain (leaf and CA). client-auth optional: no certificate is fine, one from the
# CA is seen, one from another CA is refused. TLS 1.1 is refused; plain HTTP to the TLS port
# gets no answer; a body over the limit is a JSON 413 over TLS too; refused handshakes are
# logged with their reason.
#
# Usage: sh http-tls.sh HTTP_TESTSERVER
set -u
me=http-tls
srv=${1:-}
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
. "$here/lib.sh"
need_tool openssl openssl

# mkcert NAME ISSUER EXT SUBJECT: an EC P-256 key NAME.key and certificate NAME.pem signed by
# ISSUER (ISSUER.pem, ISSUER.key; "self" for a root), with the extensions in EXT.
mkcert() {
	printf '%b\n' "$3" >"$tmp/$1.ext"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/$1.key" \
	    2>>"$tmp/openssl.log" || return 1
	openssl req -new -key "$tmp/$1.key" -subj "$4" -out "$tmp/$1.csr" 2>>"$tmp/openssl.log" ||
	    return 1
	if [ "$2" = self ]; then
		openssl x509 -req -in "$tmp/$1.csr" -signkey "$tmp/$1.key" -days 2 \
		    -extfile "$tmp/$1.ext" -out "$tmp/$1.pem" 2>>"$tmp/openssl.log"
	else
		openssl x509 -req -in "$tmp/$1.csr" -CA "$tmp/$2.pem" -CAkey "$tmp/$2.key" \
		    -CAcreateserial -CAserial "$tmp/$2.srl" -days 2 -extfile "$tmp/$1.ext" \
		    -out "$tmp/$1.pem" 2>>"$tmp/openssl.log"
	fi
}
ca_ext='basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign'
mkcert ca self "$ca_ext" /CN=devid-http-test-ca &&
    mkcert server ca 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost' /CN=localhost &&
    mkcert client ca 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth' /O=devid-test/CN=client1 &&
    mkcert rogueca self "$ca_ext" /CN=rogue-ca &&
    mkcert rogue rogueca 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth' /CN=rogue ||
    fail "openssl could not make the test certificates: $(tail -n 5 "$tmp/openssl.log")"

tls="--tls-cert $tmp/server.pem --tls-key $tmp/server.key --ca $tmp/ca.pem"
c="--cacert $tmp/ca.pem"
mine="--cert $tmp/client.pem --key $tmp/client.key"
theirs="--cert $tmp/rogue.pem --key $tmp/rogue.key"

# s_client TARGET ARGS...: one GET /whoami through openssl s_client; its output in $tmp/s.out
s_client() {
	target=$1
	shift
	printf 'GET /whoami HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' |
	    timeout 10 openssl s_client -connect "$target" -CAfile "$tmp/ca.pem" -quiet "$@" \
		>"$tmp/s.out" 2>"$tmp/s.err"
}

# --- client-auth require ---
# shellcheck disable=SC2086 # $tls is a list of arguments
start_server req --threads 2 $tls --client-auth require || fail "the TLS server did not start"
r=$addr_req

# shellcheck disable=SC2086
req require-no-cert $c "https://$r/whoami"
[ "$code" = 000 ] || check_failed "require: a client without a certificate got status $code"
# shellcheck disable=SC2086
req require-cert $c $mine "https://$r/whoami"
expect require-cert 200 '^\{"tls":true,"peer":"127\.0\.0\.1:[0-9]+","subject":"/O=devid-test/CN=client1","chain":2\}$'
# shellcheck disable=SC2086
req require-rogue $c $theirs "https://$r/whoami"
[ "$code" = 000 ] || check_failed "require: a certificate from another CA got status $code"
req require-plain "http://$r/whoami"
[ "$code" = 000 ] || check_failed "require: plain HTTP on the TLS port got status $code"

s_client "$r"
if grep -q '^HTTP/1.1 200' "$tmp/s.out"; then
	check_failed "require: s_client without a certificate got an HTTP answer"
fi
s_client "$r" -cert "$tmp/client.pem" -key "$tmp/client.key"
grep -q '^HTTP/1.1 200' "$tmp/s.out" && grep -q '"subject":"/O=devid-test/CN=client1"' "$tmp/s.out" ||
    check_failed "require: s_client with a certificate got: $(head -c 300 "$tmp/s.out") $(tail -n 3 "$tmp/s.err")"
s_client "$r" -cert "$tmp/client.pem" -key "$tmp/client.key" -tls1_2
grep -q '^HTTP/1.1 200' "$tmp/s.out" || check_failed "require: TLS 1.2 was refused"
# the client is made willing to speak TLS 1.1; the server must not be
s_client "$r" -cert "$tmp/client.pem" -key "$tmp/client.key" -tls1_1 -cipher 'DEFAULT@SECLEVEL=0'
if grep -q '^HTTP/1.1' "$tmp/s.out"; then
	check_failed "require: TLS 1.1 was accepted"
fi
stop_server req
grep -q 'msg="http tls refused" server=[a-z]* peer=127.0.0.1:[0-9]* alert=certificate_required$' "$tmp/req.err" ||
    check_failed "require: a client without a certificate was not logged"
grep -q 'msg="http client certificate rejected" server=[a-z]* peer=127.0.0.1:[0-9]* depth=[0-9] reason=' "$tmp/req.err" ||
    check_failed "require: the reason a certificate did not verify was not logged"

# --- client-auth optional ---
# shellcheck disable=SC2086
start_server opt --threads 2 --max-body 1024 $tls --client-auth optional ||
    fail "the TLS server did not start"
o=$addr_opt
# shellcheck disable=SC2086
req optional-no-cert $c "https://$o/whoami"
expect optional-no-cert 200 '^\{"tls":true,"peer":"127\.0\.0\.1:[0-9]+","subject":null,"chain":0\}$'
# shellcheck disable=SC2086
req optional-cert $c $mine "https://$o/whoami"
expect optional-cert 200 '"subject":"/O=devid-test/CN=client1","chain":2'
# shellcheck disable=SC2086
req optional-rogue $c $theirs "https://$o/whoami"
[ "$code" = 000 ] || check_failed "optional: a certificate from another CA got status $code"
# shellcheck disable=SC2086
req optional-404 $c "https://$o/nope"
expect optional-404 404 '"error":"not_found"'
head -c 2000 /dev/zero | tr '\0' 'a' >"$tmp/big"
# shellcheck disable=SC2086
req optional-413 $c --data-binary @"$tmp/big" "https://$o/echo"
expect optional-413 413 '"error":"too_large"'
req optional-no-ca "https://$o/healthz"
[ "$code" = 000 ] || check_failed "curl trusted the test server without --cacert: status $code"
stop_server opt

finish "TLS 1.2+, client certificates required and optional"
