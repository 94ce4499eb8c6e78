#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Crash trials (docs/crash-trials.md): devid serve is killed with SIGKILL at a random moment of a
# mixed workload (publishes, claims, manual provisioning, webhook deliveries, EST enrollments),
# restarted, left to finish, and checked: no half batch, no acknowledged publish, claim or
# certificate lost, every change with its audit record and outbox job, the audit chains
# verify, and every job's devices reach a counting webhook receiver in exactly one event each
# (repeats of an event carry the same body). A trial's plan (what is in flight when it is
# killed, and when) comes from its seed; trial N of a run seeded S has seed S+N-1.
# Usage: crash.sh DEVID sqlite|postgres [TRIALS]  (postgres: under scripts/with-postgres)
# Environment: CRASH_TRIALS (default 4; the argument wins), CRASH_SEED (the run's seed;
# default random), CRASH_KEEP=DIR (copy the work directory of failed trials there).
# shellcheck disable=SC2154 # the trial's plan (focus, kill_after, ...) is set by eval
store=${2:-sqlite}
me=crash-$store
. "$(dirname "$0")/lib.sh"
devid=${1:-}
need_devid "$devid"
devid=$(cd "$(dirname "$devid")" && pwd)/$(basename "$devid") # the trials change directory
need_tool curl curl
need_tool openssl openssl
need_tool python3 python3
helper="/usr/bin/python3 $(cd "$(dirname "$0")" && pwd)/crash_trial.py"
trials=${3:-${CRASH_TRIALS:-4}}
seed=${CRASH_SEED:-$(od -An -N3 -tu4 /dev/urandom | tr -d ' ')}
case $store in
sqlite) ;;
postgres)
	[ -n "${DEVID_TEST_PG_URL:-}" ] || skip "DEVID_TEST_PG_URL not set (run under scripts/with-postgres)"
	need_tool psql postgresql-client
	;;
*) fail "the store is sqlite or postgres" ;;
esac
case $trials$seed in *[!0-9]*) fail "CRASH_TRIALS and CRASH_SEED are numbers" ;; esac
make_tmp
cd "$tmp" || fail "cd"
unset DEVID_SERVER DEVID_TOKEN DEVID_CACERT
# not /etc/devid/devid.conf, which the deb test may install meanwhile (tests/meson.build)
DEVID_CONFIG=/dev/null
export DEVID_CONFIG
secret="crash-receiver-secret-0123456789"

now() { date +%s.%N; }

# db_url NAME: the database of a trial (or of the template)
db_url() {
	case $store in
	sqlite) echo "sqlite:$tmp/$1.db" ;;
	postgres) echo "${DEVID_TEST_PG_URL%/*}/$1" ;;
	esac
}

pg() { psql -X -q -v ON_ERROR_STOP=1 -d "$DEVID_TEST_PG_URL" -c "$1" >/dev/null; }

# serve_start: devid serve on $DEVID_DB; its pid in $serve_pid, the API in $url, EST in $est
serve_start() {
	: >serve.out
	echo "--- start $(now)" >>serve.log
	"$devid" serve --listen 127.0.0.1:0 --device-listen 127.0.0.1:0 --tls-cert "$tmp/srv.pem" \
	    --tls-key "$tmp/srv.key" --secrets-key "file:$tmp/secrets.key" --job-lease 2 \
	    --claim-burst 0 >serve.out 2>>serve.log &
	serve_pid=$!
	i=0
	until grep -q 'EST on' serve.out 2>/dev/null; do
		i=$((i + 1))
		if ! kill -0 "$serve_pid" 2>/dev/null || [ $i -ge 300 ]; then
			fail "devid serve did not start: $(tail -5 serve.log)"
		fi
		sleep 0.1
	done
	url=$(sed -n 's/.*listening on //p' serve.out)
	est=$(sed -n 's|.*EST on \(https://[^/ ]*\).*|\1|p' serve.out)
}

serve_stop() {
	kill "$serve_pid" 2>/dev/null
	wait "$serve_pid" || fail "devid serve did not stop cleanly: $(tail -5 serve.log)"
	serve_pid=""
	if grep -Eq 'ERROR: [A-Za-z]+Sanitizer|runtime error:' serve.log; then
		grep -E -A20 'ERROR: [A-Za-z]+Sanitizer|runtime error:' serve.log | head -40 >&2
		fail "sanitizer report from devid serve"
	fi
}

