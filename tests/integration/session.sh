#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Console sessions (docs/console.md "Sign in and sessions") through the real devid serve, with
# curl as the browser:
#   - sign-in sets devid_session HttpOnly, SameSite=Strict, Path=/, Max-Age=<ttl>, Secure
#     exactly over TLS; the answer and GET /api/v1/session carry the CSRF token, which is
#     base64url(SHA-256("devid-csrf:" || the secret's bytes));
#   - the cookie works where a bearer does; a change made with it needs X-CSRF-Token: without
#     it or with a wrong one, 403 and nothing changes; with it, the change is the token's;
#     bearers need none; the Authorization header decides when both come;
#   - sign-out, revoking the token, and expiry (--session-ttl) end the session (401);
#   - a vendor token is refused (403), a wrong one too (401);
#   - the audit trail holds session.open and session.close as the token, never a secret; the
#     database holds the session's SHA-256, never the cookie.
# Usage: session.sh DEVID
me=session
. "$(dirname "$0")/lib.sh"
devid=${1:-}
need_devid "$devid"
devid=$(cd "$(dirname "$devid")" && pwd)/$(basename "$devid")
need_tool curl curl
need_tool openssl openssl
need_tool /usr/bin/python3 python3
make_tmp
servers=""
trap 'for p in $servers; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd $tmp"
export DEVID_DB="sqlite:$tmp/devid.db"

# start_server NAME [ARGS]: a devid serve on a free port; sets $url
start_server() {
	name=$1
	shift
	"$devid" serve --listen 127.0.0.1:0 --threads 2 --workers 0 "$@" >"$name.out" 2>"$name.log" &
	servers="$servers $!"
	i=0
	while ! grep -q 'listening on' "$name.out" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 100 ] || { cat "$name.log" >&2; fail "$name did not start"; }
		sleep 0.1
	done
	url=$(sed -n 's/.*listening on //p' "$name.out")
}

# req METHOD PATH [CURL ARGS...]: $status, the answer in ./body, its headers in ./headers
# (api_curl: tests/openapi/responses.sh checks the exchanges against docs/openapi.json)
req() {
	m=$1
	p=$2
	shift 2
	api_curl body "$m" "$p" -D headers "$@"
}

expect_status() {
	[ "$status" = "$1" ] || fail "$2: expected HTTP $1, got $status: $(head -c 400 body)"
	note "ok $2 ($status)"
}

# json EXPR [FILE]: a Python expression over the JSON document j (default: the last answer)
json() {
	/usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[2])); print(eval(sys.argv[1]))' \
	    "$1" "${2:-body}"
}

# sql QUERY: every value of the query's first column, one a line, read with Python's sqlite3
sql() {
	/usr/bin/python3 -c 'import sqlite3,sys
for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2]): print(r[0])' "$tmp/devid.db" "$1"
}

# set_cookie: the Set-Cookie line of the last answer, without the name of the header
set_cookie() {
	sed -n 's/^[Ss]et-[Cc]ookie: *//p' headers | tr -d '\r'
}

# signin TOKEN: POST /api/v1/session; on 201 $cookie (the secret) and $csrf
signin() {
	req POST /api/v1/session -H 'Content-Type: application/json' \
	    --data-binary "{\"token\":\"$1\"}"
	cookie=""
	csrf=""
	if [ "$status" = 201 ]; then
		cookie=$(set_cookie | sed -n 's/^devid_session=\([^;]*\);.*/\1/p')
		csrf=$(json 'j["csrf"]')
	fi
}

# b64hash SECRET [PREFIX]: hex SHA-256 of PREFIX || the secret's base64url-decoded bytes;
# with b64 as third argument, its base64url (unpadded) instead
b64hash() {
	/usr/bin/python3 -c 'import base64,hashlib,sys
raw = base64.urlsafe_b64decode(sys.argv[1] + "=")
d = hashlib.sha256(sys.argv[2].encode() + raw)
print(base64.urlsafe_b64encode(d.digest()).decode().rstrip("=") if sys.argv[3] == "b64" else d.hexdigest())' \
	    "$1" "${2:-}" "${3:-hex}"
}

