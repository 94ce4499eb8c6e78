#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# est: `devid-agent enroll` and `devid-agent renew` against a small EST responder that shares
# no code with devid (tests/agent/est_server.py: Python's ssl module and `cryptography`), on
# 127.0.0.1, with device identities minted by `devid vendor`.
#
#   issued (exit 0): enroll with the birth certificate (answers base64 in CRLF lines of 64,
#     in LF lines of 76, on one line; with and without Content-Transfer-Encoding; chunked; a
#     label; a path prefix); the output checked with openssl (subject, dates, verify
#     -x509_strict -purpose sslclient, the chip's key, mode 0644); renew --force with the
#     operational certificate (same subject, new serial), in place; renew without --force
#     once due
#   not due (exit 0, nothing sent): renew of a fresh certificate
#   refused (exit 1): HTTP 403 with a JSON message; another label (404); renewing with the
#     birth certificate; enrolling with an operational certificate
#   other failures (exit 3): a certificate for another key; a server certificate not
#     trusted by --ca; nothing listening
#   usage or local errors (exit 2): an expired certificate cannot renew; bad --est, --label,
#     --force on enroll, missing options, a key that is not the certificate's
#
# Usage: sh est.sh DEVID-AGENT DEVID
set -u
me='agent-est'
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
# shellcheck source-path=SCRIPTDIR source=../integration/lib.sh
. "$here/../integration/lib.sh"

agent=${1:-}
devid=${2:-}
[ -x "$agent" ] || fail "usage: est.sh DEVID-AGENT DEVID ($agent: not an executable)"
need_devid "$devid"
need_tool openssl openssl
need_tool python3 python3
python3 -c 'import cryptography.hazmat.primitives.serialization.pkcs7' 2>/dev/null ||
	skip "the Python cryptography package is not installed (Debian package python3-cryptography)"
make_tmp
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

# est_server NAME ARGS...: est_server.py serve on 127.0.0.1; sets $port and $log
est_server() {
	name=$1
	shift
	log=$tmp/$name.log
	python3 "$here/est_server.py" serve --ca-dir "$tmp/opca" --cert "$tmp/srv.pem" \
	    --key "$tmp/srv.key" --client-ca "$tmp/acme-cas.pem" "$@" >"$log" 2>&1 &
	pids="$pids $!"
	i=0
	while ! grep -q '^PORT ' "$log" 2>/dev/null; do
		i=$((i + 1))
		[ $i -le 100 ] || {
			sed -n '1,20p' "$log" >&2
			fail "$name: no PORT line after 10 s"
		}
		sleep 0.1
	done
	port=$(sed -n 's/^PORT //p' "$log" | head -1)
}

# check_opcert WHAT FILE: FILE holds the operational certificate for the chip, then the CA
check_opcert() {
	n=$(grep -c 'BEGIN CERTIFICATE' "$2")
	[ "$n" -eq 2 ] || check_failed "$1: $2 holds $n certificates, expected 2"
	subj=$(openssl x509 -noout -subject -nameopt RFC2253 -in "$2")
	case $subj in *"CN=$udid"*) ;; *) check_failed "$1: subject \"$subj\" lacks CN=$udid" ;; esac
	openssl x509 -noout -dates -in "$2" | grep -q '^notAfter=' ||
		check_failed "$1: no notAfter in $2"
	openssl verify -x509_strict -purpose sslclient -CAfile "$tmp/opca/ca.pem" "$2" \
	    >"$tmp/verify.log" 2>&1 || check_failed "$1: openssl verify: $(cat "$tmp/verify.log")"
	[ "$(openssl x509 -noout -pubkey -in "$2")" = "$chippub" ] ||
		check_failed "$1: $2 is not for the chip's key"
	[ "$(file_mode "$2")" = "-rw-r--r--" ] ||
		check_failed "$1: $2 has mode $(file_mode "$2"), expected -rw-r--r--"
	ls "$2".tmp-* >/dev/null 2>&1 && check_failed "$1: a temporary file was left beside $2"
}

serial_of() { openssl x509 -noout -serial -in "$1" | sed 's/^serial=//' | tr 'A-F' 'a-f'; }

