#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# audit.sh - an audit trail that holds up (issue 10, point 5), with the real devid binary and
# Python's own sqlite3 as the attacker who can write the database:
#   - administrative changes (ca init, ca set, quota set) are records of the tenant's own
#     chain and name the actor (admin-cli);
#   - deleting the newest records leaves a chain that `audit verify` alone accepts (the hole),
#     and a signed checkpoint kept outside the database catches it (exit 1, naming the seq);
#   - a tail deleted and written again (new records, same seq) is caught too;
#   - a forged checkpoint (payload changed, another key, another tenant's) is refused;
#   - checkpoint keys: file (0600, never replaced) and, with SoftHSM2, a key in a token;
#   - a fresh database from `devid admin migrate` is mode 0600.
# Usage: audit.sh DEVID
set -u
me=audit
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../softhsm.sh"

devid=${1:-}
need_devid "$devid"
devid=$(cd "$(dirname "$devid")" && pwd)/$(basename "$devid")
make_tmp
cd "$tmp" || fail "cd $tmp"
export DEVID_DB="sqlite:$tmp/devid.db"

sql() { # one value from the database, read or written with Python's own sqlite3
	/usr/bin/python3 -c 'import sqlite3,sys
c = sqlite3.connect(sys.argv[1])
r = c.execute(sys.argv[2]).fetchone()
c.commit()
print(r[0] if r else "")' "$tmp/devid.db" "$1"
}

# --- a fresh database is private ------------------------------------------------------------
umask 022
run "$devid" admin migrate
[ "$rc" -eq 0 ] || fail_run "migrate"
[ "$(file_mode devid.db)" = "-rw-------" ] || fail "a new database is $(file_mode devid.db), want -rw-------"
for f in devid.db-wal devid.db-shm; do
	[ ! -e "$f" ] || [ "$(file_mode "$f")" = "-rw-------" ] || fail "$f is $(file_mode "$f")"
done
note "ok: devid admin migrate makes the database 0600"

# --- administrative changes are in the tenant's chain, naming the actor --------------------
"$devid" admin tenant add OEM1 --kind oem >/dev/null || fail "tenant add OEM1"
"$devid" admin tenant add OEM2 --kind oem >/dev/null || fail "tenant add OEM2"
run "$devid" admin ca init --tenant OEM1 --key-file "$tmp/ca.key"
[ "$rc" -eq 0 ] || fail_run "ca init"
"$devid" admin ca set --tenant OEM1 --validity-days 10 >/dev/null || fail "ca set"
"$devid" admin quota set --tenant OEM1 --max 5 >/dev/null || fail "quota set"
oem1=$(sql "SELECT id FROM tenants WHERE name = 'OEM1'")
for a in ca.init ca.validity quota.set; do
	[ "$(sql "SELECT actor FROM audit WHERE tenant_id = $oem1 AND action = '$a'")" = admin-cli ] ||
		fail "$a is not in OEM1's chain with actor admin-cli"
done
note "ok: ca init, ca set and quota set are records of OEM1's chain by admin-cli"

# --- the checkpoint key -----------------------------------------------------------------------
run "$devid" admin audit key init --key "file:$tmp/cp.key"
[ "$rc" -eq 0 ] && grep -q 'BEGIN PUBLIC KEY' "$tmp/out" || fail_run "audit key init"
cp "$tmp/out" cp.pub
[ "$(file_mode cp.key)" = "-rw-------" ] || fail "the checkpoint key is $(file_mode cp.key)"
run "$devid" admin audit key init --key "file:$tmp/cp.key"
[ "$rc" -eq 1 ] || fail_run "a second key init must not replace the key"
run "$devid" admin audit checkpoint OEM1
[ "$rc" -eq 2 ] || fail_run "checkpoint without --key is a usage error"

# --- checkpoint, then the chain grows: passes ---------------------------------------------------
run "$devid" admin audit checkpoint OEM1 --key "file:$tmp/cp.key"
[ "$rc" -eq 0 ] || fail_run "checkpoint"
cp "$tmp/out" cp1.jws
n1=$(sql "SELECT MAX(seq) FROM audit WHERE tenant_id = $oem1")
[ "$(tr -cd . <cp1.jws | wc -c)" = 2 ] || fail "the checkpoint is not a compact JWS: $(cat cp1.jws)"
"$devid" admin quota set --tenant OEM1 --max 6 >/dev/null || fail "quota set"
"$devid" admin quota set --tenant OEM1 --max 7 >/dev/null || fail "quota set"
run "$devid" admin audit verify OEM1 --checkpoint cp1.jws --pub cp.pub
[ "$rc" -eq 0 ] && grep -q "checkpoint seq $n1 .* matches (2 records since)" "$tmp/out" ||
	fail_run "an intact chain that grew past the checkpoint must pass"
run "$devid" admin audit verify OEM1 --checkpoint cp1.jws --key "file:$tmp/cp.key"
[ "$rc" -eq 0 ] || fail_run "verify with the key's own URI"
run "$devid" admin audit verify OEM1 --checkpoint cp1.jws
[ "$rc" -eq 2 ] || fail_run "--checkpoint without a key is a usage error"
note "ok: checkpoint at seq $n1 verifies as the chain grows"