# call OUT TOKEN METHOD PATH [BODY]: the answer in OUT, its HTTP status on stdout; 000 when no
# whole answer arrived (an answer cut short by the kill acknowledges nothing)
call() {
	if [ -n "${5:-}" ]; then
		set -- "$@" -H 'Content-Type: application/json' --data-binary "$5"
	fi
	_o=$1 _t=$2 _m=$3 _p=$4
	shift 4
	[ $# -gt 0 ] && shift
	_s=$(curl -sS --cacert "$tmp/srv.pem" -o "$_o" -w '%{http_code}' -X "$_m" \
	    -H "Authorization: Bearer $_t" "$@" "$url$_p" 2>/dev/null) || _s=000
	echo "$_s"
}

# --- once per run: the vendor's reels, the server's certificate, a template database ------
"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "vendor init"
mint() { # NAME COUNT [KEYS]
	"$devid" vendor mint --dir v --batch "$1" --count "$2" --out "$1" --keep-keys "${3:-0}" \
	    --quiet >/dev/null || fail "mint $1"
	echo "$1 $2" >>reels.txt
}
for b in P1 P2 P3 P4; do mint $b 40; done
mint BIG 2500 # three chunks of a push
mint E1 60 60 # claimed before the trials: the devices that enroll over EST
for b in N1 N2 N3; do mint $b 1500; done # published during the trials
for f in E1/chips/*.pem; do
	f=${f##*/}
	echo "${f%.pem}"
done >chips.txt
n=0
while read -r u; do
	n=$((n + 1))
	openssl req -new -key "E1/chips/$u.key" -subj /CN=x -outform DER 2>/dev/null |
		base64 >"csr-$n.b64" || fail "CSR for $u"
done <chips.txt
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout srv.key -out srv.pem >/dev/null 2>&1 || fail "server cert"
"$devid" admin secrets-key init "file:$tmp/secrets.key" >/dev/null || fail "secrets-key init"

[ "$store" = postgres ] && { pg "CREATE DATABASE crash_template" || fail "CREATE DATABASE"; }
DEVID_DB=$(db_url crash_template)
export DEVID_DB
"$devid" admin migrate >/dev/null || fail "migrate"
"$devid" admin tenant add ACME --kind vendor >/dev/null || fail "tenant ACME"
"$devid" admin tenant add OEM1 --kind oem >/dev/null || fail "tenant OEM1"
VT=$("$devid" admin token add ACME --role vendor) || fail "vendor token"
A1=$("$devid" admin token add OEM1 --role admin) || fail "admin token"
"$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem >/dev/null || fail "trust"
"$devid" admin ca init --tenant OEM1 --key-file "$tmp/ca.key" >/dev/null 2>&1 || fail "ca init"
serve_start
for b in P1 P2 P3 P4 BIG E1; do
	"$devid" vendor publish --server "$url" --cacert srv.pem --token "$VT" $b >/dev/null ||
		fail "publish $b"
