#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Scale-out (issue 14, point 6): three devid serve on one PostgreSQL behind HAProxy, started
# by the test with the configuration docs/operations.md gives (API: mode http, TLS ended at
# HAProxy and again to each server, round robin, GET /healthz checks; EST: mode tcp, so the
# device's TLS and client certificate reach devid untouched). A mixed load goes through
# HAProxy only, from three concurrent pipelines: vendor publishes of small batches (devid
# vendor publish), claims by three OEMs, EST enrollments (curl + openssl), revocations and
# reads, beside a reader of CRLs and EST CA certificates; the outbox workers of all three
# servers push the claims and revocations to a webhook receiver that counts. In the middle
# one server gets SIGTERM; HAProxy's health check takes it out and the load goes on. Checked:
# - every request was answered by devid as expected (2xx); a request is sent again only when
#   devid never answered it (HAProxy's own 502/503/504, or the connection closed without an
#   answer) and only after the SIGTERM; the retries are counted, and the checks below show
#   that none did anything twice;
# - every server took API requests and EST connections before the SIGTERM; the stopped one
#   exited 0, HAProxy marked it DOWN on both backends and sent it nothing more; the other two
#   took the load after that; no server answered 5xx;
# - every batch is whole (count, devices) and claimed once (one batch.claim audit record);
#   every revocation audited once;
# - every device reached the receiver as docs/api.md promises (at least once; a retry keeps
#   its event id): each device added under one event id and each revoked one removed under
#   one, never added after its removal (an add pushed after the revoke leaves it out); no
#   unknown event, no job pending or dead; duplicate pushes are counted;
# - every enrollment's certificate is recorded once, with the serial the device received, and
#   audited once; serials unique; every tenant's audit chain verifies (devid admin audit
#   verify);
# - CRL numbers: one number names one CRL, and a reader never sees a number go back, over
#   CRLs served by all three servers; the last CRL verifies and lists every revoked
#   certificate.
# Usage: scale-out.sh DEVID (under scripts/with-postgres)
me=scale-out
. "$(dirname "$0")/lib.sh"
devid=${1:-}
need_devid "$devid"
need_tool curl curl
need_tool openssl openssl
need_tool /usr/bin/python3 python3
need_tool haproxy haproxy
[ -n "${DEVID_TEST_PG_URL:-}" ] || skip "DEVID_TEST_PG_URL not set (run under scripts/with-postgres)"
make_tmp
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
here=$(cd "$(dirname "$0")" && pwd)
cd "$tmp" || fail "cd"
export DEVID_DB="$DEVID_TEST_PG_URL"
unset DEVID_SERVER DEVID_TOKEN DEVID_CACERT
secret="scale-out-secret-0123456789abcdef"
nbatch=24 # 8 a pipeline
chips=10  # a batch
keys=3    # chips of a batch with keys: all enroll, the second is then revoked

