#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# cli: the devid client against a real devid serve, as an operator would guess it: global
# options before and after the command, flags over the environment, json (parsed by Python)
# and aligned tables with RFC 3339 times, every API feature's command (audit, jobs,
# connectors, provision, quota, tokens, trust), a device found by its chip serial, the
# messages for an untrusted certificate, a certificate for another host name and a refused
# connection, a JSON export imported into another devid, a CSV export refused, --quiet, and
# progress only on a terminal.
#
# Usage: sh cli.sh DEVID
set -u
me=cli
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

devid=${1:-}
need_devid "$devid"
need_tool curl curl
need_tool /usr/bin/python3 python3
need_tool openssl openssl
make_tmp
servers=""
trap 'for p in $servers; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd"
unset DEVID_SERVER DEVID_TOKEN DEVID_CACERT
export DEVID_DB="sqlite:$tmp/a.db"

# start NAME DB [ARGS]: a devid serve on a free port of DB; its URL in $url
start() {
	name=$1
	db=$2
	shift 2
	"$devid" serve --db "$db" --listen 127.0.0.1:0 --threads 2 --workers 0 \
	    --secrets-key "file:$tmp/secrets.key" "$@" >"$name.out" 2>"$name.log" &
	servers="$servers $!"
	i=0
	until grep -q 'listening on' "$name.out" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 150 ] || fail "$name did not start: $(tail -5 "$name.log")"
		sleep 0.1
	done
	url=$(sed -n 's/.*listening on //p' "$name.out")
}

# ok WHAT CMD...: CMD exits 0 (counted, the script goes on)
ok() {
	what=$1
	shift
	run "$@"
	[ "$rc" -eq 0 ] || check_failed_run "$what: exit status $rc, expected 0"
}

# refused WHAT STATUS ERE CMD...: CMD exits STATUS with ERE in its stderr
refused() {
	what=$1
	want_rc=$2
	want=$3
	shift 3
	run "$@"
	[ "$rc" -eq "$want_rc" ] || check_failed_run "$what: exit status $rc, expected $want_rc"
	grep -Eq -- "$want" "$tmp/err" || check_failed_run "$what: stderr does not say /$want/"
}

# py EXPR: EXPR over the JSON of the last run's stdout as j; prints its value
py() {
	/usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
	    "$tmp/out" "$1" 2>/dev/null
}

# expect_py WHAT EXPR WANT: py EXPR prints WANT
expect_py() {
	got=$(py "$2")
	[ "$got" = "$3" ] || check_failed_run "$1: $2 is '$got', expected '$3'"
}

# --- set-up: a devid vendor, a vendor outside devid, two OEMs ---------------------------
"$devid" admin secrets-key init "file:$tmp/secrets.key" >/dev/null || fail "secrets-key"
"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "vendor init"
"$devid" vendor init --dir w --vendor OUTSIDE >/dev/null || fail "vendor init OUTSIDE"
"$devid" vendor mint --dir v --batch B1 --count 6 --out B1 --keep-keys 0 --quiet >/dev/null || fail "mint"
"$devid" vendor mint --dir v --batch B2 --count 2 --out B2 --keep-keys 0 --quiet >/dev/null || fail "mint"
"$devid" vendor mint --dir w --batch W1 --count 3 --out W1 --keep-keys 0 --quiet >/dev/null || fail "mint W1"
"$devid" admin migrate >/dev/null || fail "migrate"
"$devid" admin tenant add ACME --kind vendor >/dev/null || fail "tenant"
"$devid" admin tenant add OEM1 --kind oem >/dev/null || fail "tenant"
"$devid" admin tenant add OEM2 --kind oem >/dev/null || fail "tenant"
VT=$("$devid" admin token add ACME --role vendor) || fail "token"
A1=$("$devid" admin token add OEM1 --role admin) || fail "token"
A2=$("$devid" admin token add OEM2 --role admin) || fail "token"
"$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem >/dev/null ||
	fail "trust"
start a "$DEVID_DB"
A_url=$url

# --- global options before and after the command; flags over the environment ---------
ok 'global options before vendor publish' "$devid" --server "$A_url" --token "$VT" \
    vendor publish B1