token_count() {
	"$devid" admin token list OEM1 --json | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["tokens"]))'
}

# --- the flag -------------------------------------------------------------------------------
for bad in 0 -5 abc 12x 99999999999 2592001; do
	run "$devid" serve --db "$DEVID_DB" --session-ttl "$bad"
	[ "$rc" -eq 2 ] && grep -q -- '--session-ttl is 1 to 2592000 seconds' err ||
		fail_run "--session-ttl $bad is refused naming the flag"
done
[ ! -e devid.db ] || fail "a usage error created the database"
"$devid" serve --help | grep -q -- '--session-ttl SECS' || fail "serve --help does not show --session-ttl"
note "ok --session-ttl refuses bad values, naming the flag"

"$devid" admin migrate >/dev/null || fail "migrate"
"$devid" admin tenant add ACME --kind vendor >/dev/null || fail "tenant ACME"
"$devid" admin tenant add OEM1 --kind oem >/dev/null || fail "tenant OEM1"
ALICE=$("$devid" admin token add OEM1 --role admin --name alice) || fail "token alice"
BOB=$("$devid" admin token add OEM1 --role operator --name bob) || fail "token bob"
VT=$("$devid" admin token add ACME --role vendor --name publisher) || fail "token publisher"
alice_id=$(sql "SELECT id FROM tokens WHERE name = 'alice'")
bob_id=$(sql "SELECT id FROM tokens WHERE name = 'bob'")

start_server s1

# --- sign in ------------------------------------------------------------------------------------
signin "$ALICE"
expect_status 201 "alice signs in"
c=$(set_cookie)
printf '%s\n' "$c" | grep -Eq '^devid_session=[A-Za-z0-9_-]{43}; Path=/; HttpOnly; SameSite=Strict; Max-Age=28800$' ||
	fail "the cookie over plain HTTP is \"$c\""
[ "$(grep -ci '^set-cookie:' headers)" = 1 ] || fail "more than one Set-Cookie: $(cat headers)"
[ "$(json '[j["tenant"], j["role"], j["name"], len(j["csrf"])]')" = "['OEM1', 'admin', 'alice', 43]" ] ||
	fail "the sign-in answer: $(cat body)"
[ "$(date -d "$(json 'j["expiresAt"]')" +%s)" -ge $(($(date +%s) + 28790)) ] || fail "expiresAt: $(cat body)"
[ "$csrf" = "$(b64hash "$cookie" devid-csrf: b64)" ] ||
	fail "csrf $csrf is not base64url(SHA-256(\"devid-csrf:\" || secret bytes))"
note "ok the cookie is HttpOnly, SameSite=Strict, Path=/, Max-Age=28800, not Secure over HTTP"
alice_cookie=$cookie
alice_csrf=$csrf

signin "$VT"
expect_status 403 "a vendor token does not sign in"
grep -q 'the console is for OEM admins and operators' body || fail "the refusal: $(cat body)"
[ -z "$(set_cookie)" ] || fail "a refused sign-in set a cookie"
signin "not-a-token-not-a-token-not-a-token-000000"
expect_status 401 "a wrong token does not sign in"
[ -z "$(set_cookie)" ] || fail "a refused sign-in set a cookie"
req POST /api/v1/session -H 'Content-Type: application/json' --data-binary '{"token":1}'
expect_status 400 "a sign-in body without a token string"
# login CSRF: what a form elsewhere can send (text/plain, urlencoded) does not sign in
for type in text/plain application/x-www-form-urlencoded application/jsonx; do
	req POST /api/v1/session -H "Content-Type: $type" --data-binary "{\"token\":\"$ALICE\"}"
	expect_status 415 "a sign-in sent as $type"
	[ -z "$(set_cookie)" ] || fail "a sign-in sent as $type set a cookie"
done
[ "$(sql 'SELECT COUNT(*) FROM sessions')" = 1 ] || fail "refused sign-ins stored sessions"