free_port() {
	/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

json() { # FILE EXPRESSION: a Python expression over the JSON document d in FILE
	/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# --- one vendor, three OEMs with a CA and a webhook each, the receiver ---------------------
"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "vendor init"
for b in $(seq "$nbatch"); do
	"$devid" vendor mint --dir v --batch "B$b" --count $chips --out "B$b" --keep-keys $keys \
	    --quiet >/dev/null || fail "mint B$b"
done
"$devid" admin tenant add ACME --kind vendor >/dev/null || fail "tenant ACME"
VT=$("$devid" admin token add ACME --role vendor) || fail "vendor token"
"$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem >/dev/null ||
	fail "trust"
for k in 1 2 3; do
	"$devid" admin tenant add "OEM$k" --kind oem >/dev/null || fail "tenant OEM$k"
	"$devid" admin token add "OEM$k" --role admin >"OEM$k.token" || fail "token OEM$k"
	"$devid" admin ca init --tenant "OEM$k" --key-file "$tmp/ca$k.key" >/dev/null ||
		fail "ca init OEM$k"
	"$devid" admin ca show --tenant "OEM$k" >"ca$k.pem" || fail "ca show OEM$k"
done
"$devid" admin secrets-key init "file:$tmp/secrets.key" >/dev/null || fail "secrets-key init"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout srv.key -out srv.pem >/dev/null 2>&1 ||
	fail "server certificate"
cat srv.pem srv.key >lb.pem # HAProxy's crt: certificate and key in one file
/usr/bin/python3 "$here/receiver.py" "$secret" "$tmp/events" >receiver.port 2>receiver.err &
pids="$pids $!"
wait_file receiver.port receiver
rurl="http://127.0.0.1:$(cat receiver.port)/devid/events"

# --- three servers, one database; HAProxy in front -------------------------------------------
lb_api_port=$(free_port)
lb_est_port=$(free_port)
stats_port=$(free_port)
lb="https://127.0.0.1:$lb_api_port"
lb_est="127.0.0.1:$lb_est_port"
for s in a b c; do
	# every server names the balancer as its public URL: CRL distribution points lead there
	"$devid" serve --listen 127.0.0.1:0 --device-listen 127.0.0.1:0 --tls-cert srv.pem \
	    --tls-key srv.key --secrets-key "file:$tmp/secrets.key" --threads 2 \
	    --public-url "$lb/" >"$s.out" 2>"$s.log" &
	pids="$pids $!"
	eval "${s}_pid=$!"
done
for s in a b c; do
	wait_line "$s.out" 'EST on' "devid serve $s"
	eval "${s}_api=\$(sed -n 's|.*listening on https://||p' $s.out)"
	eval "${s}_est=\$(sed -n 's|.*EST on https://\([^/ ]*\).*|\1|p' $s.out)"
done

# The configuration of docs/operations.md ("Several servers") with the test's addresses and
# files; what only the test needs: the global section (logs to stderr, a pid file), log
# global and the stats page.
cat >haproxy.cfg <<EOF
global
	log stderr format raw local0 info
	pidfile $tmp/haproxy.pid
	maxconn 1024

defaults
	log global
	timeout connect 2s
	timeout client 60s
	timeout server 60s
	timeout check 2s
	retries 3
	option redispatch 1

frontend devid_api
	mode http
	option httplog
	bind 127.0.0.1:$lb_api_port ssl crt $tmp/lb.pem
	default_backend devid_api

backend devid_api
	mode http
	balance roundrobin
	timeout server 10m
	option httpchk GET /healthz
	http-check expect status 200
	default-server check inter 500ms fall 2 rise 2 ssl verify required ca-file $tmp/srv.pem
	server a $a_api
	server b $b_api
	server c $c_api

frontend devid_est
	mode tcp
	option tcplog
	bind 127.0.0.1:$lb_est_port
	default_backend devid_est

backend devid_est
	mode tcp
	balance roundrobin
	option httpchk GET /healthz
	http-check expect status 200
	default-server check check-ssl inter 500ms fall 2 rise 2 verify required ca-file $tmp/srv.pem
	server a $a_est
	server b $b_est
	server c $c_est

listen stats
	mode http
	bind 127.0.0.1:$stats_port
	stats enable
	stats uri /stats
EOF
run haproxy -c -f haproxy.cfg
[ $rc -eq 0 ] || fail_run "haproxy -c refuses the configuration"
haproxy -db -f haproxy.cfg >haproxy.out 2>haproxy.log &
pids="$pids $!"

stats() { # OUT: HAProxy's statistics as CSV; the status of curl
	curl -sS -o "$1" "http://127.0.0.1:$stats_port/stats;csv"
}
stat_of() { # FILE PROXY SERVER FIELD: one field of HAProxy's CSV statistics
	awk -F, -v px="$2" -v sv="$3" -v f="$4" '
		NR == 1 { sub(/^# /, ""); for (i = 1; i <= NF; i++) col[$i] = i; next }
		$1 == px && $2 == sv { print $col[f] }' "$1"
}
i=0
while :; do
	up=0
	stats st.csv 2>/dev/null || : >st.csv
	for px in devid_api devid_est; do
		for s in a b c; do
			[ "$(stat_of st.csv $px $s status)" = UP ] && up=$((up + 1))
		done
	done
	[ $up = 6 ] && break
	i=$((i + 1))
	[ $i -lt 100 ] || fail "HAProxy does not see the servers up: $(cat st.csv haproxy.log | head -c 2000)"
	sleep 0.1
done
note "HAProxy $lb (API, mode http) and $lb_est (EST, mode tcp) before servers a, b, c"

# call OUT WHAT WANT CURL-ARG...: one request through HAProxy, which devid must answer with
# HTTP WANT; the body in OUT. Sent again (at most 3 times) only when devid did not answer it:
# curl got no answer at all (exit 35, 52, 56: the connection closed or was reset) or HAProxy
# answered 502, 503 or 504 itself (every answer of devid carries X-Request-Id, HAProxy's own
# pages do not). A retry is written to retries.txt, saying whether the SIGTERM had been sent.
call() {
	_out=$1 _what=$2 _want=$3
	shift 3
	_n=0
	while :; do
		_st=$(curl -sS --cacert srv.pem -D "$_out.hdr" -o "$_out" -w '%{http_code}' "$@" \
		    2>"$_out.err")
		_cc=$?
		[ $_cc -eq 0 ] && grep -qi '^x-request-id:' "$_out.hdr" && break
		case "$_cc:$_st" in
		0:502 | 0:503 | 0:504 | 35:* | 52:* | 56:*) ;;
		*) fail "$_what: curl exit $_cc, HTTP $_st: $(cat "$_out.err" "$_out" 2>/dev/null)" ;;
		esac
		_n=$((_n + 1))
		[ $_n -le 3 ] || fail "$_what: devid did not answer in 4 tries"
		_k=no
		[ -e killed ] && _k=yes
		echo "$_what curl=$_cc http=$_st after_sigterm=$_k" >>retries.txt
	done
	[ "$_st" = "$_want" ] || fail "$_what: HTTP $_st, want $_want: $(cat "$_out")"
}

api() { # OUT WHAT WANT TOKEN METHOD PATH [BODY]: call with a bearer token, JSON body
	_o=$1 _w=$2 _x=$3 _t=$4 _m=$5 _p=$6
	if [ -n "${7:-}" ]; then
		call "$_o" "$_w" "$_x" -X "$_m" -H "Authorization: Bearer $_t" \
		    -H 'Content-Type: application/json' --data-binary "$7" "$lb$_p"
	else
		call "$_o" "$_w" "$_x" -X "$_m" -H "Authorization: Bearer $_t" "$lb$_p"
	fi
}

# publish B: devid vendor publish through HAProxy, sent again only on HAProxy's own 50x
publish() {
	_n=0
	until DEVID_SERVER=$lb DEVID_CACERT=srv.pem "$devid" vendor publish --token "$VT" "$1" \
	    >"pub.$1.out" 2>"pub.$1.err"; do
		if ! grep -q '<html>' "pub.$1.err" || ! grep -Eq '\(HTTP 50[234]\)$' "pub.$1.err"; then
			fail "publish $1: $(cat "pub.$1.err")"
		fi
		_n=$((_n + 1))
		[ $_n -le 3 ] || fail "publish $1: devid did not answer in 4 tries"
		_k=no
		[ -e killed ] && _k=yes
		echo "publish $1 $(tail -1 "pub.$1.err") after_sigterm=$_k" >>retries.txt
	done
}

: >retries.txt
for k in 1 2 3; do
	api conn.out "connector OEM$k" 201 "$(cat OEM$k.token)" POST /api/v1/connectors \
	    "{\"name\":\"CLOUD\",\"type\":\"webhook\",\"mode\":\"auto\",\"config\":{\"url\":\"$rurl\",\"secret\":\"$secret\"}}"
done

# --- the load: three pipelines and a reader, concurrently -----------------------------------
# pipeline K: OEM K's batches K, K+3, K+6 ...: publish, claim, read, enroll the chips with keys,
# revoke the second, read it. The last batch waits until HAProxy has taken the stopped
# server out, so the load is known to go on after that.
pipeline() {
	k=$1
	t=$(cat "OEM$k.token")
	for b in $(seq "$k" 3 "$nbatch"); do
		[ "$b" -le $((nbatch - 3)) ] || until [ -e down ]; do sleep 0.1; done
		publish "B$b"
		api "p$k.body" "claim B$b" 200 "$t" POST /api/v1/claims "{\"code\":\"$(cat "B$b/claim.txt")\"}"
		api "p$k.body" "batch B$b" 200 "$t" GET "/api/v1/batches/ACME/B$b"
		n=0
		for pem in "B$b"/chips/*.pem; do
			u=$(basename "$pem" .pem)
			openssl req -new -key "B$b/chips/$u.key" -subj /CN=x -outform DER 2>/dev/null |
				base64 >"$u.csr" || fail "CSR $u"
			call "$u.p7" "enroll $u" 200 --cert "$pem" --key "B$b/chips/$u.key" \
			    -H 'Content-Type: application/pkcs10' --data-binary "@$u.csr" \
			    "https://$lb_est/.well-known/est/simpleenroll"
			base64 -d <"$u.p7" | openssl pkcs7 -inform DER -print_certs -out "$u.ldevid.pem" ||
				fail "enroll $u: not a PKCS#7"
			echo "$u OEM$k $(openssl x509 -in "$u.ldevid.pem" -noout -serial | sed 's/serial=//')" \
			    >>"enrolled.$k"
			n=$((n + 1))
			[ $n = 2 ] || continue
			api "p$k.body" "revoke $u" 200 "$t" POST "/api/v1/devices/$u/revoke" \
			    '{"reason":"superseded"}'
			echo "$u OEM$k" >>"revoked.$k"
			api "p$k.body" "device $u" 200 "$t" GET "/api/v1/devices/$u"
		done
		echo "B$b" >>done.txt
	done
}

# the reader: each OEM's CRL ("number sha256" in crl.K) and EST CA certificates in turn,
# through HAProxy, until told to stop: requests in flight whenever the server is stopped
reader() {
	while [ ! -e stop ]; do
		for k in 1 2 3; do
			call cacerts.b64 "cacerts of OEM$k" 200 "https://$lb_est/.well-known/est/OEM$k/cacerts"
			call crl.der "CRL of OEM$k" 200 "$lb/api/v1/tenants/OEM$k/crl"
			num=$(openssl crl -inform DER -in crl.der -noout -text |
				sed -n '/CRL Number/{n;s/^ *//;p;}')
			echo "$num $(sha256_of crl.der)" >>"crl.$k"
		done
	done
}

: >done.txt
started=$(date +%s)
for k in 1 2 3; do
	pipeline "$k" 2>"pipeline.$k.err" &
	eval "pipe_$k=$!"
done
reader 2>reader.err &
reader=$!
pids="$pids $pipe_1 $pipe_2 $pipe_3 $reader"

# --- SIGTERM to server c in the middle -------------------------------------------------------
served() { # SERVER: API requests it answered that were not HAProxy's health checks
	grep 'msg="http request" .*server=api ' "$1.log" | grep -vc 'route=/healthz'
}
issued() { # SERVER: enrollments it issued
	grep -c 'msg="est issued"' "$1.log"
}
i=0
until [ "$(wc -l <done.txt)" -ge $((nbatch / 3)) ] && [ "$(served c)" -gt 0 ] && [ "$(issued c)" -gt 0 ]; do
	i=$((i + 1))
	[ $i -lt 600 ] || fail "the load did not reach server c: $(cat pipeline.*.err)"
	for p in $pipe_1 $pipe_2 $pipe_3; do
		kill -0 "$p" 2>/dev/null || fail "a pipeline ended early: $(cat pipeline.*.err)"
	done
	sleep 0.1
done
stats st.kill.csv || fail "HAProxy stats"
for s in a b c; do
	for px in devid_api devid_est; do
		[ "$(stat_of st.kill.csv $px $s stot)" -gt 0 ] ||
			fail "before the SIGTERM, server $s had no $px traffic from HAProxy"
	done
done
note "before the SIGTERM: API requests a=$(served a) b=$(served b) c=$(served c); enrollments a=$(issued a) b=$(issued b) c=$(issued c); $(wc -l <done.txt) batches done"
touch killed
kill -TERM "$c_pid"
wait "$c_pid"
crc=$?
[ $crc = 0 ] || fail "server c exited $crc after SIGTERM, want 0: $(tail -5 c.log)"
grep -q 'msg="serve stopped"' c.log || fail "server c did not stop cleanly: $(tail -5 c.log)"
i=0
until stats st.down.csv && case "$(stat_of st.down.csv devid_api c status)" in DOWN*) true ;; *) false ;; esac &&
    case "$(stat_of st.down.csv devid_est c status)" in DOWN*) true ;; *) false ;; esac; do
	i=$((i + 1))
	[ $i -lt 200 ] || fail "HAProxy did not mark server c DOWN: $(grep c, st.down.csv)"
	sleep 0.1
