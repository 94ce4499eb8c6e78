#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# secrets.sh - secrets at rest (issue 10, point 6), SQLite, with the real devid binary:
#   - a database that `devid serve` creates is 0600, and so are its -wal and -shm files;
#   - without --secrets-key, a connector with a secret is refused (409) and nothing stored;
#     one without secrets (cirrent) is still accepted;
#   - secrets-key init makes a 0600 file of 32 bytes and never replaces one; serve refuses a
#     key file others can read, and one of the wrong size;
#   - with a key: the secret is in no byte of the database, its WAL or its shared memory,
#     nor in the log or any answer, and the webhook still gets bodies signed with it (the
#     receiver checks the HMAC);
#   - a ciphertext copied to another connector does not decrypt there (AAD), and a server
#     with another key, or with none, says so in the job instead of delivering;
#   - with SoftHSM2: the same with an AES key inside a PKCS#11 token.
# Usage: secrets.sh DEVID
set -u
me=secrets
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/../softhsm.sh"

devid=${1:-}
need_devid "$devid"
devid=$(cd "$(dirname "$devid")" && pwd)/$(basename "$devid")
need_tool curl curl
make_tmp
pids=
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
here=$(cd "$(dirname "$0")" && pwd)
cd "$tmp" || fail "cd"
export DEVID_DB="sqlite:$tmp/devid.db"
umask 022
S1=webhook-secret-S1-7c1d0e5f42
S2=webhook-secret-S2-93ab61d0e8

sql() { # one value, read or written with Python's own sqlite3
	/usr/bin/python3 -c 'import sqlite3,sys
c = sqlite3.connect(sys.argv[1])
r = c.execute(sys.argv[2]).fetchone()
c.commit()
print(r[0] if r else "")' "$tmp/devid.db" "$1"
}

start_serve() { # [ARGS]: devid serve on a free port; $url, $serve_pid
	: >serve.out
	"$devid" serve --listen 127.0.0.1:0 --job-lease 2 "$@" >serve.out 2>>serve.log &
	serve_pid=$!
	pids="$pids $serve_pid"
	wait_line serve.out 'listening on' serve
	url=$(sed -n 's/.*listening on //p' serve.out)
}
stop_serve() {
	kill "$serve_pid" && wait "$serve_pid" 2>/dev/null
}

receiver() { # NAME SECRET: a webhook receiver checking the HMAC; its URL in $rurl
	/usr/bin/python3 "$here/receiver.py" "$2" "$tmp/$1.events" >"$tmp/$1.port" 2>"$tmp/$1.err" &
	pids="$pids $!"
	wait_file "$tmp/$1.port" "receiver $1"
	rurl="http://127.0.0.1:$(cat "$tmp/$1.port")/devid/events"
}

api() { # METHOD PATH [BODY]: api_as $A1, every answer kept in ./answers
	api_as "$A1" "$@"
	cat body >>answers
}

# wait_job CONNECTOR STATE-PATTERN: until the connector's newest job's JSON matches
wait_job() {
	i=0
	until api GET /api/v1/jobs && /usr/bin/python3 -c 'import json,re,sys
j = [x for x in json.load(open("body"))["jobs"] if x["connector"] == sys.argv[1]]
sys.exit(0 if j and re.search(sys.argv[2], json.dumps(j[0])) else 1)' "$1" "$2"; do
		i=$((i + 1))
		[ $i -lt 300 ] || fail "job of $1 never matched $2: $(cat body)"
		sleep 0.1
	done
}

# no_secret_at_rest WHAT: neither secret in any byte of the database files or the log
no_secret_at_rest() {
	for f in devid.db devid.db-wal devid.db-shm serve.log serve.out answers; do
		[ -e "$f" ] || continue
		for s in "$S1" "$S2"; do
			grep -a -q -e "$s" "$f" && fail "$1: $f holds the secret $s"
		done
	done
	return 0
}

"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "vendor init"
"$devid" vendor mint --dir v --batch B1 --count 5 --out B1 --keep-keys 0 --quiet >/dev/null || fail "mint"