ok 'global options after vendor publish' "$devid" vendor publish B2 --server "$A_url" \
    --token "$VT"
ok 'claim with the options before' "$devid" --server "$A_url" --token "$A1" claim "$(cat B1/claim.txt)"
expect_py 'claim answers the batch as JSON when stdout is no terminal' 'j["batch"]' ACME/B1
ok 'batches with the options before' "$devid" --server "$A_url" --token "$A1" batches
cp out before.json
ok 'batches with the options after' "$devid" batches --server "$A_url" --token "$A1"
cmp -s out before.json || check_failed "batches before and after the command print different answers"
ok 'batches with the --opt=value form' "$devid" --server="$A_url" --token="$A1" -o json batches
cmp -s out before.json || check_failed "--server=URL before the command answers differently"
ok 'batches from the environment' env DEVID_SERVER="$A_url" DEVID_TOKEN="$A1" "$devid" batches
cmp -s out before.json || check_failed "DEVID_SERVER and DEVID_TOKEN answer differently"
ok 'a --server flag beats DEVID_SERVER' env DEVID_SERVER=http://127.0.0.1:1 DEVID_TOKEN="$A1" \
    "$devid" batches --server "$A_url"
ok 'a --token flag beats DEVID_TOKEN' env DEVID_SERVER="$A_url" DEVID_TOKEN=bogus \
    "$devid" --token "$A1" batches
refused 'a wrong --token flag beats a right DEVID_TOKEN' 1 'HTTP 401' \
    env DEVID_SERVER="$A_url" DEVID_TOKEN="$A1" "$devid" batches --token bogus
ok 'an option after the command beats the same one before' "$devid" --server "$A_url" \
    --token bogus batches --token "$A1"

# --- json and table output --------------------------------------------------------------
ok 'batches -o json' "$devid" batches -o json --server "$A_url" --token "$A1"
expect_py 'batches -o json lists B1' '[b["batch"] for b in j["batches"]]' "['B1']"
want_time=$(py 'j["batches"][0]["claimedAt"]')
printf '%s\n' "$want_time" | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' ||
	check_failed "claimedAt $want_time is not RFC 3339 UTC"
ok 'batches -o table' "$devid" batches --output table --server "$A_url" --token "$A1"
sed -n 1p "$tmp/out" | grep -Eq '^VENDOR +BATCH +PART +COUNT +STATE +ACTIVE +REVOKED +CLAIMED +SOURCE$' ||
	check_failed_run "batches -o table has no header line"
grep -Eq "^ACME +B1 +[A-Z0-9-]+ +6 +claimed +6 +0 +$want_time +vendor$" "$tmp/out" ||
	check_failed_run "batches -o table does not show B1 claimed at $want_time (RFC 3339 UTC)"

# aligned: every cell starts where its header starts
aligned() {
	/usr/bin/python3 - "$tmp/out" <<'EOF'
import re, sys
lines = open(sys.argv[1]).read().splitlines()
starts = [m.start() for m in re.finditer(r"(?:^|(?<=  ))\S", lines[0])]
for line in lines[1:]:
    for s in starts[1:]:
        if len(line) <= s or line[s] == " " or line[s - 1] != " ":
            sys.exit("not aligned at column %d: %r" % (s, line))
EOF
}
ok 'devices -o table' "$devid" devices -o table --server "$A_url" --token "$A1"
[ "$(wc -l <"$tmp/out")" -eq 7 ] || check_failed_run "devices -o table: expected a header and 6 rows"
aligned || check_failed_run "devices -o table is not aligned"
if command -v script >/dev/null 2>&1; then
	# on a terminal the default is a table
	script -qec "DEVID_SERVER=$A_url DEVID_TOKEN=$A1 $devid batches" /dev/null >tty.out 2>&1
	grep -q '^VENDOR' tty.out || check_failed "batches on a terminal does not print a table: $(head -3 tty.out)"
else
	note "script(1) missing: the terminal default is not checked"