done
touch down
note "server c stopped (exit 0); HAProxy marked it DOWN: api check '$(stat_of st.down.csv devid_api c check_status)', est check '$(stat_of st.down.csv devid_est c check_status)'"

for k in 1 2 3; do
	eval "p=\$pipe_$k"
	wait "$p" || fail "pipeline $k: $(cat "pipeline.$k.err")"
done
[ "$(wc -l <done.txt)" = "$nbatch" ] || fail "batches done: $(cat done.txt)"

# every job delivered: none pending, none dead (the outbox retries a failed push every few s)
i=0
for k in 1 2 3; do
	t=$(cat "OEM$k.token")
	while :; do
		api jobs.json "jobs of OEM$k" 200 "$t" GET /api/v1/jobs
		[ "$(json jobs.json 'sum(j["state"] != "done" for j in d["jobs"])')" = 0 ] && break
		i=$((i + 1))
		[ $i -lt 300 ] || fail "OEM$k jobs not done: $(cat jobs.json)"
		sleep 0.1
	done
	[ "$(json jobs.json 'len(d["jobs"])')" = $((nbatch * 2 / 3)) ] ||
		fail "OEM$k: an add and a remove job a batch expected: $(cat jobs.json)"
done
touch stop
wait "$reader" || fail "the reader: $(cat reader.err)"
load_s=$(($(date +%s) - started))
stats st.end.csv || fail "HAProxy stats"

