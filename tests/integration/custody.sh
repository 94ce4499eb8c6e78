#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# custody.sh - the chain of custody of a batch (issue 16, point 2; docs/custody.md), with the
# real devid binary and an independent verifier (custody_verify.py: Python's cryptography,
# none of devid's code):
#   - vendor publish -> OEMA claim -> transfer to OEMB writes three records, the transfer
#     signed by devid and by OEMA's operational CA key;
#   - the chain from GET .../custody verifies with `devid custody verify` and with the
#     independent verifier, whose manifestSha256 is computed from the vendor's manifest;
#   - both refuse the chain with a record removed, reordered, or re-signed by a wrong key,
#     naming the record; and a chain checked against another devid key;
#   - a failed claim writes no record; another tenant, and the previous owner, get 404; the
#     vendor sees its batch's chain.
# Usage: custody.sh DEVID
set -u
me=custody
. "$(dirname "$0")/lib.sh"

devid=${1:-}
need_devid "$devid"
devid=$(cd "$(dirname "$devid")" && pwd)/$(basename "$devid")
need_tool curl curl
need_tool openssl openssl
need_tool /usr/bin/python3 python3
/usr/bin/python3 -c 'import cryptography' 2>/dev/null || skip "python3-cryptography is not installed"
here=$(cd "$(dirname "$0")" && pwd)
verifier="$here/custody_verify.py"
make_tmp
server=""
trap '[ -z "$server" ] || kill "$server" 2>/dev/null; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd"
unset DEVID_SERVER DEVID_TOKEN DEVID_CACERT
export DEVID_DB="sqlite:$tmp/devid.db"

sql() { # one value from the database, read with Python's own sqlite3
	/usr/bin/python3 -c 'import sqlite3,sys
r = sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()
print(r[0] if r else "")' "$tmp/devid.db" "$1"
}

# get OUT TOKEN PATH: GET with the token, the answer in OUT and the status in $status
get() {
	status=$(curl -s -o "$1" -w '%{http_code}' -H "Authorization: Bearer $2" "$url$3") ||
		fail "curl $3"
}

# --- set-up: a vendor, three OEMs, OEMA with an operational CA devid can open ----------------
"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "vendor init"
"$devid" vendor mint --dir v --batch B1 --count 5 --out B1 --keep-keys 0 --quiet >/dev/null ||
	fail "mint"
"$devid" admin migrate >/dev/null || fail "migrate"
[ "$(sql "SELECT MAX(version) FROM schema_migrations")" -ge 14 ] || fail "the schema is not at 14 or later"
"$devid" admin tenant add ACME --kind vendor >/dev/null || fail "tenant"
for t in OEMA OEMB OEMC; do
	"$devid" admin tenant add $t --kind oem >/dev/null || fail "tenant $t"
done
VT=$("$devid" admin token add ACME --role vendor) || fail "token"
TA=$("$devid" admin token add OEMA --role admin) || fail "token"
TB=$("$devid" admin token add OEMB --role admin) || fail "token"
TC=$("$devid" admin token add OEMC --role admin) || fail "token"
"$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem >/dev/null ||
	fail "trust"
"$devid" admin ca init --tenant OEMA --key-file "$tmp/ca-a.key" >/dev/null || fail "ca init OEMA"

"$devid" serve --db "$DEVID_DB" --listen 127.0.0.1:0 --threads 2 --workers 0 \
    --interop-key "$tmp/devid.key" >serve.out 2>serve.log &
server=$!
i=0
until grep -q 'listening on' serve.out 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 150 ] || fail "serve did not start: $(tail -5 serve.log)"
	sleep 0.1
done
url=$(sed -n 's/.*listening on //p' serve.out)
openssl pkey -in devid.key -pubout -out devid.pub 2>/dev/null || fail "devid's public key"
openssl ecparam -name prime256v1 -genkey -noout -out other.key 2>/dev/null &&
	openssl pkey -in other.key -pubout -out other.pub 2>/dev/null || fail "another key"

# --- publish, a failed claim, the first claim, a transfer ---------------------------------------
run "$devid" vendor publish B1 --server "$url" --token "$VT"
[ "$rc" -eq 0 ] || fail_run "publish"
[ "$(sql "SELECT COUNT(*) FROM custody")" = 1 ] || fail "publish wrote $(sql "SELECT COUNT(*) FROM custody") records, want 1"
wrong=$(sed 's/:[A-Z2-7]*$/:AAAAAAAAAAAAAAAAAAAAAAAAAA/' B1/claim.txt)
run "$devid" claim "$wrong" --server "$url" --token "$TB"
[ "$rc" -eq 1 ] || fail_run "a claim with a wrong code must fail"
[ "$(sql "SELECT COUNT(*) FROM custody")" = 1 ] || fail "a failed claim wrote a custody record"
note "ok: publish writes one record; a failed claim writes none"