fi
refused 'an unknown --output' 2 "devid batches: --output 'yaml': expected json or table" \
    "$devid" batches -o yaml --server "$A_url" --token "$A1"

export DEVID_SERVER="$A_url" DEVID_TOKEN="$A1"

# --- devices: by chip serial, paging hints and --quiet ------------------------------------
ok 'devices' "$devid" devices --batch ACME/B1
udid=$(py 'j["devices"][0]["udid"]')
serial=$(py 'j["devices"][0]["serial"]')
udid2=$(py 'j["devices"][1]["udid"]')
ok 'device by UDID' "$devid" device "$udid"
expect_py 'device by UDID' 'j["udid"]' "$udid"
ok 'device by chip serial' "$devid" device "$serial"
expect_py 'device by chip serial finds its UDID' 'j["udid"]' "$udid"
ok 'device -o table' "$devid" device "$serial" -o table
grep -Eq '^birthCertificate\.notBefore +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$' "$tmp/out" ||
	check_failed_run "device -o table does not show notBefore in RFC 3339"
refused 'device with a wrong token says why' 1 'devid device: .*HTTP 401' \
    "$devid" device "$udid" --token bogus
refused 'device of a serial nobody has' 1 "no device has the UDID or chip serial 'NOSUCHSERIAL'" \
    "$devid" device NOSUCHSERIAL
refused 'device with a prefix of a serial only' 1 'no device has' \
    "$devid" device "$(printf %s "$serial" | cut -c1-6)"
ok 'devices --search' "$devid" devices --search "$serial"
expect_py 'devices --search finds the serial' '[d["udid"] for d in j["devices"]]' "['$udid']"
ok 'devices --limit 2' "$devid" devices --limit 2
grep -q '^more: devid devices --after ' "$tmp/err" ||
	check_failed_run "devices --limit 2 does not say where the next page starts"
ok 'devices --limit 2 --quiet' "$devid" devices --limit 2 --quiet
[ -s "$tmp/err" ] && check_failed_run "devices --quiet printed on stderr"
ok 'revoke by chip serial' "$devid" revoke "$serial" --reason keyCompromise
expect_py 'revoke by chip serial' 'j["state"] + "/" + j["revokeReason"]' revoked/keyCompromise

# --- audit ------------------------------------------------------------------------------
ok 'audit' "$devid" audit
expect_py 'audit lists the claim' '"batch.claim" in [r["action"] for r in j["records"]]' True
ok 'audit list -o table' "$devid" audit list -o table
sed -n 2p "$tmp/out" | grep -Eq '^1 +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z ' ||
	check_failed_run "audit list -o table does not show record 1 with an RFC 3339 time"
ok 'audit verify' "$devid" audit verify
expect_py 'audit verify' 'j["ok"]' True

# --- connectors, provision, jobs ------------------------------------------------------------
printf 's3cret-of-the-hook\n' >hook.secret
ok 'connectors add' "$devid" connector add GW --type webhook --mode manual \
    --url http://127.0.0.1:1/hook --secret-file hook.secret
expect_py 'connectors add' 'j["name"], j["type"], j["mode"], j["config"]["secretSet"]' \
    "('GW', 'webhook', 'manual', True)"
refused 'connectors add of a name that exists' 1 "connector 'GW' exists" \
    "$devid" connectors add GW --type webhook --url http://127.0.0.1:1/x
ok 'connectors put' "$devid" connectors put GW --type webhook --mode manual \
    --url http://127.0.0.1:2/hook
expect_py 'connectors put keeps the secret' 'j["config"]["url"], j["config"]["secretSet"]' \
    "('http://127.0.0.1:2/hook', True)"
printf '{"type":"webhook","mode":"auto","config":{"url":"http://127.0.0.1:3/f","secret":"0123456789abcdef"}}\n' >f1.json
ok 'connectors add --file' "$devid" connectors add F1 --file f1.json --rate 5
expect_py 'connectors add --file' 'j["mode"], j["config"]["url"], j["config"].get("ratePerSecond")' \
    "('auto', 'http://127.0.0.1:3/f', 5)"