# a second checkpoint at the head, for the truncation below
run "$devid" admin audit checkpoint OEM1 --key "file:$tmp/cp.key"
[ "$rc" -eq 0 ] || fail_run "checkpoint"
cp "$tmp/out" cp2.jws
n2=$(sql "SELECT MAX(seq) FROM audit WHERE tenant_id = $oem1")
"$devid" admin quota set --tenant OEM1 --max 8 >/dev/null || fail "quota set"

# --- the hole: the newest records deleted ---------------------------------------------------------
cp devid.db before.db
sql "DELETE FROM audit WHERE tenant_id = $oem1 AND seq >= $((n2 - 1))" >/dev/null
[ "$(sql "SELECT MAX(seq) FROM audit WHERE tenant_id = $oem1")" = $((n2 - 2)) ] || fail "the delete did not happen"
run "$devid" admin audit verify OEM1
[ "$rc" -eq 0 ] || fail_run "without a checkpoint the cut chain verifies: that is the hole the checkpoint closes"
run "$devid" admin audit verify OEM1 --checkpoint cp2.jws --pub cp.pub
[ "$rc" -eq 1 ] && grep -q "checkpoint seq $n2 " "$tmp/err" && grep -q "ends at record $((n2 - 2))" "$tmp/err" ||
	fail_run "the checkpoint must catch the cut tail, naming its seq"
caught=$(cat "$tmp/err")
run "$devid" admin audit verify OEM1 --checkpoint cp1.jws --pub cp.pub
[ "$rc" -eq 0 ] || fail_run "records up to the older checkpoint are all there: it passes"
note "ok: a cut tail passes plain verify and fails against the checkpoint: $caught"

# --- the tail deleted and written again: same seq, other records ------------------------------------
"$devid" admin quota set --tenant OEM1 --max 1 >/dev/null || fail "quota set"
"$devid" admin quota set --tenant OEM1 --max 2 >/dev/null || fail "quota set"
"$devid" admin quota set --tenant OEM1 --max 3 >/dev/null || fail "quota set"
run "$devid" admin audit verify OEM1
[ "$rc" -eq 0 ] || fail_run "the rewritten chain verifies on its own"
run "$devid" admin audit verify OEM1 --checkpoint cp2.jws --pub cp.pub
[ "$rc" -eq 1 ] && grep -q "record $n2 of OEM1 is not the one checkpoint seq $n2 signed" "$tmp/err" ||
	fail_run "a rewritten tail must fail against the checkpoint"
note "ok: a rewritten tail is caught"

# --- forged checkpoints -----------------------------------------------------------------------------
cp before.db devid.db
rm -f devid.db-wal devid.db-shm
/usr/bin/python3 - cp2.jws forged.jws <<'EOF' || fail "forging"
import base64, json, sys
h, p, s = open(sys.argv[1]).read().strip().split(".")
pad = lambda x: x + "=" * (-len(x) % 4)
body = json.loads(base64.urlsafe_b64decode(pad(p)))
body["seq"] = body["seq"] - 3   # claim a shorter trail, keep the signature
p2 = base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")
open(sys.argv[2], "w").write(".".join([h, p2, s]) + "\n")
EOF
run "$devid" admin audit verify OEM1 --checkpoint forged.jws --pub cp.pub
[ "$rc" -eq 1 ] && grep -q 'signature does not verify' "$tmp/err" || fail_run "a changed payload must be refused"
"$devid" admin audit key init --key "file:$tmp/other.key" >other.pub || fail "other key"
"$devid" admin audit checkpoint OEM1 --key "file:$tmp/other.key" >other.jws 2>/dev/null || fail "other checkpoint"
run "$devid" admin audit verify OEM1 --checkpoint other.jws --pub cp.pub
[ "$rc" -eq 1 ] && grep -q 'signed by key' "$tmp/err" || fail_run "a checkpoint by another key must be refused"
run "$devid" admin audit verify OEM2 --checkpoint cp2.jws --pub cp.pub
[ "$rc" -eq 1 ] && grep -q 'of tenant OEM1, not of OEM2' "$tmp/err" || fail_run "another tenant's checkpoint must be refused"
printf 'not a checkpoint\n' >junk.jws
run "$devid" admin audit verify OEM1 --checkpoint junk.jws --pub cp.pub
[ "$rc" -eq 1 ] || fail_run "junk must be refused"
run "$devid" admin audit verify OEM1 --checkpoint cp2.jws --pub cp.pub
[ "$rc" -eq 0 ] || fail_run "the restored database passes"
note "ok: forged checkpoints (payload, key, tenant, junk) refused"

# --- a checkpoint key in a PKCS#11 token ------------------------------------------------------------
if softhsm_available; then
	pin=864213
	softhsm_setup "$tmp/hsm" audit 97531 "$pin" || fail "SoftHSM2 token"
	uri="pkcs11:token=audit;object=checkpoint?pin-value=$pin"
	run "$devid" admin audit key init --key "$uri"
	[ "$rc" -eq 0 ] || fail_run "audit key init in a token"
	cp "$tmp/out" hsm.pub
	run "$devid" admin audit checkpoint OEM1 --key "$uri"
	[ "$rc" -eq 0 ] || fail_run "checkpoint signed in the token"
	cp "$tmp/out" hsm.jws
	run "$devid" admin audit verify OEM1 --checkpoint hsm.jws --pub hsm.pub
	[ "$rc" -eq 0 ] || fail_run "verify a token-signed checkpoint"
	note "ok: checkpoint key in SoftHSM2"
else
	note "SoftHSM2 not installed: the token-held checkpoint key was not tried"
fi
note "ok: audit checkpoints"