done
[ "$(call body "$A1" POST /api/v1/claims "{\"code\":\"$(cat E1/claim.txt)\"}")" = 200 ] ||
	fail "claim E1: $(cat body)"
serve_stop
[ "$store" = postgres ] || [ ! -s crash_template.db-wal ] ||
	fail "the template database kept a write-ahead log: a copy of the file would miss it"
note "run seed $seed: $trials trials on $store (replay one: CRASH_SEED=<its seed> CRASH_TRIALS=1)"

# --- the workload's clients; each logs "begin OP OBJ T" and "end OP OBJ T STATUS [...]" ------
begin() { echo "begin $1 $2 $(now)" >>ops.log; }
end() { echo "end $1 $2 $(now) $3 ${4:-}" >>ops.log; }
killed() { [ -e killed ]; }

publisher() {
	gaps=$publish_gaps
	for b in $publish_order; do
		sleep "${gaps%% *}"
		gaps=${gaps#* }
		killed && break
		begin publish "$b"
		"$devid" vendor publish --server "$url" --cacert "$tmp/srv.pem" --token "$VT" \
		    "$tmp/$b" >/dev/null 2>&1
		end publish "$b" $?
	done
}

claim() { # OP BATCH
	begin "$1" "$2"
	end "$1" "$2" "$(call "$1.out" "$A1" POST /api/v1/claims "{\"code\":\"$(cat "$tmp/$2/claim.txt")\"}")"
}

claimer() {
	gaps=$claim_gaps
	for b in $claim_order; do
		sleep "${gaps%% *}"
		gaps=${gaps#* }
		killed && return
		claim claim "$b"
	done
	for b in $publish_order; do # each new batch once its publish is answered
		until grep -q "^end publish $b " ops.log || killed; do sleep 0.02; done
		killed && return
		grep -q "^end publish $b [^ ]* 0 " ops.log && claim claim "$b"
	done
}

provisioner() {
	gaps=$provision_gaps
	for p in $provision; do
		sleep "${gaps%% *}"
		gaps=${gaps#* }
		killed && break
		case $p in
		batch) what='"batch":"ACME/E1"' ;;
		devices:*)
			what='"devices":['
			for i in $(echo "${p#devices:}" | tr , ' '); do
				what="$what\"$(sed -n "${i}p" "$tmp/chips.txt")\","
			done
			what="${what%,}]"
			;;
		esac
		begin provision "$p"
		end provision "$p" "$(call provision.out "$A1" POST /api/v1/provision "{\"connector\":\"WH\",$what}")"
	done
}

enroller() { # CHIP-INDEX...
	for i in "$@"; do
		sleep "$est_gap"
		killed && break
		u=$(sed -n "${i}p" "$tmp/chips.txt")
		begin est "$u"
		s=$(curl -sS --cacert "$tmp/srv.pem" --cert "$tmp/E1/chips/$u.pem" \
		    --key "$tmp/E1/chips/$u.key" -H 'Content-Type: application/pkcs10' \
		    --data-binary "@$tmp/csr-$i.b64" -o "est-$u.b64" -w '%{http_code}' \
		    "$est/.well-known/est/simpleenroll" 2>/dev/null) || s=000
		end est "$u" "$s"
	done
}

# focus_count: how many of the focus operations have begun
focus_count() {
	case $focus in
	delivery) grep -c '"event"' recv.log ;;
	*) grep -c "^begin $focus " ops.log ;;
	esac
}

# kill_now: SIGKILL devid serve; the moment in kill.txt
kill_now() {
	kill -0 "$serve_pid" 2>/dev/null || fail "devid serve ended before the kill: $(tail -5 serve.log)"
	kill -KILL "$serve_pid"
	now >kill.txt
	wait "$serve_pid" 2>/dev/null
}