# --- a database made by devid serve is private ---------------------------------------------------
start_serve
for f in devid.db devid.db-wal devid.db-shm; do
	[ "$(file_mode "$f")" = "-rw-------" ] || fail "devid serve made $f $(file_mode "$f"), want -rw-------"
done
note "ok: devid serve creates the database, its WAL and shared memory 0600"
"$devid" admin tenant add ACME --kind vendor >/dev/null || fail "tenant"
"$devid" admin tenant add OEM1 --kind oem >/dev/null || fail "tenant"
VT=$("$devid" admin token add ACME --role vendor)
A1=$("$devid" admin token add OEM1 --role admin)
"$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem >/dev/null || fail "trust"
DEVID_SERVER=$url DEVID_TOKEN=$VT "$devid" vendor publish B1 >/dev/null || fail "publish"
DEVID_SERVER=$url DEVID_TOKEN=$A1 "$devid" claim "$(cat B1/claim.txt)" >/dev/null || fail "claim"

# --- no key: secrets refused, nothing stored ---------------------------------------------------------
receiver one "$S1"
url1=$rurl
api POST /api/v1/connectors "{\"name\":\"ONE\",\"type\":\"webhook\",\"mode\":\"manual\",\"config\":{\"url\":\"$url1\",\"secret\":\"$S1\"}}"
[ "$status" = 409 ] && grep -q 'secrets-key' body || fail "without a key a secret must be refused (409): $status $(cat body)"
[ "$(sql "SELECT COUNT(*) FROM connectors")" = 0 ] || fail "the refused connector was stored"
api POST /api/v1/connectors '{"name":"CID","type":"cirrent","mode":"manual","config":{"url":"http://127.0.0.1:9/x"}}'
[ "$status" = 201 ] || fail "a connector without secrets needs no key: $status $(cat body)"
stop_serve
no_secret_at_rest "without a key"
note "ok: without --secrets-key a webhook connector is refused with 409"

# --- the key file -------------------------------------------------------------------------------------
run "$devid" admin secrets-key init "file:$tmp/k1"
[ "$rc" -eq 0 ] || fail_run "secrets-key init"
[ "$(file_mode k1)" = "-rw-------" ] && [ "$(wc -c <k1)" -eq 32 ] || fail "k1: $(file_mode k1), $(wc -c <k1) bytes"
id1=$(sed -n 's/^secrets key \([0-9a-f]*\) made.*/\1/p' "$tmp/out")
[ -n "$id1" ] || fail_run "no key id printed"
cp k1 k1.before
run "$devid" admin secrets-key init "file:$tmp/k1"
[ "$rc" -eq 1 ] && cmp -s k1 k1.before || fail_run "a second init must not replace the key"
cp k1 loose && chmod 644 loose
run "$devid" serve --listen 127.0.0.1:0 --secrets-key "file:$tmp/loose"
[ "$rc" -eq 1 ] && grep -q 'lets others read it' "$tmp/err" || fail_run "a key others can read must be refused"
head -c 31 k1 >short && chmod 600 short
run "$devid" serve --listen 127.0.0.1:0 --secrets-key "file:$tmp/short"
[ "$rc" -eq 1 ] && grep -q 'exactly 32 bytes' "$tmp/err" || fail_run "a short key must be refused"
"$devid" admin secrets-key init "file:$tmp/k2" >/dev/null || fail "k2"
note "ok: secrets-key init (0600, 32 bytes, never replaced), loose and short keys refused"