# --- requests: all answered, every server took part, the stopped one took nothing more ----
grep -q 'after_sigterm=no' retries.txt && fail "retries before the SIGTERM: $(cat retries.txt)"
nretry=$(wc -l <retries.txt)
for px in devid_api devid_est; do
	for s in a b; do
		before=$(stat_of st.down.csv $px $s stot)
		after=$(stat_of st.end.csv $px $s stot)
		[ "$after" -gt "$before" ] || fail "$px: server $s took nothing after c was DOWN ($before, $after)"
	done
	[ "$(stat_of st.end.csv $px c stot)" = "$(stat_of st.down.csv $px c stot)" ] ||
		fail "$px: HAProxy sent server c traffic after marking it DOWN"
	case "$(stat_of st.end.csv $px c status)" in DOWN*) ;; *) fail "$px: server c is not DOWN at the end" ;; esac
done
for s in a b c; do
	grep -E 'msg="http request" .* status=5[0-9][0-9] ' "$s.log" && fail "server $s answered 5xx"
done
# a 5xx a client got came from HAProxy, and the client sent that request again
api5=$(stat_of st.end.csv devid_api FRONTEND hrsp_5xx)
[ "$api5" = "$(grep -Ec 'http=50[234] |\(HTTP 50[234]\) ' retries.txt)" ] ||
	fail "HAProxy answered $api5 API requests 5xx, not the ones retried: $(cat retries.txt)"