ok 'connectors list' "$devid" connectors -o table
grep -Eq '^F1 +webhook +auto ' "$tmp/out" && grep -Eq '^GW +webhook +manual ' "$tmp/out" ||
	check_failed_run "connectors list does not show GW and F1"
ok 'connectors show' "$devid" connectors show GW
expect_py 'connectors show' 'j["name"]' GW
ok 'connectors delete' "$devid" connectors delete F1
refused 'connectors show of a deleted one' 1 'HTTP 404' "$devid" connectors show F1
run "$devid" connectors test GW
[ "$rc" -eq 1 ] || check_failed_run "connectors test of a receiver that is down: exit $rc, expected 1"
expect_py 'connectors test says why' 'j["ok"]' False
ok 'provision a batch' "$devid" provision --connector GW --batch ACME/B1
expect_py 'provision' 'j["jobs"]' 1
ok 'provision devices' "$devid" provision --connector GW "$udid2"
ok 'jobs' "$devid" jobs --state pending
expect_py 'jobs lists both' 'sorted(x["connector"] for x in j["jobs"])' "['GW', 'GW']"
job=$(py 'j["jobs"][0]["id"]')
ok 'jobs devices' "$devid" jobs devices "$job" --status failed
expect_py 'jobs devices' 'j["job"], j["devices"]' "($job, [])"
ok 'jobs -o table' "$devid" jobs list -o table
sed -n 1p "$tmp/out" | grep -Eq '^ID +CONNECTOR +ACTION +REASON +STATE' ||
	check_failed_run "jobs -o table has no header"

# --- quota -----------------------------------------------------------------------------------
ok 'quota' "$devid" quota
expect_py 'quota without a limit' 'j["max"]' None
ok 'quota set' "$devid" quota set --max 5
expect_py 'quota set' 'j["max"]' 5
ok 'quota show -o table' "$devid" quota show -o table
grep -Eq '^max +5$' "$tmp/out" || check_failed_run "quota show -o table does not show max 5"
ok 'quota set none' "$devid" quota set --max none
expect_py 'quota set none' 'j["max"]' None

# --- tokens ----------------------------------------------------------------------------------
ok 'tokens add' "$devid" tokens add --name line-1 --role operator --expires 1d
OPT=$(py 'j["token"]')
ok 'the new token works' "$devid" batches --token "$OPT"
ok 'tokens list' "$devid" tokens list -o table
grep -Eq '^[0-9]+ +line-1 +operator +active +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z ' "$tmp/out" ||
	check_failed_run "tokens list -o table does not show line-1 with its creation time"
ok 'tokens revoke by name' "$devid" token revoke line-1
expect_py 'tokens revoke' 'j["state"]' revoked
refused 'a revoked token' 1 'HTTP 401' "$devid" batches --token "$OPT"

# --- trust and imports: a JSON export imports into another devid, a CSV export is refused ----
ok 'trust add' "$devid" trust add --root w/root.pem --signer w/signer.pem
tid=$(py 'j["id"]')
ok 'trust list' "$devid" trust -o json
expect_py 'trust list' '[t["id"] for t in j["trust"]]' "[$tid]"
ok 'import' "$devid" import --batch W1 W1/manifest.json
expect_py 'import' 'j["report"]["accepted"]' 3
ok 'manifest --format json' "$devid" manifest OEM1/W1 --format json --out w1.json
ok 'manifest --format csv' "$devid" manifest OEM1/W1 --format csv --out w1.csv
refused 'import of a CSV export' 1 'CSV export.*no signatures.*--format json' \
    "$devid" import --batch W2 w1.csv
ok 'batches after the refused import' "$devid" batches
expect_py 'a refused CSV import creates no batch' '[b["batch"] for b in j["batches"]]' "['B1', 'W1']"

# the same chips into another devid (its own database): the JSON export verifies there
DEVID_DB="sqlite:$tmp/b.db" "$devid" admin migrate >/dev/null || fail "migrate b"
DEVID_DB="sqlite:$tmp/b.db" "$devid" admin tenant add OEM9 --kind oem >/dev/null || fail "tenant b"
B9=$(DEVID_DB="sqlite:$tmp/b.db" "$devid" admin token add OEM9 --role admin) || fail "token b"
DEVID_DB="sqlite:$tmp/b.db" "$devid" admin trust add --tenant OEM9 --root w/root.pem \
    --signer w/signer.pem >/dev/null || fail "trust b"
