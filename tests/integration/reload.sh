#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# reload: SIGHUP makes devid serve read its TLS certificate and key again, and devid gateway
# its --trust files too, for the connections that come next, without dropping open ones:
#   - a keep-alive connection opened before the reload answers again after it, with the old
#     certificate; a new connection gets the new one;
#   - a broken certificate file is refused by the reload, logged, and the server keeps the
#     certificate it had;
#   - the gateway refuses, after a reload, a device certificate of a CA it no longer trusts.
me=reload
. "$(dirname "$0")/lib.sh"
devid=${1:-}
need_devid "$devid"
need_tool openssl openssl
need_tool mkfifo coreutils
make_tmp
here=$(cd "$(dirname "$0")" && pwd)
probe="/usr/bin/python3 $here/tls_probe.py"
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd"

selfsigned() { # NAME CN
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=$2" \
	    -addext subjectAltName=IP:127.0.0.1 -keyout "$1.key" -out "$1.pem" >/dev/null 2>&1 ||
		fail "openssl req $1"
}
fpr() { openssl x509 -in "$1" -outform DER | openssl dgst -sha256 -r | awk '{ print $1 }'; }
wait_log() { # FILE PATTERN WHAT
	i=0
	until grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || fail "$3: $(tail -3 "$1")"
		sleep 0.1
	done
}

# --- devid serve ----------------------------------------------------------------------------
selfsigned a A
selfsigned b B
cp a.pem cur.pem && cp a.key cur.key
"$devid" serve --db "sqlite:$tmp/d.db" --listen 127.0.0.1:0 --tls-cert cur.pem --tls-key cur.key \
    --workers 0 >serve.out 2>serve.log &
serve_pid=$!
pids="$pids $serve_pid"
wait_log serve.out 'listening on' "devid serve did not start"
port=$(sed -n 's|.*listening on https://127.0.0.1:||p' serve.out)
[ "$($probe fingerprint "$port")" = "$(fpr a.pem)" ] || fail "serve does not present certificate A"

mkfifo go
$probe keepalive "$port" go >keep.out 2>keep.err &
keep_pid=$!
wait_log keep.out '^200 ' "the keep-alive client got no first answer"
cp b.pem cur.pem && cp b.key cur.key
kill -HUP "$serve_pid"
wait_log serve.log 'reloaded.*api' "serve did not reload"
echo next >go
wait "$keep_pid" || fail "the keep-alive connection failed after the reload: $(cat keep.err)"
[ "$(sed -n 2p keep.out)" = "200 $(fpr a.pem)" ] ||
	fail "the open connection after the reload: $(sed -n 2p keep.out), want 200 with certificate A"
[ "$($probe fingerprint "$port")" = "$(fpr b.pem)" ] || fail "a new connection does not get certificate B"
note "ok serve: SIGHUP takes the new certificate for new connections, the open one keeps answering"

echo "not a certificate" >cur.pem
kill -HUP "$serve_pid"
wait_log serve.log 'reload failed' "serve did not report the broken certificate"
kill -0 "$serve_pid" || fail "serve died on a broken certificate"
[ "$($probe fingerprint "$port")" = "$(fpr b.pem)" ] || fail "serve did not keep certificate B"
note "ok serve: a broken certificate is refused and the old one kept"

# --- devid gateway: trust --------------------------------------------------------------------
ca() { # NAME: a CA as RFC 5280 strictly wants one
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj "/CN=$1" \
	    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
	    -keyout "$1.key" -out "$1.pem" >/dev/null 2>&1 || fail "openssl req $1"
}
ca ca1
ca ca2
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=device \
    -CA ca1.pem -CAkey ca1.key -addext basicConstraints=critical,CA:FALSE \
    -addext keyUsage=critical,digitalSignature -addext extendedKeyUsage=clientAuth \
    -keyout dev.key -out dev.pem >/dev/null 2>&1 || fail "device certificate"
cp ca1.pem trust.pem
printf 'gateway-secret-0123456789abcdef\n' >gw.secret
"$devid" gateway --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --tls-cert a.pem --tls-key a.key \
    --trust trust.pem --secret-file gw.secret --db "$tmp/gw.db" >gw.out 2>gw.log &
gw_pid=$!
pids="$pids $gw_pid"
wait_log gw.out 'admin on' "devid gateway did not start"
gport=$(sed -n 's|.*devices on https://127.0.0.1:\([0-9]*\),.*|\1|p' gw.out)
$probe fingerprint "$gport" dev.pem dev.key >probe.out ||
	fail "the gateway refused a device of the CA it trusts: $(cat probe.out)"
cp ca2.pem trust.pem
kill -HUP "$gw_pid"
wait_log gw.log 'reloaded trust' "the gateway did not reload"
$probe fingerprint "$gport" dev.pem dev.key >probe.out
[ $? -eq 3 ] || fail "after the reload the gateway still admits a device of CA1: $(cat probe.out)"
note "ok gateway: SIGHUP takes the new trust for new connections"