# --- one trial: INDEX SEED, in a subshell (fail ends the trial, not the run) ----------------
trial() {
	d="$tmp/trial-$1"
	mkdir "$d" || fail "mkdir $d"
	cd "$d" || fail "cd $d"
	cp "$tmp/reels.txt" "$tmp/chips.txt" . || fail "reels.txt, chips.txt"
	eval "$($helper plan "$2")"
	recv_pid="" serve_pid="" clients=""
	trap 'kill $serve_pid $recv_pid $clients 2>/dev/null' EXIT
	case $store in
	sqlite) cp "$tmp/crash_template.db" "$tmp/crash_$1.db" || fail "copy the template" ;;
	postgres) pg "CREATE DATABASE crash_$1 TEMPLATE crash_template" || fail "CREATE DATABASE" ;;
	esac
	DEVID_DB=$(db_url "crash_$1")
	export DEVID_DB

	: >ops.log
	: >recv.log
	$helper receiver "$secret" "$d/recv.log" "$2" "$recv_delay" >recv.port 2>recv.err &
	recv_pid=$!
	wait_file recv.port "the receiver"
	serve_start
	s=$(call body "$A1" PUT /api/v1/connectors/WH \
	    "{\"type\":\"webhook\",\"mode\":\"auto\",\"config\":{\"url\":\"http://127.0.0.1:$(cat recv.port)/\",\"secret\":\"$secret\"}}")
	[ "$s" = 201 ] || fail "connector: $s $(cat body)"

	t0=$(now)
	publisher &
	clients="$clients $!"
	claimer &
	clients="$clients $!"
	provisioner &
	clients="$clients $!"
	# shellcheck disable=SC2086 # chip indexes, one word each
	enroller $est_a &
	clients="$clients $!"
	# shellcheck disable=SC2086
	enroller $est_b &
	clients="$clients $!"
	i=0
	until [ "$(focus_count)" -ge "$focus_nth" ]; do
		i=$((i + 1))
		[ $i -lt 3000 ] || break # 30 s: the workload ended first; kill all the same
		sleep 0.01
	done
	reached=$(focus_count)
	sleep "$kill_after"
	kill_now
	touch killed
	# shellcheck disable=SC2086
	wait $clients
	clients=""
	tk=$(cat kill.txt)
	what="killed $kill_after s after $focus #$focus_nth began"
	[ "$reached" -ge "$focus_nth" ] || what="killed with only $reached $focus operations begun"
	note "trial $1 seed $2: $what, $(awk "BEGIN { printf \"%.3f\", $tk - $t0 }") s into the workload; in flight: $($helper inflight "$d" "$tk")"

	serve_start
	if [ -n "$second_kill" ]; then
		sleep "$second_kill"
		kill_now
		note "trial $1 seed $2: killed again $second_kill s after the restart, while it recovered"
		serve_start
	fi
	while read -r b _; do claim postclaim "$b"; done <reels.txt
	i=0
	until [ "$(call body "$A1" GET '/api/v1/jobs?state=pending')" = 200 ] &&
		grep -q '"jobs":\[\]' body; do
		i=$((i + 1))
		[ $i -lt 600 ] || fail "jobs still pending 120 s after the restart: $(head -c 600 body)"
		sleep 0.2
	done
	[ "$(call body "$A1" GET /api/v1/batches)" = 200 ] || fail "GET /api/v1/batches: $(cat body)"
	mv body batches.json
	for t in ACME OEM1; do
		"$devid" admin audit verify $t >verify.out 2>&1 ||
			fail "the audit chain of $t does not verify after the crash: $(cat verify.out)"
	done
	serve_stop
	for f in est-*.b64; do
		[ -e "$f" ] || continue
		u=${f#est-}
		u=${u%.b64}
		grep -q "^end est $u [^ ]* 200 " ops.log || continue
		sn=$(base64 -d <"$f" | openssl pkcs7 -inform DER -print_certs 2>/dev/null |
			openssl x509 -noout -serial 2>/dev/null | sed 's/^serial=//')
		[ -n "$sn" ] || fail "EST answered 200 for $u without a certificate: $(head -c 200 "$f")"
		echo "$u $sn" >>serials.txt
	done
	$helper check "$d" "$DEVID_DB" >check.out || fail "trial $1 seed $2: invariants violated (above)"
	note "trial $1 seed $2: $(cat check.out)"
}

passed=0
failed=""
started=$(date +%s)
n=1
while [ $n -le "$trials" ]; do
	s=$((seed + n - 1))
	if (trial $n $s); then
		passed=$((passed + 1))
	else
		failed="$failed $s"
		if [ -n "${CRASH_KEEP:-}" ]; then
			mkdir -p "$CRASH_KEEP" && cp -r "$tmp/trial-$n" "$CRASH_KEEP/$store-seed-$s"
			[ "$store" = sqlite ] && cp "$tmp/crash_$n".db* "$CRASH_KEEP/$store-seed-$s/"
		fi
	fi
	case $store in
	sqlite) rm -f "$tmp/crash_$n.db" "$tmp/crash_$n.db-wal" "$tmp/crash_$n.db-shm" ;;
	postgres) pg "DROP DATABASE IF EXISTS crash_$n WITH (FORCE)" ;;
	esac
	rm -rf "$tmp/trial-$n"
	n=$((n + 1))
done
note "$passed of $trials trials passed on $store in $(($(date +%s) - started)) s (run seed $seed)"
[ -z "$failed" ] || fail "failed trials, replay each with CRASH_SEED=SEED CRASH_TRIALS=1:$failed"
exit 0
