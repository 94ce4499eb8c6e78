#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# /metrics after real traffic, with the real binaries on 127.0.0.1: a reel published (and
# published again: refused), a claim that binds and one that does not, a webhook delivery
# into devid gateway, an EST enrollment and two refusals. The scrape must pass
# `promtool check metrics` (Debian package prometheus) and every domain counter must have
# moved by exactly what was done; every metric the Grafana dashboard
# (docs/grafana/devid-dashboard.json) queries must be in the scrape.
# Without promtool the counters and the dashboard are still checked, then the test is
# skipped (77), as promtool's check is what it exists for.
# Usage: metrics.sh DEVID DASHBOARD.json
me=metrics
. "$(dirname "$0")/lib.sh"
devid=${1:-}
dashboard=${2:-}
need_devid "$devid"
[ -f "$dashboard" ] || fail "$dashboard: no dashboard"
need_tool curl curl
need_tool openssl openssl
need_tool python3 python3
make_tmp
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd"
export DEVID_DB="sqlite:$tmp/devid.db"
secret="gateway-secret-0123456789abcdef"
reel=12

wait_for() { # FILE PATTERN WHAT
	i=0
	until grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 150 ] || fail "$3 did not start: $(cat "$1" "$1.log" 2>/dev/null | tail -5)"
		sleep 0.1
	done
}

scrape() { # the live /metrics into metrics.txt
	status=$(curl -sS --cacert srv.pem -o metrics.txt -w '%{http_code}' "$DEVID_SERVER/metrics") ||
		fail "GET /metrics failed"
	[ "$status" = 200 ] || fail "GET /metrics: HTTP $status"
}

# value SAMPLE: the value of one sample, e.g. 'devid_claims_total{result="ok"}' ("" if absent)
value() {
	awk -v s="$1" '$1 == s { print $2 }' metrics.txt
}

expect() { # SAMPLE WANT
	got=$(value "$1")
	[ "$got" = "$2" ] || check_failed "$1 is ${got:-absent}, want $2"
}

est() { # OP CERT KEY CSR.b64: POST a CSR to the EST port, the status in $status
	if [ -n "$2" ]; then
		set -- "$1" --cert "$2" --key "$3" --data-binary "@$4"
	else
		set -- "$1" --data-binary "@$4"
	fi
	op=$1
	shift
	status=$(curl -sS --cacert srv.pem -H 'Content-Type: application/pkcs10' \
	    -o resp.b64 -w '%{http_code}' "$@" "https://$est_addr/.well-known/est/OEM1/$op") ||
		fail "curl $op failed"
}

csr() { # KEY OUT: a base64 PKCS#10
	openssl req -new -key "$1" -subj /CN=x -outform DER 2>/dev/null | base64 >"$2" ||
		fail "openssl req"
}

acl_active() { # devices active in the gateway's ACL
	curl -sS -H "X-Devid-Signature: sha256=$(printf '' | openssl dgst -sha256 -hmac "$secret" | awk '{ print $NF }')" "http://$gw_admin/devid/acl" |
		python3 -c 'import json,sys; print(sum(1 for d in json.load(sys.stdin)["devices"] if d["state"] == "active"))'
}

# --- a vendor with two reels, two OEMs, a CA, devid serve with its EST port, a gateway -----
"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "init"
"$devid" vendor mint --dir v --batch B1 --count $reel --out B1 --keep-keys 2 --quiet >/dev/null || fail "mint B1"
"$devid" vendor mint --dir v --batch B2 --count 2 --out B2 --keep-keys 1 --quiet >/dev/null || fail "mint B2"
"$devid" admin tenant add ACME --kind vendor >/dev/null
"$devid" admin tenant add OEM1 --kind oem >/dev/null
"$devid" admin tenant add OEM2 --kind oem >/dev/null
VT=$("$devid" admin token add ACME --role vendor)
A1=$("$devid" admin token add OEM1 --role admin)
A2=$("$devid" admin token add OEM2 --role admin)
"$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem >/dev/null
"$devid" admin ca init --tenant OEM1 --key-file ca.key >/dev/null 2>&1 || fail "ca init"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout srv.key -out srv.pem >/dev/null 2>&1 || fail "server cert"
"$devid" admin secrets-key init "file:$tmp/secrets.key" >/dev/null || fail "secrets-key init"
# one attempt a chunk: the connector to a closed port makes a dead job at its first failure
"$devid" serve --listen 127.0.0.1:0 --device-listen 127.0.0.1:0 --tls-cert srv.pem \
    --tls-key srv.key --secrets-key "file:$tmp/secrets.key" --max-attempts 1 >serve.out 2>serve.log &
