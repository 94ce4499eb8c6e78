#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Two devid serve on one PostgreSQL behave as one server (issue 10, points 8 to 10):
# - one claim rate limit: claims spread over both servers are refused exactly where one
#   server would refuse them, with Retry-After, and a refused claim changes nothing (no
#   owner, no audit record); the per-address limit holds across tokens and servers;
# - CRL numbers: CRLs fetched alternately from both servers while devices are revoked
#   through both are strictly increasing and never repeat; readers racing on both servers
#   never see one number on two different CRLs;
# - revoke reasons reach the CRL entry (keyCompromise), a refused reason changes nothing, and
#   a release puts the old owner's certificates on its CRL (affiliationChanged);
# - operational certificates name their CRL (--public-url), and openssl verify -crl_check with
#   the CRL downloaded from that URL accepts a good certificate and refuses a revoked one.
# Usage: multi-server.sh DEVID (under scripts/with-postgres)
me=multi-server
. "$(dirname "$0")/lib.sh"
devid=${1:-}
need_devid "$devid"
need_tool curl curl
need_tool openssl openssl
need_tool python3 python3
[ -n "${DEVID_TEST_PG_URL:-}" ] || skip "DEVID_TEST_PG_URL not set (run under scripts/with-postgres)"
make_tmp
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd"
export DEVID_DB="$DEVID_TEST_PG_URL"
unset DEVID_SERVER DEVID_TOKEN DEVID_CACERT

# --- one vendor, two OEMs, a CA; two servers with a claim burst of 5 and no refill --------
"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "vendor init"
"$devid" vendor mint --dir v --batch B1 --count 8 --out B1 --keep-keys 8 --quiet >/dev/null || fail "mint"
"$devid" admin tenant add ACME --kind vendor >/dev/null || fail "tenant"
"$devid" admin tenant add OEM1 --kind oem >/dev/null || fail "tenant"
VT=$("$devid" admin token add ACME --role vendor)
T1=$("$devid" admin token add OEM1 --role admin)
T2=$("$devid" admin token add OEM1 --role admin)
T3=$("$devid" admin token add OEM1 --role admin)
"$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem >/dev/null || fail "trust"
"$devid" admin ca init --tenant OEM1 --key-file "$tmp/ca.key" >/dev/null || fail "ca init"
"$devid" admin ca show --tenant OEM1 >ca.pem || fail "ca show"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout srv.key -out srv.pem >/dev/null 2>&1 || fail "server cert"

# a usage error: a public URL with a query is refused before anything starts
run "$devid" serve --listen 127.0.0.1:0 --public-url 'https://devid.example/?x=1'
[ $rc -eq 2 ] && grep -q 'query' "$tmp/err" || fail_run "--public-url with a query"

start() { # NAME LISTEN: a server; its API URL in ${NAME}_url, EST address in ${NAME}_est
	"$devid" serve --listen "$2" --device-listen 127.0.0.1:0 --tls-cert srv.pem \
	    --tls-key srv.key --threads 4 --workers 0 --claim-burst 5 --claim-interval 1000000 \
	    --public-url "$public" >"$1.out" 2>"$1.log" &
	pids="$pids $!"
	i=0
	until grep -q 'EST on' "$1.out" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 150 ] || fail "$1 did not start: $(tail -5 "$1.log")"
		sleep 0.1
	done
	eval "${1}_url=\$(sed -n 's/.*listening on //p' $1.out)"
	eval "${1}_est=\$(sed -n 's|.*EST on https://\([^/ ]*\).*|\1|p' $1.out)"
}
# both servers name one public URL, server A's, as they would a load balancer's name
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
public="https://127.0.0.1:$port/"
start A "127.0.0.1:$port"
start B 127.0.0.1:0
note "servers A $A_url and B $B_url on one PostgreSQL"

"$devid" vendor publish --server "$A_url" --token "$VT" --cacert srv.pem B1 >/dev/null || fail "publish"