# --- the stored session: its hash, never the cookie -----------------------------------------------
stored=$(sql 'SELECT id_hash FROM sessions')
[ "$stored" != "$alice_cookie" ] || fail "the cookie is stored as it is"
[ "$stored" = "$(b64hash "$alice_cookie")" ] || fail "stored $stored, not the SHA-256 of the secret"
/usr/bin/python3 -c 'import sqlite3,sys
print("\n".join(sqlite3.connect(sys.argv[1]).iterdump()))' "$tmp/devid.db" >dump.sql
grep -qF "$alice_cookie" dump.sql && fail "the cookie value is in the database"
grep -qF "$alice_csrf" dump.sql && fail "the CSRF token is in the database"
note "ok the database holds the session's SHA-256 only"

# --- the cookie as a bearer -------------------------------------------------------------------------
req GET /api/v1/session -b "devid_session=$alice_cookie"
expect_status 200 "GET /api/v1/session with the cookie"
[ "$(json 'j["csrf"]')" = "$alice_csrf" ] && [ "$(json 'j["name"]')" = alice ] ||
	fail "GET /api/v1/session: $(cat body)"
req GET /api/v1/session
expect_status 401 "GET /api/v1/session without a cookie"
req GET /api/v1/batches -b "devid_session=$alice_cookie"
expect_status 200 "a GET with the cookie"
req GET /api/v1/tokens -H "Cookie: theme=dark;  devid_session=$alice_cookie ; lang=en"
expect_status 200 "the cookie among others, with spaces"
req GET /api/v1/tokens -H "Cookie: devid_session"
expect_status 401 "a malformed Cookie header is no session"
req GET /api/v1/tokens -H "Cookie: devid_session=${alice_cookie}x"
expect_status 401 "a cookie one character too long"

# --- CSRF ---------------------------------------------------------------------------------------------
before=$(token_count)
printf '{"name":"made-in-console","role":"operator"}' >tok.json
req POST /api/v1/tokens -b "devid_session=$alice_cookie" -H 'Content-Type: application/json' \
    --data-binary @tok.json
expect_status 403 "a change with the cookie and no X-CSRF-Token"
[ "$(json 'j["message"]')" = "a change made with a session cookie needs its X-CSRF-Token header" ] ||
	fail "the CSRF refusal: $(cat body)"