run "$devid" claim "$(cat B1/claim.txt)" --server "$url" --token "$TA"
[ "$rc" -eq 0 ] || fail_run "claim by OEMA"
run "$devid" claim "$(cat B1/claim.txt)" --server "$url" --token "$TA"
[ "$rc" -eq 0 ] || fail_run "the owner's repeat claim"
[ "$(sql "SELECT COUNT(*) FROM custody")" = 2 ] || fail "an idempotent repeat claim wrote a record"
run "$devid" transfer ACME/B1 --server "$url" --token "$TA" -o json
[ "$rc" -eq 0 ] || fail_run "transfer"
code=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["code"])' "$tmp/out")
run "$devid" claim "$code" --server "$url" --token "$TB"
[ "$rc" -eq 0 ] || fail_run "claim of the transfer by OEMB"
[ "$(sql "SELECT group_concat(event, ',') FROM (SELECT event FROM custody ORDER BY seq)")" = publish,claim,transfer ] ||
	fail "records: $(sql "SELECT group_concat(event, ',') FROM custody")"

# --- who sees the chain ----------------------------------------------------------------------------
get chain.json "$TB" /api/v1/batches/ACME/B1/custody
[ "$status" = 200 ] || fail "the owner's GET custody: $status $(cat chain.json)"
get vendor.json "$VT" /api/v1/batches/ACME/B1/custody
[ "$status" = 200 ] && cmp -s chain.json vendor.json || fail "the vendor's GET custody: $status"
for who in "OEMC:$TC" "OEMA (the previous owner):$TA"; do
	get other.json "${who#*:}" /api/v1/batches/ACME/B1/custody
	[ "$status" = 404 ] || fail "${who%%:*} gets $status on another's chain, want 404"
	grep -q 'ACME/B1' other.json && grep -q '"not_found"' other.json ||
		fail "${who%%:*}'s 404 is not the plain not_found: $(cat other.json)"
done
get other.json "$TC" /api/v1/batches/ACME/NOPE/custody
[ "$status" = 404 ] || fail "a missing batch answers $status"
note "ok: the owner and the vendor read the chain; another tenant and the previous owner get 404"

# --- the chain verifies, by devid and independently ------------------------------------------------
run "$devid" custody get ACME/B1 --server "$url" --token "$TB" -o json
[ "$rc" -eq 0 ] && /usr/bin/python3 -c 'import json,sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
sys.exit(a != b)' "$tmp/out" chain.json || fail_run "devid custody get is not the API's chain"
run "$devid" custody verify chain.json --root devid.pub
[ "$rc" -eq 0 ] && grep -q 'ACME/B1: 3 records verify; the owner is OEMB' "$tmp/out" ||
	fail_run "devid custody verify of the chain"
run /usr/bin/python3 "$verifier" verify chain.json devid.pub B1/manifest.json
[ "$rc" -eq 0 ] && grep -q 'ok: 3 records, owner OEMB' "$tmp/out" ||
	fail_run "the independent verifier refuses devid's chain"
/usr/bin/python3 - chain.json <<'EOF' || fail "the transfer record is not signed by OEMA"
import base64, json, sys
def b64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
recs = json.load(open(sys.argv[1]))["records"]
p = json.loads(b64u(recs[2]["payload"]))
kids = [json.loads(b64u(s["protected"]))["kid"].split(":")[0] for s in recs[2]["signatures"]]
assert p["event"] == "transfer" and p["ownerSigned"] is True, p
assert p["previousOwner"]["tenant"] == "OEMA" and p["previousOwner"]["keySource"] == "operational-ca"
assert p["newOwner"]["tenant"] == "OEMB" and p["newOwner"]["key"] is None, p["newOwner"]
assert sorted(kids) == ["devid", "owner"], kids
EOF
note "ok: devid custody verify and the independent verifier accept vendor -> OEMA -> OEMB"

# --- spoiled chains are refused by both, naming the record ------------------------------------
/usr/bin/python3 "$verifier" mutate chain.json . || fail "mutate"
for c in removed:2 reordered:2 resigned:3; do
	f=${c%%:*}.json
	n=${c#*:}
	run /usr/bin/python3 "$verifier" verify "$f" devid.pub
	[ "$rc" -eq 1 ] && grep -q "record $n" "$tmp/out" ||
		fail_run "the independent verifier accepts $f"
	run "$devid" custody verify "$f" --root devid.pub
	[ "$rc" -eq 1 ] && grep -q "invalid: record $n" "$tmp/err" ||
		fail_run "devid custody verify accepts $f"
	note "ok: $f refused: $(cat "$tmp/err")"
done
run "$devid" custody verify chain.json --root other.pub
[ "$rc" -eq 1 ] && grep -q "record 1: devid's signature does not verify" "$tmp/err" ||
	fail_run "a chain checked against another devid key must fail"
run /usr/bin/python3 "$verifier" verify chain.json other.pub
[ "$rc" -eq 1 ] || fail_run "the independent verifier accepts another devid key"
run "$devid" custody verify chain.json
[ "$rc" -eq 2 ] || fail_run "verify without --root is a usage error"
note "ok: removed, reordered and re-signed chains and a wrong devid key are refused"