wretr=$(stat_of st.end.csv devid_api BACKEND wretr)
wredis=$(stat_of st.end.csv devid_api BACKEND wredis)
eretr=$(stat_of st.end.csv devid_est BACKEND wretr)
eredis=$(stat_of st.end.csv devid_est BACKEND wredis)
total=0
for s in a b c; do
	total=$((total + $(stat_of st.end.csv devid_api $s hrsp_2xx)))
done
note "API answers 2xx by server: a=$(stat_of st.end.csv devid_api a hrsp_2xx) b=$(stat_of st.end.csv devid_api b hrsp_2xx) c=$(stat_of st.end.csv devid_api c hrsp_2xx), $total in all; 5xx to clients: $api5"
note "EST connections by server: a=$(stat_of st.end.csv devid_est a stot) b=$(stat_of st.end.csv devid_est b stot) c=$(stat_of st.end.csv devid_est c stot)"
note "HAProxy retries/redispatches: API $wretr/$wredis, EST $eretr/$eredis; client retries (devid never answered): $nretry $(tr '\n' ';' <retries.txt)"

# --- batches whole and claimed once --------------------------------------------------------
for k in 1 2 3; do
	t=$(cat "OEM$k.token")
	api audit.json "audit of OEM$k" 200 "$t" GET /api/v1/audit
	[ "$(json audit.json 'd["next"]')" = None ] || fail "OEM$k: more than one page of audit records"
	for b in $(seq "$k" 3 "$nbatch"); do
		api batch.json "batch B$b" 200 "$t" GET "/api/v1/batches/ACME/B$b"
		[ "$(json batch.json '(d["count"], d["state"], d["devices"].get("active"), d["devices"].get("revoked"))')" = \
		    "($chips, 'claimed', $((chips - 1)), 1)" ] || fail "B$b: $(cat batch.json)"
		[ "$(json audit.json "sum(r['action'] == 'batch.claim' and r['object'] == 'ACME/B$b' for r in d['records'])")" = 1 ] ||
			fail "B$b: not one batch.claim audit record"
	done
	n=$(wc -l <"enrolled.$k")
	[ "$(json audit.json 'sum(r["action"] == "est.enroll" for r in d["records"])')" = "$n" ] ||
		fail "OEM$k: $n enrollments, not as many est.enroll records"
	n=$(wc -l <"revoked.$k")
	[ "$(json audit.json 'sum(r["action"] == "device.revoke" for r in d["records"])')" = "$n" ] ||
		fail "OEM$k: $n revocations, not as many device.revoke records"
	run "$devid" admin audit verify "OEM$k"
	[ $rc -eq 0 ] || fail_run "audit verify OEM$k"