start b "sqlite:$tmp/b.db"
B_url=$url
ok 'import of the JSON export into another devid' "$devid" import --batch W1 w1.json \
    --server "$B_url" --token "$B9"
expect_py 'the JSON export imports whole' 'j["report"]["accepted"]' 3
ok 'batches of the other devid' "$devid" batches --server "$B_url" --token "$B9"
expect_py 'the other devid holds the import' '[(b["vendor"], b["batch"], b["count"]) for b in j["batches"]]' \
    "[('OEM9', 'W1', 3)]"
ok 'trust remove' "$devid" trust remove "$tid"
expect_py 'trust remove' 'j["removedAt"] is not None' True

# --- TLS and connection failures -------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout srv.key -out srv.pem >/dev/null 2>&1 ||
	fail "server certificate"
start tls "$DEVID_DB" --tls-cert srv.pem --tls-key srv.key
T_url=$url
refused 'a self-signed server without --cacert' 1 \
    "certificate is not trusted.*pass --cacert FILE or set DEVID_CACERT" \
    "$devid" batches --server "$T_url"
ok 'the same server with --cacert' "$devid" batches --server "$T_url" --cacert srv.pem
ok 'the same server with DEVID_CACERT' env DEVID_CACERT=srv.pem "$devid" batches --server "$T_url"
refused 'a name the certificate does not hold' 1 'not issued for this host name' \
    "$devid" batches --server "https://localhost:${T_url##*:}" --cacert srv.pem
refused 'a refused connection' 1 \
    "cannot connect to http://127.0.0.1:1: connection refused; is devid serve running there\\?" \
    "$devid" batches --server http://127.0.0.1:1
refused 'http:// to a TLS server' 1 'use https://' "$devid" batches --server "http://${T_url#https://}"
refused 'a --server that is no URL' 1 "--server '127.0.0.1:1': expected a URL" \
    "$devid" batches --server 127.0.0.1:1

# --- progress only on a terminal, and never with --quiet ---------------------------------------
run "$devid" vendor verify B1 --root v/root.pem --signer v/signer.pem
grep -q 'verifying' "$tmp/err" && check_failed_run "vendor verify shows progress off a terminal"
if command -v script >/dev/null 2>&1; then
	script -qec "$devid vendor verify B1 --root v/root.pem --signer v/signer.pem" /dev/null >tty.out 2>&1
	grep -q 'verifying: checking 6 entries' tty.out ||
		check_failed "vendor verify on a terminal shows no progress: $(head -c 300 tty.out)"
	script -qec "$devid vendor verify B1 --root v/root.pem --signer v/signer.pem --quiet" /dev/null >tty.out 2>&1
	grep -q 'verifying' tty.out && check_failed "vendor verify --quiet shows progress on a terminal"
fi
run "$devid" vendor mint --dir v --batch B9 --count 1 --out B9 --quiet
[ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ] && grep -q '^minted 1 chips' "$tmp/out" &&
	grep -q "^claim code: $(cat B9/claim.txt)\$" "$tmp/out" ||
	check_failed_run "vendor mint --quiet: no chatter on stderr, the result on stdout"
if command -v script >/dev/null 2>&1; then
	script -qec "$devid vendor mint --dir v --batch B10 --count 1000 --out B10 --keep-keys 0 --quiet" \
	    /dev/null >tty.out 2>&1
	grep -q '%' tty.out && check_failed "vendor mint --quiet shows progress on a terminal"
	script -qec "$devid vendor mint --dir v --batch B11 --count 1000 --out B11 --keep-keys 0" \
	    /dev/null >tty.out 2>&1
	grep -q 'minting: .*(100%)' tty.out || check_failed "vendor mint shows no progress on a terminal"
fi

finish "global options, precedence, json and tables, every API command, serials, TLS messages, imports"
