#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# config: devid.conf (man 5 devid.conf) with the real devid serve and devid gateway:
#   - the [serve] section sets options (db, listen, session-ttl), a flag overrides the file,
#     DEVID_DB overrides the file's db, DEVID_CONFIG names the file;
#   - a bad file (unknown key, key outside a section, unknown section, junk line, a flag-only
#     option, an overlong line, a missing file named by --config) is a usage error naming the
#     file and the line, and nothing is created;
#   - serve --check-config opens what serve would open and creates nothing: a good setup
#     passes (exit 0), a TLS key that is not the certificate's and a database of a newer
#     devid fail (exit 1);
#   - the [gateway] section starts devid gateway (two trust lines, a secret file, its db).
me=config
. "$(dirname "$0")/lib.sh"
devid=${1:-}
need_devid "$devid"
need_tool openssl openssl
need_tool curl curl
make_tmp
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd"
unset DEVID_DB DEVID_CONFIG

# start NAME CMD...: a server in the background, its port line awaited in NAME.out
start() {
	name=$1
	shift
	"$@" >"$name.out" 2>"$name.log" &
	pids="$pids $!"
	i=0
	until grep -q 'listening on\|admin on' "$name.out" 2>/dev/null; do
		i=$((i + 1))
		kill -0 "$!" 2>/dev/null || fail "$name exited: $(tail -3 "$name.log")"
		[ $i -lt 150 ] || fail "$name did not start: $(tail -3 "$name.log")"
		sleep 0.1
	done
}

stop_all() {
	for p in $pids; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	pids=""
}

# --- [serve]: the file sets options; flags and DEVID_DB override it -----------------------
cat >devid.conf <<CONF
; a comment
[serve]
db = sqlite:$tmp/from-file.db
listen = 127.0.0.1:0   ; an inline comment
session-ttl = 77
workers = 0
CONF
start s1 "$devid" serve --config devid.conf
[ -s from-file.db ] || fail "serve did not use the file's db"
url=$(sed -n 's/.*listening on //p' s1.out)
curl -sS "$url/healthz" | grep -q ok || fail "serve from the file does not answer /healthz"
tok=$("$devid" admin --db "sqlite:$tmp/from-file.db" tenant add OEM1 --kind oem >/dev/null &&
	"$devid" admin --db "sqlite:$tmp/from-file.db" token add OEM1 --role admin) || fail "token"
curl -sS -D hdr -o /dev/null -H 'Content-Type: application/json' -d "{\"token\":\"$tok\"}" "$url/api/v1/session"
grep -qi 'Set-Cookie: devid_session=.*Max-Age=77' hdr || fail "session-ttl from the file not applied: $(grep -i set-cookie hdr)"
stop_all
note "ok the [serve] section sets db, listen, session-ttl and workers"

start s2 "$devid" serve --config devid.conf --session-ttl 99
curl -sS -D hdr -o /dev/null -H 'Content-Type: application/json' -d "{\"token\":\"$tok\"}" \
    "$(sed -n 's/.*listening on //p' s2.out)/api/v1/session"
grep -qi 'Max-Age=99' hdr || fail "a flag does not override the file: $(grep -i set-cookie hdr)"
stop_all
DEVID_DB="sqlite:$tmp/from-env.db" start s3 "$devid" serve --config devid.conf
[ -s from-env.db ] || fail "DEVID_DB does not override the file's db"
stop_all
DEVID_CONFIG=devid.conf start s4 "$devid" serve --session-ttl 5
[ -n "$(sed -n 's/.*listening on //p' s4.out)" ] || fail "DEVID_CONFIG was not read"
stop_all
note "ok a flag and DEVID_DB override the file; DEVID_CONFIG names it"