pids="$pids $!"
wait_for serve.out 'EST on' "devid serve"
export DEVID_SERVER="$(sed -n 's/.*listening on //p' serve.out)"
export DEVID_CACERT="$tmp/srv.pem"
est_addr=$(sed -n 's|.*EST on https://\([^/ ]*\).*|\1|p' serve.out)
"$devid" gateway --listen 127.0.0.1:0 --tls-cert srv.pem --tls-key srv.key --trust v/root.pem \
    --admin-listen 127.0.0.1:0 --secret "$secret" --db "$tmp/gateway.db" >gw.out 2>gw.log &
pids="$pids $!"
wait_for gw.out 'admin on' "devid gateway"
gw_admin=$(sed -n 's|.*admin on http://\([^ ]*\).*|\1|p' gw.out)

scrape
promtool_ok=true
command -v promtool >/dev/null 2>&1 || promtool_ok=false
if $promtool_ok; then
	promtool check metrics <metrics.txt >promtool.out 2>&1 ||
		check_failed "promtool check metrics, before any traffic: $(cat promtool.out)"
fi
expect 'devid_database_up' 1

# --- the traffic ---------------------------------------------------------------------------
"$devid" vendor publish --token "$VT" B1 >/dev/null || fail "publish B1"
"$devid" vendor publish --token "$VT" B2 >/dev/null || fail "publish B2"
run "$devid" vendor publish --token "$VT" B1
[ $rc -ne 0 ] || fail_run "B1 published twice"
status=$(curl -sS --cacert srv.pem -o body -w '%{http_code}' -H "Authorization: Bearer $A1" -d \
    "{\"name\":\"GW\",\"type\":\"webhook\",\"mode\":\"auto\",\"config\":{\"url\":\"http://$gw_admin/devid/events\",\"secret\":\"$secret\"}}" \
    "$DEVID_SERVER/api/v1/connectors")
[ "$status" = 201 ] || fail "connector: $status $(cat body)"
status=$(curl -sS --cacert srv.pem -o body -w '%{http_code}' -H "Authorization: Bearer $A1" -d \
    "{\"name\":\"DOWN\",\"type\":\"webhook\",\"mode\":\"auto\",\"config\":{\"url\":\"http://127.0.0.1:9/devid/events\",\"secret\":\"$secret\"}}" \
    "$DEVID_SERVER/api/v1/connectors")
[ "$status" = 201 ] || fail "connector DOWN: $status $(cat body)"
"$devid" claim --token "$A1" "$(cat B1/claim.txt)" >/dev/null || fail "claim B1"
# OEM1's batch, claimed by another tenant: answered as a wrong code
run "$devid" claim --token "$A2" "$(cat B1/claim.txt)"
[ $rc -ne 0 ] || fail_run "OEM2 claimed OEM1's batch"
i=0
until [ "$(acl_active)" = $reel ]; do
	i=$((i + 1))
	[ $i -lt 300 ] || fail "gateway ACL: $(acl_active) active, want $reel"
	sleep 0.1
done