# --- with the key: encrypted at rest, delivered signed with the right secret ----------------------------
start_serve --secrets-key "file:$tmp/k1"
api POST /api/v1/connectors "{\"name\":\"ONE\",\"type\":\"webhook\",\"mode\":\"manual\",\"config\":{\"url\":\"$url1\",\"secret\":\"$S1\"}}"
[ "$status" = 201 ] || fail "create ONE: $status $(cat body)"
receiver two "$S2"
url2=$rurl
api PUT /api/v1/connectors/TWO "{\"type\":\"webhook\",\"mode\":\"manual\",\"config\":{\"url\":\"$url2\",\"secret\":\"$S2\"}}"
[ "$status" = 201 ] || fail "create TWO: $status $(cat body)"
api GET /api/v1/connectors
stored=$(sql "SELECT config FROM connectors WHERE name = 'ONE'")
case "$stored" in *"\"secret\":{\"enc\":\"v1:$id1:"*) ;; *) fail "ONE is stored as $stored" ;; esac
no_secret_at_rest "with a key"
api POST /api/v1/provision '{"connector":"ONE","batch":"ACME/B1"}'
[ "$status" = 202 ] || fail "trigger ONE: $status $(cat body)"
wait_job ONE '"state": "done"'
[ "$(wc -l <one.events)" = 1 ] || fail "ONE's receiver (HMAC with $S1) did not take the push: $(cat one.err)"
no_secret_at_rest "after a delivery"
note "ok: the secret is in no database byte, log or answer; the push is signed with it"

# --- a ciphertext moved to another connector ------------------------------------------------------------
sql "UPDATE connectors SET config = (SELECT config FROM connectors WHERE name = 'ONE') WHERE name = 'TWO'" >/dev/null
api POST /api/v1/provision '{"connector":"TWO","batch":"ACME/B1"}'
[ "$status" = 202 ] || fail "trigger TWO: $status $(cat body)"
wait_job TWO 'does not decrypt'
# TWO now has ONE's url too: had the secret decrypted, ONE's receiver would hold a second event
[ "$(wc -l <one.events)" = 1 ] && [ ! -s two.events ] || fail "TWO's job was delivered with ONE's secret"
note "ok: a secret copied to another connector does not decrypt (AAD)"
stop_serve

# --- another key, no key ------------------------------------------------------------------------------------
start_serve --secrets-key "file:$tmp/k2"
api POST /api/v1/provision '{"connector":"ONE","batch":"ACME/B1"}'
wait_job ONE "encrypted under key $id1, this server has key"
stop_serve
start_serve
api POST /api/v1/provision '{"connector":"ONE","batch":"ACME/B1"}'
wait_job ONE 'no secrets key'
stop_serve
[ "$(wc -l <one.events)" = 1 ] || fail "a server without the right key delivered"
no_secret_at_rest "at the end"
note "ok: a server with another key or none names the problem in the job"

# --- an AES key in a PKCS#11 token ------------------------------------------------------------------------
if softhsm_available; then
	pin=531246
	softhsm_setup "$tmp/hsm" secrets 97531 "$pin" || fail "SoftHSM2 token"
	printf '%s\n' "$pin" >pin && chmod 600 pin
	uri="pkcs11:token=secrets;object=connector-secrets?pin-source=$tmp/pin"
	run "$devid" admin secrets-key init "$uri"
	[ "$rc" -eq 0 ] || fail_run "secrets-key init in a token"
	run "$devid" admin secrets-key init "$uri"
	[ "$rc" -eq 1 ] || fail_run "a second key of that label must be refused"
	start_serve --secrets-key "$uri"
	# the jobs that failed above are retried too, and now decrypt: count what arrives
	before=$(wc -l <one.events)
	api PUT /api/v1/connectors/ONE "{\"type\":\"webhook\",\"mode\":\"manual\",\"config\":{\"url\":\"$url1\",\"secret\":\"$S1\"}}"
	[ "$status" = 200 ] || fail "replace ONE: $status $(cat body)"
	api POST /api/v1/provision '{"connector":"ONE","batch":"ACME/B1"}'
	wait_job ONE '"state": "done"'
	[ "$(wc -l <one.events)" -gt "$before" ] || fail "ONE did not take the push sealed in the token"
	case "$(sql "SELECT config FROM connectors WHERE name = 'ONE'")" in
	*'"secret":{"enc":"v1:'*) ;;
	*) fail "ONE is not stored sealed" ;;
	esac
	stop_serve
	no_secret_at_rest "with a token key"
	note "ok: an AES key in SoftHSM2 seals and opens the secret"
else
	note "SoftHSM2 not installed: the token-held secrets key was not tried"
fi
note "ok: secrets at rest"