# every letter shifted by one: as long, as well-formed, and wrong
wrong=$(printf '%s' "$alice_csrf" | tr 'A-Za-z' 'B-ZAb-za')
[ "$wrong" != "$alice_csrf" ] && [ ${#wrong} = 43 ] || fail "no wrong CSRF token made of $alice_csrf"
req POST /api/v1/tokens -b "devid_session=$alice_cookie" -H "X-CSRF-Token: $wrong" \
    -H 'Content-Type: application/json' --data-binary @tok.json
expect_status 403 "a change with the cookie and a wrong X-CSRF-Token"
req POST /api/v1/tokens -b "devid_session=$alice_cookie" -H "X-CSRF-Token: $alice_cookie" \
    -H 'Content-Type: application/json' --data-binary @tok.json
expect_status 403 "the cookie's own value as X-CSRF-Token"
[ "$(token_count)" = "$before" ] || fail "a refused change made a token"
note "ok without the right CSRF token nothing changed"
req POST /api/v1/tokens -b "devid_session=$alice_cookie" -H "X-CSRF-Token: $alice_csrf" \
    -H 'Content-Type: application/json' --data-binary @tok.json
expect_status 201 "a change with the cookie and its X-CSRF-Token"
[ "$(token_count)" = $((before + 1)) ] || fail "the change did not happen"
[ "$(sql "SELECT actor FROM audit WHERE action = 'token.add' AND object = 'made-in-console'")" = "token:$alice_id:alice" ] ||
	fail "the change is not audited as alice's token"
printf '{"name":"made-by-bearer","role":"operator"}' >tok2.json
req POST /api/v1/tokens -H "Authorization: Bearer $ALICE" -H 'Content-Type: application/json' \
    --data-binary @tok2.json
expect_status 201 "a bearer needs no CSRF token"
# the Authorization header decides: bob's bearer is an operator's, whatever alice's cookie says
req GET /api/v1/tokens -H "Authorization: Bearer $BOB" -b "devid_session=$alice_cookie"
expect_status 403 "the bearer decides over the cookie"
req GET /api/v1/batches -H "Authorization: Bearer nope-nope-nope-nope-nope" -b "devid_session=$alice_cookie"
expect_status 401 "a wrong bearer with a good cookie"

# --- sign out ---------------------------------------------------------------------------------------
req DELETE /api/v1/session -b "devid_session=$alice_cookie"
expect_status 403 "sign-out without the CSRF token"
req GET /api/v1/batches -b "devid_session=$alice_cookie"
expect_status 200 "the session lives after a refused sign-out"
req DELETE /api/v1/session -b "devid_session=$alice_cookie" -H "X-CSRF-Token: $alice_csrf"
expect_status 204 "sign-out"
[ "$(set_cookie)" = "devid_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0" ] ||
	fail "sign-out's cookie: \"$(set_cookie)\""
req GET /api/v1/batches -b "devid_session=$alice_cookie"
expect_status 401 "the cookie after sign-out"
req GET /api/v1/session -b "devid_session=$alice_cookie"
expect_status 401 "GET /api/v1/session after sign-out"
[ "$(sql 'SELECT COUNT(*) FROM sessions')" = 0 ] || fail "sign-out left the session stored"

# --- revoking the token ends its session ------------------------------------------------------
signin "$BOB"
expect_status 201 "bob signs in"
bob_cookie=$cookie
req GET /api/v1/batches -b "devid_session=$bob_cookie"
expect_status 200 "bob's session"
req DELETE "/api/v1/tokens/$bob_id" -H "Authorization: Bearer $ALICE"
expect_status 200 "alice revokes bob's token"
req GET /api/v1/batches -b "devid_session=$bob_cookie"
expect_status 401 "the session of a revoked token"

# --- audit: session.open and session.close as the token, no secret -------------------------------
[ "$(sql "SELECT actor FROM audit WHERE action = 'session.open' ORDER BY seq")" = "token:$alice_id:alice
token:$bob_id:bob" ] || fail "session.open records: $(sql "SELECT actor FROM audit WHERE action = 'session.open'")"
[ "$(sql "SELECT actor FROM audit WHERE action = 'session.close'")" = "token:$alice_id:alice" ] ||
	fail "session.close records: $(sql "SELECT actor FROM audit WHERE action = 'session.close'")"
sql "SELECT actor || ' ' || object || ' ' || detail FROM audit" >audit.txt
for secret in "$alice_cookie" "$alice_csrf" "$bob_cookie" "$stored" "$ALICE" "$BOB"; do
	grep -qF "$secret" audit.txt && fail "the audit trail holds a secret or its hash"
done
run "$devid" admin audit verify OEM1
[ "$rc" -eq 0 ] || fail_run "the chain does not verify"
note "ok sign-in and sign-out are audited as the token, without secrets"

# --- expiry ------------------------------------------------------------------------------------------
# 5 s: long enough that a loaded machine still uses the fresh session in time
start_server s2 --session-ttl 5
signin "$ALICE"
expect_status 201 "sign-in with --session-ttl 5"
set_cookie | grep -q '; Max-Age=5$' || fail "Max-Age with --session-ttl 5: $(set_cookie)"
req GET /api/v1/batches -b "devid_session=$cookie"
expect_status 200 "a fresh short session"
sleep 6
req GET /api/v1/batches -b "devid_session=$cookie"
expect_status 401 "an expired session"

# --- TLS: the cookie is Secure ------------------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout tls.key -out tls.pem >/dev/null 2>&1 || fail "openssl req"
start_server s3 --tls-cert tls.pem --tls-key tls.key
case $url in https://*) ;; *) fail "a TLS server announced $url" ;; esac
req POST /api/v1/session --cacert tls.pem -H 'Content-Type: application/json' \
    --data-binary "{\"token\":\"$ALICE\"}"
expect_status 201 "sign-in over TLS"
set_cookie | grep -Eq '^devid_session=[A-Za-z0-9_-]{43}; Path=/; HttpOnly; SameSite=Strict; Max-Age=28800; Secure$' ||
	fail "the cookie over TLS: \"$(set_cookie)\""
note "ok the cookie is Secure over TLS"

note "ok"