done
run "$devid" admin audit verify ACME
[ $rc -eq 0 ] || fail_run "audit verify ACME"
note "$nbatch batches of $chips whole, each claimed once (one batch.claim); audit chains verify"

# --- enrollments: one certificate each, the one the device got -------------------------------
cat enrolled.1 enrolled.2 enrolled.3 >enrolled.txt
[ "$(wc -l <enrolled.txt)" = $((nbatch * keys)) ] || fail "enrollments: $(wc -l <enrolled.txt)"
[ "$(awk '{ print tolower($3) }' enrolled.txt | sort -u | wc -l)" = $((nbatch * keys)) ] ||
	fail "serials repeat: $(cat enrolled.txt)"
while read -r u oem serial; do
	api dev.json "device $u" 200 "$(cat "$oem.token")" GET "/api/v1/devices/$u"
	got=$(json dev.json '" ".join(c["serial"] for c in d["certificates"])')
	want=$(printf '%s' "$serial" | tr 'A-F' 'a-f' | sed 's/^0*//')
	[ "$(printf '%s' "$got" | sed 's/^0*//')" = "$want" ] ||
		fail "$u: certificates recorded '$got', the device got $serial"
done <enrolled.txt
issued_all=$(($(issued a) + $(issued b) + $(issued c)))
[ "$issued_all" = $((nbatch * keys)) ] || fail "est issued lines: $issued_all"
note "$((nbatch * keys)) enrollments, each recorded once with the serial the device got (issued: a=$(issued a) b=$(issued b) c=$(issued c))"

# --- deliveries: every device added once, every revoked one removed once ---------------------
for k in 1 2 3; do
	for b in $(seq "$k" 3 "$nbatch"); do
		api devs.json "devices of B$b" 200 "$(cat "OEM$k.token")" GET "/api/v1/devices?batch=ACME/B$b&limit=1000"
		json devs.json '"\n".join(x["udid"] + " OEM'$k'" for x in d["devices"])' >>devices.txt
	done
