#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# schema: a devid binary never writes to a database it cannot read right, and a mistyped
# command never touches one.
#   - usage errors (unknown command, missing option, bad value) of devid admin and devid
#     serve exit 2 and create no database file;
#   - a database whose schema a newer devid migrated (a schema_migrations row above the
#     newest this binary knows) is refused by devid admin (migrate, a command that writes,
#     a command that only reads, audit verify) and by devid serve: exit 1, a message that
#     says "newer", and the file byte for byte as it was.
# Usage: schema.sh DEVID
me=schema
. "$(dirname "$0")/lib.sh"
devid=${1:-}
need_devid "$devid"
need_tool /usr/bin/python3 python3
make_tmp

# --- usage errors create nothing ---------------------------------------------------------
none=$tmp/none.db
usage_error() {
	what=$1
	shift
	run "$@"
	[ "$rc" -eq 2 ] || check_failed_run "$what: exit status $rc, expected 2 (usage)"
	[ ! -e "$none" ] || { check_failed "$what: created $none"; rm -f "$none"*; }
}
usage_error "unknown command" "$devid" admin --db "sqlite:$none" frobnicate
usage_error "unknown subcommand" "$devid" admin --db "sqlite:$none" tenant frobnicate
usage_error "tenant add without --kind" "$devid" admin --db "sqlite:$none" tenant add ACME
usage_error "tenant add, bad name" "$devid" admin --db "sqlite:$none" tenant add 'a b' --kind oem
usage_error "token add without --role" "$devid" admin --db "sqlite:$none" token add ACME
usage_error "token add, bad --expires" "$devid" admin --db "sqlite:$none" token add ACME \
    --role vendor --expires tomorrow
usage_error "trust add without --root" "$devid" admin --db "sqlite:$none" trust add --vendor A
usage_error "quota set without --max" "$devid" admin --db "sqlite:$none" quota set --tenant A
usage_error "ca init without a key" "$devid" admin --db "sqlite:$none" ca init --tenant A
usage_error "audit verify without a tenant" "$devid" admin --db "sqlite:$none" audit verify
usage_error "migrate with an extra word" "$devid" admin --db "sqlite:$none" migrate now
usage_error "serve, bad --listen" "$devid" serve --db "sqlite:$none" --listen nowhere
usage_error "serve, bad --public-url" "$devid" serve --db "sqlite:$none" \
    --public-url 'ftp://x/'

# --- a newer schema is refused and left as it is -----------------------------------------
db=$tmp/devid.db
export DEVID_DB="sqlite:$db"
run "$devid" admin migrate
[ "$rc" -eq 0 ] || fail_run "migrate"
run "$devid" admin tenant add OEM1 --kind oem
[ "$rc" -eq 0 ] || fail_run "tenant add"
latest=$(sed -n 's/^database schema at version \([0-9]*\)$/\1/p' "$tmp/out")
run "$devid" admin migrate
latest=$(sed -n 's/^database schema at version \([0-9]*\)$/\1/p' "$tmp/out")
[ -n "$latest" ] || fail_run "migrate does not print the schema version"
newer=$((latest + 1))
/usr/bin/python3 - "$db" "$newer" <<'PY' || fail "could not mark the database newer"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)", (int(sys.argv[2]),))
c.commit()
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.close()
PY
before=$(sha256_of "$db")

refused() {
	what=$1
	shift
	run "$@"
	if [ "$rc" -ne 1 ]; then
		check_failed_run "$what: exit status $rc on a newer schema, expected 1"
	elif ! grep -q "schema is at version $newer, newer than this devid knows ($latest)" \
	    "$tmp/err"; then
		check_failed_run "$what: the error does not say the schema is newer"
	fi
	[ "$(sha256_of "$db")" = "$before" ] || check_failed "$what: the database file changed"
}
refused "admin migrate" "$devid" admin migrate
refused "admin tenant add" "$devid" admin tenant add OEM2 --kind oem
refused "admin tenant list" "$devid" admin tenant list
refused "admin token add" "$devid" admin token add OEM1 --role admin --name x
refused "admin quota set" "$devid" admin quota set --tenant OEM1 --max 3
refused "admin audit verify" "$devid" admin audit verify OEM1
refused "serve" "$devid" serve --listen 127.0.0.1:0
/usr/bin/python3 - "$db" "$newer" <<'PY' || fail "the newer database does not read back"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
names = [r[0] for r in c.execute("SELECT name FROM tenants ORDER BY name")]
assert names == ["OEM1"], names
PY
finish "usage errors created no database; a newer schema was refused by admin and serve, unchanged"