# api SERVER METHOD PATH TOKEN [BODY] [CURL-ARGS...]: $status, body in $tmp/body, headers in hdr
api() {
	u=$1 m=$2 p=$3 t=$4 b=${5:-}
	shift 4
	[ $# -gt 0 ] && shift
	if [ "$m" != GET ]; then
		[ -n "$b" ] || b='{}'
		set -- "$@" -H 'Content-Type: application/json' --data "$b"
	fi
	status=$(curl -sS --cacert srv.pem -D hdr -o body -w '%{http_code}' -X "$m" \
	    -H "Authorization: Bearer $t" "$@" "$u$p") || fail "curl $m $p"
}
audits() { # the number of OEM1's audit records
	curl -sS -H "Authorization: Bearer $T3" "$A_url/api/v1/audit" |
		python3 -c 'import json,sys; print(len(json.load(sys.stdin)["records"]))'
}

# --- one claim rate limit over both servers ----------------------------------------------
code=$(cat B1/claim.txt)
wrong=$(printf '%s' "$code" | sed 's/:[^:]*$/:AAAAAAAAAAAAAAAAAAAAAAAAAA/')
for i in 1 2 3 4 5; do
	[ $((i % 2)) = 1 ] && s=$A_url || s=$B_url
	api "$s" POST /api/v1/claims "$T1" "{\"code\":\"$wrong\"}"
	[ "$status" = 404 ] || fail "claim $i of the burst of 5 (server $s): HTTP $status $(cat body)"
done
audit_before=$(audits)
for s in "$B_url" "$A_url"; do
	api "$s" POST /api/v1/claims "$T1" "{\"code\":\"$code\"}"
	[ "$status" = 429 ] || fail "the 6th claim of a token (server $s): HTTP $status $(cat body), want 429"
	ra=$(sed -n 's/^[Rr]etry-[Aa]fter: *\([0-9]*\).*/\1/p' hdr)
	[ -n "$ra" ] && [ "$ra" -gt 990 ] && [ "$ra" -le 1000 ] ||
		fail "429 without a Retry-After of about 1000 s: '$ra' $(cat hdr)"
	grep -q 'rate_limited' body && grep -q 'token' body || fail "429 body: $(cat body)"
done
api "$A_url" GET /api/v1/batches "$T1"
grep -q '"B1"' body && fail "a refused claim bound the batch: $(cat body)"
[ "$(audits)" = "$audit_before" ] || fail "a refused claim wrote an audit record"
# another token from the same address: the address has used its 5 on both servers
api "$B_url" POST /api/v1/claims "$T2" "{\"code\":\"$code\"}"
[ "$status" = 429 ] && grep -q 'address' body || fail "another token, same address: HTTP $status $(cat body)"
[ -n "$(sed -n 's/^[Rr]etry-[Aa]fter: *\([0-9]*\).*/\1/p' hdr)" ] || fail "no Retry-After: $(cat hdr)"
# a third token from another address claims: the limit is per token and per address
api "$A_url" POST /api/v1/claims "$T3" "{\"code\":\"$code\"}" --interface 127.0.0.2
[ "$status" = 200 ] || fail "a fresh token from 127.0.0.2: HTTP $status $(cat body)"
note "claims: 5 over two servers, then 429 with Retry-After $ra s on both; nothing changed"

# --- enrollments: certificates that name their CRL ------------------------------------------
ls B1/chips/*.pem | sed 's|.*/||; s|\.pem$||' >udids.txt
n=0
while read -r u; do
	[ $((n % 2)) = 0 ] && addr=$A_est || addr=$B_est
	openssl req -new -key "B1/chips/$u.key" -subj /CN=x -outform DER 2>/dev/null | base64 >"$u.b64"
	st=$(curl -sS --cacert srv.pem --cert "B1/chips/$u.pem" --key "B1/chips/$u.key" \
	    -H 'Content-Type: application/pkcs10' --data-binary "@$u.b64" -o "$u.p7" \
	    -w '%{http_code}' "https://$addr/.well-known/est/simpleenroll")
	[ "$st" = 200 ] || fail "enroll $u: HTTP $st $(cat "$u.p7")"
	base64 -d <"$u.p7" | openssl pkcs7 -inform DER -print_certs -out "$u.ldevid.pem" || fail "PKCS#7"
	n=$((n + 1))
done <udids.txt
c0=$(sed -n 1p udids.txt)
openssl x509 -in "$c0.ldevid.pem" -noout -text >c0.txt
cdp=$(grep -A3 'CRL Distribution Points' c0.txt | sed -n 's/^ *URI://p')
[ "$cdp" = "$A_url/api/v1/tenants/OEM1/crl" ] || fail "CRL distribution point: '$cdp' $(cat c0.txt)"
curl -sS --cacert srv.pem -o dp.der "$cdp" || fail "GET $cdp"
openssl crl -inform DER -in dp.der -out dp.pem || fail "the distribution point does not give a CRL"
openssl verify -crl_check -CRLfile dp.pem -CAfile ca.pem "$c0.ldevid.pem" >/dev/null 2>&1 ||
	fail "a good certificate does not verify with the CRL of its distribution point"
note "LDevIDs name $cdp; openssl verify -crl_check accepts a good one"

# --- revocation reasons --------------------------------------------------------------------
c1=$(sed -n 2p udids.txt)
api "$B_url" POST "/api/v1/devices/$c1/revoke" "$T1" '{"reason":"certificateHold"}'
[ "$status" = 400 ] || fail "certificateHold: HTTP $status $(cat body)"
run "$devid" revoke --server "$A_url" --cacert srv.pem --token "$T1" --reason bogus "$c1"
[ $rc -ne 0 ] || fail_run "revoke --reason bogus"
api "$A_url" GET "/api/v1/devices/$c1" "$T1"
grep -q '"state": *"active"' body || fail "a refused revoke changed the device: $(cat body)"
run "$devid" revoke --server "$A_url" --cacert srv.pem --token "$T1" --reason keyCompromise "$c1"
[ $rc -eq 0 ] && grep -q keyCompromise "$tmp/out" || fail_run "revoke --reason keyCompromise"

# --- CRL numbers: alternately from both servers while revoking through both ----------------
crl_number() { # DER-FILE: the CRL number, via openssl crl -text
	openssl crl -inform DER -in "$1" -noout -text | sed -n '/CRL Number/{n;s/^ *//;p;}'
}
last=0
: >numbers.txt
i=0
for u in $(sed -n '3,8p' udids.txt); do
	[ $((i % 2)) = 0 ] && { r=$A_url; f=$B_url; } || { r=$B_url; f=$A_url; }
	api "$r" POST "/api/v1/devices/$u/revoke" "$T1" '{"reason":"superseded"}'
	[ "$status" = 200 ] || fail "revoke $u: HTTP $status $(cat body)"
	curl -sS --cacert srv.pem -o crl.der "$f/api/v1/tenants/OEM1/crl" || fail "GET crl"
	openssl crl -inform DER -in crl.der -CAfile ca.pem -noout 2>&1 | grep -q 'verify OK' ||
		fail "the CRL of $f does not verify"
	num=$(crl_number crl.der)
	[ -n "$num" ] && [ "$num" -gt "$last" ] || fail "CRL number $num after $last (server $f)"
	sn=$(openssl x509 -in "$u.ldevid.pem" -noout -serial | sed 's/serial=//')
	openssl crl -inform DER -in crl.der -noout -text | grep -qi "$sn" || fail "$u not on the CRL"
	echo "$num" >>numbers.txt
	last=$num
	i=$((i + 1))
done
[ "$(sort -u numbers.txt | wc -l)" = 6 ] || fail "CRL numbers repeat: $(cat numbers.txt)"
openssl crl -inform DER -in crl.der -noout -text >crl.txt
grep -q 'Key Compromise' crl.txt && grep -q 'Superseded' crl.txt || fail "reasons on the CRL: $(cat crl.txt)"
openssl crl -inform DER -in crl.der -out crl.pem
run openssl verify -crl_check -CRLfile crl.pem -CAfile ca.pem "$c1.ldevid.pem"
[ $rc -ne 0 ] && grep -q 'revoked' "$tmp/out" "$tmp/err" || fail_run "a revoked LDevID verifies with the CRL"
note "CRL numbers alternating over both servers: $(tr '\n' ' ' <numbers.txt)"

# readers racing on both servers while a release revokes the rest: one number, one CRL
reader() { # SERVER OUT: 20 fetches, "number sha256" per line
	for k in $(seq 20); do
		curl -sS --cacert srv.pem -o "$2.$k.der" "$1/api/v1/tenants/OEM1/crl" || exit 1
		echo "$(crl_number "$2.$k.der") $(sha256_of "$2.$k.der")" >>"$2"
	done
}
: >ra.txt
: >rb.txt
reader "$A_url" ra.txt &
r1=$!
reader "$B_url" rb.txt &
r2=$!
i=0
while [ "$(wc -l <ra.txt)" -lt 3 ] || [ "$(wc -l <rb.txt)" -lt 3 ]; do # release mid-way
	i=$((i + 1))
	[ $i -lt 300 ] || fail "the readers do not read"
	sleep 0.05
done
api "$B_url" POST /api/v1/batches/ACME/B1/release "$T3" '{}'
[ "$status" = 200 ] || fail "release: HTTP $status $(cat body)"
wait $r1 && wait $r2 || fail "a reader failed"
for f in ra.txt rb.txt; do
	sort -n -c -k1,1 "$f" 2>/dev/null || fail "a reader saw the number go back: $(cat "$f")"
done
[ "$(sort -u ra.txt rb.txt | awk '{print $1}' | uniq -d)" = "" ] ||
	fail "one CRL number on two different CRLs: $(sort -u ra.txt rb.txt)"
curl -sS --cacert srv.pem -o crl.der "$A_url/api/v1/tenants/OEM1/crl" || fail "GET crl"
openssl crl -inform DER -in crl.der -noout -text >crl.txt
grep -q 'Affiliation Changed' crl.txt || fail "released: no affiliationChanged entry: $(cat crl.txt)"
c7=$(sed -n 1p udids.txt)
sn=$(openssl x509 -in "$c7.ldevid.pem" -noout -serial | sed 's/serial=//')
grep -qi "$sn" crl.txt || fail "released: the certificate of a device that was not revoked is not on the CRL"
[ "$(sort -u ra.txt rb.txt | wc -l)" -ge 2 ] || fail "the readers did not see the release's CRL"
note "release: certificates on the CRL (affiliationChanged); $(sort -u ra.txt rb.txt | wc -l) CRLs seen by racing readers, numbers unique"
exit 0