c0=$(ls B1/chips/*.key | sed -n 1p | sed 's|.*/||; s|\.key$||')
loose=$(ls B2/chips/*.key | sed -n 1p | sed 's|.*/||; s|\.key$||')
csr "B1/chips/$c0.key" c0.b64
est simpleenroll "B1/chips/$c0.pem" "B1/chips/$c0.key" c0.b64
[ "$status" = 200 ] || fail "enroll: HTTP $status: $(cat resp.b64)"
csr "B2/chips/$loose.key" loose.b64
est simpleenroll "B2/chips/$loose.pem" "B2/chips/$loose.key" loose.b64
[ "$status" = 403 ] || fail "an unclaimed device's enrollment: HTTP $status, want 403"
est simpleenroll "" "" c0.b64
[ "$status" = 403 ] || fail "an enrollment without a client certificate: HTTP $status, want 403"

# --- the scrape ----------------------------------------------------------------------------
# the job is done once its progress is committed, just after the gateway has the devices
i=0
until scrape && [ "$(value 'devid_deliveries_total{connector_type="webhook",result="ok"}')" = 1 ] &&
	[ "$(value 'devid_jobs_dead_total{connector_type="webhook"}')" = 1 ]; do
	i=$((i + 1))
	[ $i -lt 100 ] || break
	sleep 0.1
done
if $promtool_ok; then
	promtool check metrics <metrics.txt >promtool.out 2>&1 ||
		check_failed "promtool check metrics: $(cat promtool.out)"
fi
expect 'devid_batches_ingested_total{source="vendor"}' 2
expect 'devid_entries_ingested_total{source="vendor"}' $((reel + 2))
expect 'devid_batches_refused_total{source="vendor",rule="duplicate"}' 1
expect 'devid_batches_refused_total{source="vendor",rule="entries"}' 0
expect 'devid_batches_ingested_total{source="import"}' 0
expect 'devid_claims_total{result="ok"}' 1
expect 'devid_claims_total{result="wrong"}' 1
expect 'devid_claims_total{result="rate_limited"}' 0
expect 'devid_deliveries_total{connector_type="webhook",result="ok"}' 1
expect 'devid_deliveries_total{connector_type="webhook",result="failed"}' 1
expect 'devid_delivered_devices_total{connector_type="webhook",result="ok"}' $reel
expect 'devid_delivery_duration_seconds_count{connector_type="webhook",result="ok"}' 1
expect 'devid_jobs_dead_total{connector_type="webhook"}' 1
expect 'devid_jobs{connector_type="webhook",state="dead"}' 1
expect 'devid_est_issued_total{op="enroll"}' 1
expect 'devid_est_refused_total{reason="not_claimed"}' 1
expect 'devid_est_refused_total{reason="no_certificate"}' 1
expect 'devid_est_refused_total{reason="error"}' 0
expect 'devid_ca_sign_duration_seconds_count{object="certificate"}' 1
expect 'devid_ca_sign_duration_seconds_bucket{object="certificate",le="+Inf"}' 1
expect 'devid_database_up' 1
[ -n "$(value 'http_requests_total{server="api",method="GET",route="/metrics",status="200"}')" ] ||
	check_failed "the HTTP metrics are not beside the domain's"
grep -q '^# TYPE devid_jobs gauge$' metrics.txt || check_failed "no devid_jobs family"
# the dead job is logged as such, with its connector and the cloud's error
grep 'msg="delivery job dead"' serve.log | grep -q 'connector=DOWN' ||
	check_failed "no \"delivery job dead\" line for DOWN: $(grep delivery serve.log | tail -3)"
# one connection per request thread and one for the outbox; in use: at most those (a worker's)
size=$(value 'devid_db_pool_connections')
in_use=$(value 'devid_db_pool_connections_in_use')
[ "${size:-0}" -ge 2 ] && [ "${in_use:-x}" -ge 0 ] && [ "$in_use" -le "$size" ] 2>/dev/null ||
	check_failed "pool: ${in_use:-absent} of ${size:-absent} connections in use"

# --- the dashboard queries only what /metrics has --------------------------------------------
python3 - "$dashboard" metrics.txt >dashboard.out 2>&1 <<'EOF' || check_failed "dashboard: $(cat dashboard.out)"
import json, re, sys

dash = json.load(open(sys.argv[1]))
names = set()
for line in open(sys.argv[2]):
    if line.startswith("# TYPE "):
        _, _, name, kind = line.split()
        names.add(name)
        if kind == "histogram":
            names.update(name + s for s in ("_bucket", "_sum", "_count"))
    elif line.strip() and not line.startswith("#"):
        names.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))

exprs = []
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == "expr" and isinstance(v, str):
                exprs.append(v)
            else:
                walk(v)
    elif isinstance(o, list):
        for v in o:
            walk(v)
walk(dash)
if not exprs:
    sys.exit("no query in the dashboard")
used = set()
for e in exprs:
    used.update(re.findall(r"\b((?:devid|http)_[a-zA-Z0-9_]+)", e))
missing = sorted(used - names)
if missing:
    sys.exit("queried but not in /metrics: " + ", ".join(missing))
print(len(exprs), "queries over", len(used), "metrics")
EOF
note "dashboard: $(cat dashboard.out)"

$promtool_ok || { finish "counters and dashboard checked" >/dev/null; skip "promtool is not installed (Debian package prometheus)"; }
finish "promtool passed; domain counters moved by what was done; the dashboard's metrics exist"