# --- identities ----------------------------------------------------------------------------
run "$devid" vendor init --dir "$tmp/acme" --vendor ACME
[ "$rc" -eq 0 ] || fail_run "vendor init"
run "$devid" vendor mint --dir "$tmp/acme" --batch B1 --count 2 --out "$tmp/reel" --keep-keys 2
[ "$rc" -eq 0 ] || fail_run "vendor mint"
set -- "$tmp"/reel/chips/*.pem
[ $# -eq 2 ] || fail "expected 2 chip certificates, found $#"
chip=$1
chipkey=file:${1%.pem}.key
otherkey=file:${2%.pem}.key
udid=$(basename "$chip" .pem)
chippub=$(openssl x509 -noout -pubkey -in "$chip")
cat "$tmp/acme/root.pem" "$tmp/acme/issuing.pem" >"$tmp/acme-cas.pem"

{ openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$tmp/srvca.key" -out "$tmp/srvca.pem" -subj /CN=est-tls-ca -days 2 \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout "$tmp/srv.key" -out "$tmp/srv.csr" -subj /CN=est &&
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' \
	    >"$tmp/srv.ext" &&
	openssl x509 -req -in "$tmp/srv.csr" -CA "$tmp/srvca.pem" -CAkey "$tmp/srvca.key" \
	    -CAcreateserial -days 2 -extfile "$tmp/srv.ext" -out "$tmp/srv.pem"; } \
	>"$tmp/openssl.log" 2>&1 ||
	fail "openssl could not make the server certificates: $(tail -3 "$tmp/openssl.log")"

# --- enroll, then renew ---------------------------------------------------------------------
est_server crlf --style crlf --cte
url=https://127.0.0.1:$port
expect 0 'enroll with the birth certificate' '' \
    "$agent" enroll --key "$chipkey" --cert "$chip" --est "$url" --ca "$tmp/srvca.pem" \
    --out "$tmp/op.pem"
grep -Eq "^enrolled: udid=$udid serial=[0-9a-f]+ notAfter=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z out=" \
    "$tmp/out" || check_failed_run "enroll: the summary line is not as expected"
[ -f "$tmp/op.pem" ] && check_opcert enroll "$tmp/op.pem"
grep -Fq "$(serial_of "$tmp/op.pem")" "$tmp/out" ||
	check_failed_run "enroll: the summary does not show the certificate's serial"
serial1=$(serial_of "$tmp/op.pem")

reqs=$(grep -c '^REQ' "$log")
expect 0 'renew of a fresh certificate is not due' '' \
    "$agent" renew --key "$chipkey" --cert "$tmp/op.pem" --est "$url" --ca "$tmp/srvca.pem" \
    --out "$tmp/op2.pem"
grep -Eq '^not due: renews after [0-9]{4}-[0-9]{2}-[0-9]{2}T' "$tmp/out" ||
	check_failed_run "renew: no \"not due\" line"
[ -e "$tmp/op2.pem" ] && check_failed "renew: not due, yet it wrote --out"
[ "$(grep -c '^REQ' "$log")" -eq "$reqs" ] || check_failed "renew: not due, yet it connected"

expect 0 'renew --force with the operational certificate' '' \
    "$agent" renew --key "$chipkey" --cert "$tmp/op.pem" --est "$url" --ca "$tmp/srvca.pem" \
    --out "$tmp/op2.pem" --force
grep -q "^renewed: udid=$udid " "$tmp/out" || check_failed_run "renew: no summary line"
[ -f "$tmp/op2.pem" ] && check_opcert renew "$tmp/op2.pem"
[ "$(openssl x509 -noout -subject -in "$tmp/op2.pem")" = \
    "$(openssl x509 -noout -subject -in "$tmp/op.pem")" ] ||
	check_failed "renew: the subject changed"
[ "$(serial_of "$tmp/op2.pem")" != "$serial1" ] || check_failed "renew: the same serial"
grep -q '^REQ 200 issued' "$log" || check_failed "the server issued nothing: $(cat "$log")"

cp "$tmp/op2.pem" "$tmp/inplace.pem"
expect 0 'renew --force in place (--out is --cert)' '' \
    "$agent" renew --key "$chipkey" --cert "$tmp/inplace.pem" --est "$url" \
    --ca "$tmp/srvca.pem" --out "$tmp/inplace.pem" --force --timeout 5
check_opcert 'renew in place' "$tmp/inplace.pem"
[ "$(serial_of "$tmp/inplace.pem")" != "$(serial_of "$tmp/op2.pem")" ] ||
	check_failed "renew in place: the file was not replaced"

# --- refused ---------------------------------------------------------------------------------
expect 1 'renew with the birth certificate' 'HTTP 403: re-enroll with the current' \
    "$agent" renew --key "$chipkey" --cert "$chip" --est "$url" --ca "$tmp/srvca.pem" \
    --out "$tmp/x.pem" --force
expect 1 'enroll with an operational certificate' 'simpleenroll refused by .*HTTP 403' \
    "$agent" enroll --key "$chipkey" --cert "$tmp/op.pem" --est "$url" --ca "$tmp/srvca.pem" \
    --out "$tmp/x.pem"
[ -e "$tmp/x.pem" ] && check_failed "a refusal wrote --out"

# --- other encodings of the answer, a label, a prefix ----------------------------------------
est_server oneline --style oneline --chunked --label acme
expect 0 'one base64 line, no Content-Transfer-Encoding, chunked, --label' '' \
    "$agent" enroll --key "$chipkey" --cert "$chip" --est "https://localhost:$port/" \
    --ca "$tmp/srvca.pem" --out "$tmp/op3.pem" --label acme
check_opcert 'oneline' "$tmp/op3.pem"
expect 1 'another label' 'refused by .*HTTP 404: no such label: other' \
    "$agent" enroll --key "$chipkey" --cert "$chip" --est "https://localhost:$port" \
    --ca "$tmp/srvca.pem" --out "$tmp/x.pem" --label other

est_server lines --style lines --cte --validity 420 --prefix /gw/est
expect 0 'LF lines of 76 with Content-Transfer-Encoding, a path prefix' '' \
    "$agent" enroll --key "$chipkey" --cert "$chip" --est "https://127.0.0.1:$port/gw/est" \
    --ca "$tmp/srvca.pem" --out "$tmp/short.pem"
check_opcert 'lines' "$tmp/short.pem"
# 7 minutes from 5 minutes ago: less than a third is left, so it is due without --force
expect 0 'renew once due' '' \
    "$agent" renew --key "$chipkey" --cert "$tmp/short.pem" \
    --est "https://127.0.0.1:$port/gw/est/" --ca "$tmp/srvca.pem" --out "$tmp/short2.pem"
grep -q '^renewed: ' "$tmp/out" || check_failed_run "renew once due: it did not renew"

est_server refuse --refuse 403
expect 1 'HTTP 403 with a JSON message' \
    'simpleenroll refused by 127\.0\.0\.1:[0-9]+: HTTP 403: device is not claimed by any tenant \(not_claimed\)' \
    "$agent" enroll --key "$chipkey" --cert "$chip" --est "https://127.0.0.1:$port" \
    --ca "$tmp/srvca.pem" --out "$tmp/x.pem"
[ -s "$tmp/out" ] && check_failed_run "a refusal printed something on stdout"

# --- other failures --------------------------------------------------------------------------
est_server wrong --wrong-key
expect 3 'a certificate for another key' "issued no certificate for the device's key" \
    "$agent" enroll --key "$chipkey" --cert "$chip" --est "https://127.0.0.1:$port" \
    --ca "$tmp/srvca.pem" --out "$tmp/x.pem"
expect 3 'a server certificate not trusted by --ca' 'cacerts: TLS handshake .*verification failed' \
    "$agent" enroll --key "$chipkey" --cert "$chip" --est "https://127.0.0.1:$port" \
    --ca "$tmp/acme/root.pem" --out "$tmp/x.pem"
free_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
expect 3 'nothing listening' 'cannot connect to 127\.0\.0\.1:[0-9]+' \
    "$agent" enroll --key "$chipkey" --cert "$chip" --est "https://127.0.0.1:$free_port" \
    --ca "$tmp/srvca.pem" --out "$tmp/x.pem"
[ -e "$tmp/x.pem" ] && check_failed "a failure wrote --out"

# --- local errors ----------------------------------------------------------------------------
python3 "$here/est_server.py" issue --ca-dir "$tmp/opca" --key-of "$chip" --cn "$udid" \
    --not-before -7200 --not-after -60 --out "$tmp/expired.pem" ||
	fail "est_server.py issue failed"
expect 2 'an expired certificate cannot renew' 'expired .*enroll again with the birth certificate' \
    "$agent" renew --key "$chipkey" --cert "$tmp/expired.pem" --est "https://127.0.0.1:$free_port" \
    --ca "$tmp/srvca.pem" --out "$tmp/x.pem" --force
expect 2 'a key that is not the certificate'"'"'s' 'does not match certificate' \
    "$agent" enroll --key "$otherkey" --cert "$chip" --est "https://127.0.0.1:$free_port" \
    --ca "$tmp/srvca.pem" --out "$tmp/x.pem"
expect 2 'an http:// URL' 'https://HOST' \
    "$agent" enroll --key "$chipkey" --cert "$chip" --est "http://127.0.0.1:$free_port" \
    --ca "$tmp/srvca.pem" --out "$tmp/x.pem"
expect 2 'a URL with a query' 'no query' \
    "$agent" enroll --key "$chipkey" --cert "$chip" --est "https://127.0.0.1:1/x?y" \
    --ca "$tmp/srvca.pem" --out "$tmp/x.pem"
expect 2 'a bad --label' '--label' \
    "$agent" enroll --key "$chipkey" --cert "$chip" --est "https://127.0.0.1:1" \
    --ca "$tmp/srvca.pem" --out "$tmp/x.pem" --label 'a/b'
expect 2 '--force on enroll' '--force is for renew' \
    "$agent" enroll --key "$chipkey" --cert "$chip" --est "https://127.0.0.1:1" \
    --ca "$tmp/srvca.pem" --out "$tmp/x.pem" --force
expect 2 'no --out' 'needs --key, --cert, --est, --ca and --out' \
    "$agent" renew --key "$chipkey" --cert "$chip" --est "https://127.0.0.1:1" \
    --ca "$tmp/srvca.pem"
expect 0 'enroll --help' '' "$agent" enroll --help
grep -q 'devid-agent renew' "$tmp/out" || check_failed_run "enroll --help shows no usage"

stop_servers
finish "devid-agent enroll and renew: issued, not due, refused, failures, local errors"