# --- bad files: usage errors naming file and line; nothing created -----------------------
bad() { # WHAT EXPECTED-MESSAGE: devid.conf as written before the call
	run "$devid" serve --config bad.conf
	[ "$rc" -eq 2 ] || check_failed_run "$1: exit $rc, want 2"
	grep -qF -- "$2" "$tmp/err" || check_failed_run "$1: stderr lacks \"$2\""
	[ ! -e never.db ] || check_failed "$1: the database was created"
}
printf '[serve]\ndb = sqlite:never.db\nlistn = 127.0.0.1:0\n' >bad.conf
bad "unknown key" "bad.conf:3: listn is not an option of devid serve"
printf 'db = sqlite:never.db\n' >bad.conf
bad "outside a section" "bad.conf:1: db is outside a section"
printf '[serve]\ndb = sqlite:never.db\n[srv]\nlisten = 1\n' >bad.conf # named at its first key
bad "unknown section" "bad.conf:4: unknown section [srv]"
printf '[serve]\ndb = sqlite:never.db\nthis is not a setting\n' >bad.conf
bad "junk line" "bad.conf:3: neither key = value nor [section]"
printf '[serve]\ndb = sqlite:never.db\ncheck-config = yes\n' >bad.conf
bad "a command-line flag" "bad.conf:3: check-config is for the command line only"
printf '[serve]\ndb = sqlite:never.db\nlisten =\n' >bad.conf
bad "no value" "bad.conf:3: listen has no value"
{ printf '[serve]\n'; printf 'public-url = https://%0250d\n' 0; printf 'db = sqlite:never.db\n'; } >bad.conf
bad "an overlong line" "bad.conf:2: longer than"
printf '[serve]\ndb = sqlite:never.db\nthreads = 0\n' >bad.conf
bad "a value the option refuses" "--threads is 1 to 64"
run "$devid" serve --config missing.conf --db sqlite:never.db
{ [ "$rc" -eq 2 ] && grep -q "missing.conf: No such file" "$tmp/err"; } || check_failed_run "a missing --config file"
DEVID_CONFIG=missing.conf run "$devid" serve --db sqlite:never.db
{ [ "$rc" -eq 2 ] && grep -q "missing.conf" "$tmp/err"; } || check_failed_run "a missing DEVID_CONFIG file"
[ ! -e never.db ] || fail "a bad configuration created the database"
note "ok bad files are usage errors naming file and line, and create nothing"

# --- serve --check-config -----------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
    -keyout srv.key -out srv.pem >/dev/null 2>&1 || fail "openssl req"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key 2>/dev/null || fail "genpkey"
"$devid" admin secrets-key init "file:$tmp/secrets.key" >/dev/null || fail "secrets-key init"
cat >good.conf <<CONF
[serve]
db = sqlite:$tmp/checked.db
tls-cert = $tmp/srv.pem
tls-key = $tmp/srv.key
secrets-key = file:$tmp/secrets.key
interop-key = $tmp/interop.pem
CONF
run "$devid" serve --config good.conf --check-config
[ "$rc" -eq 0 ] || check_failed_run "--check-config of a good setup: exit $rc"
grep -q '^devid serve: configuration OK$' "$tmp/out" || check_failed_run "--check-config: no OK line"
grep -q '^tls .*ok' "$tmp/out" || check_failed_run "--check-config did not check TLS"
grep -q '^secrets-key .*ok' "$tmp/out" || check_failed_run "--check-config did not open the secrets key"
[ ! -e checked.db ] && [ ! -e interop.pem ] || check_failed "--check-config created files"
run "$devid" serve --config good.conf --check-config --tls-key other.key
[ "$rc" -eq 1 ] || check_failed_run "--check-config with another key: exit $rc, want 1"
grep -q 'is not the key of' "$tmp/out" || check_failed_run "--check-config: no key mismatch named"
"$devid" admin --db "sqlite:$tmp/checked.db" migrate >/dev/null || fail "migrate"
/usr/bin/python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (999, 0)"); c.commit()' checked.db ||
	fail "could not mark the schema newer"
cp checked.db before.db
run "$devid" serve --config good.conf --check-config
[ "$rc" -eq 1 ] || check_failed_run "--check-config of a newer schema: exit $rc, want 1"
grep -q 'newer than this devid knows' "$tmp/out" || check_failed_run "--check-config: newer schema not named"
cmp -s checked.db before.db || check_failed "--check-config changed the database"
note "ok --check-config opens TLS, keys and database, creates and changes nothing"

# --- [gateway] ----------------------------------------------------------------------------
"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "vendor init"
"$devid" vendor init --dir w --vendor OTHER >/dev/null || fail "vendor init"
printf 'gateway-secret-0123456789abcdef\n' >gw.secret
cat >gw.conf <<CONF
[gateway]
listen = 127.0.0.1:0
admin-listen = 127.0.0.1:0
tls-cert = $tmp/srv.pem
tls-key = $tmp/srv.key
trust = $tmp/v/root.pem
trust = $tmp/w/root.pem
secret-file = $tmp/gw.secret
db = $tmp/gateway.db
CONF
start gw "$devid" gateway --config gw.conf
[ -s gateway.db ] || check_failed "the gateway did not use the file's db"
grep -q 'admin on http://127.0.0.1:' gw.out || check_failed "the gateway did not take its ports from the file"
stop_all
finish "devid.conf: sections, precedence, errors, --check-config and the gateway"