done
[ "$(wc -l <devices.txt)" = $((nbatch * chips)) ] || fail "devices: $(wc -l <devices.txt)"
cat revoked.1 revoked.2 revoked.3 >revoked.txt
# as docs/api.md promises: at least once, a retry with the same event id (the receiver
# applies each id once and counts every push in events.raw). An add pushed after its device
# was revoked leaves the device out (the store reads active devices when it pushes).
/usr/bin/python3 - events devices.txt revoked.txt >deliveries.txt <<'EOF' || fail "deliveries: $(cat deliveries.txt)"
import collections, json, sys
events = [json.loads(line) for line in open(sys.argv[1])]  # each event id once, as they came
raw = [line.strip() for line in open(sys.argv[1] + ".raw")]
owner = dict(line.split() for line in open(sys.argv[2]))
revoked = {line.split()[0] for line in open(sys.argv[3])}
seen = {"add": collections.defaultdict(list), "remove": collections.defaultdict(list)}
bad = []
for i, ev in enumerate(events):
    for dev in ev["devices"]:
        if owner.get(dev["udid"]) != ev["tenant"]:
            bad.append(f"{ev['event']}: {dev['udid']} is not a device of {ev['tenant']}")
        seen[ev["action"]][dev["udid"]].append(i)
late = 0
for udid in owner:
    adds, removes = seen["add"][udid], seen["remove"][udid]
    if udid not in revoked:
        if len(adds) != 1 or removes:
            bad.append(f"{udid}: added under {len(adds)} event ids, removed under {len(removes)}")
    elif len(removes) != 1 or len(adds) > 1 or (adds and adds[0] > removes[0]):
        bad.append(f"{udid} (revoked): added under {len(adds)} event ids, removed under "
                   f"{len(removes)}, first add after the remove: {bool(adds and removes and adds[0] > removes[0])}")
    elif not adds:
        late += 1
ids = {ev["event"] for ev in events}
unknown = sorted(set(raw) - ids)
if bad or unknown:
    print("; ".join(bad[:10]), "unknown event ids:", unknown[:10])
    sys.exit(1)
print(f"{len(events)} events ({sum(len(e['devices']) for e in events)} devices), {len(raw)} pushes, "
      f"{len(raw) - len(events)} duplicates (same event id); {late} revoked before their add was pushed")
EOF
pushed() { grep -c 'msg="delivery ok"' "$1.log"; }
note "receiver: $(cat deliveries.txt); pushed by a=$(pushed a) b=$(pushed b) c=$(pushed c)"

# --- CRL numbers ---------------------------------------------------------------------------
for k in 1 2 3; do
	[ -s "crl.$k" ] || fail "no CRL of OEM$k was read"
	sort -n -c -k1,1 "crl.$k" 2>/dev/null || fail "OEM$k: a CRL number went back: $(uniq "crl.$k")"
	[ -z "$(sort -u "crl.$k" | awk '{ print $1 }' | uniq -d)" ] ||
		fail "OEM$k: one CRL number on two different CRLs: $(sort -u "crl.$k")"
	call crl.der "last CRL of OEM$k" 200 "$lb/api/v1/tenants/OEM$k/crl"
	openssl crl -inform DER -in crl.der -CAfile "ca$k.pem" -noout 2>&1 | grep -q 'verify OK' ||
		fail "OEM$k: the CRL does not verify"
	openssl crl -inform DER -in crl.der -noout -text >crl.txt
	while read -r u oem; do
		sn=$(awk -v u="$u" '$1 == u { print $3 }' enrolled.txt)
		grep -qi "$sn" crl.txt || fail "$u ($sn) not on the CRL of $oem"
	done <"revoked.$k"
	reads=$(wc -l <"crl.$k")
	distinct=$(sort -u "crl.$k" | wc -l)
	note "OEM$k: $reads CRL reads, $distinct distinct CRLs, numbers $(awk '{ print $1 }' "crl.$k" | uniq | tr '\n' ' ')"
done

note "ok: load of ${load_s} s through HAProxy with one of three servers stopped half-way"
exit 0
