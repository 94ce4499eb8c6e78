#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# backup: `devid admin backup FILE` copies a SQLite database while devid serve writes to it:
#   - the copy is taken while tokens and audit records are being written
#     by the running server, and it is whole (integrity_check), 0600, a working database:
#     devid serve starts on it and its audit chain verifies;
#   - an existing FILE is refused and left as it was; a PostgreSQL URL fails leaving no file;
#     a usage error creates nothing.
me=backup
. "$(dirname "$0")/lib.sh"
devid=${1:-}
need_devid "$devid"
need_tool curl curl
make_tmp
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd"
export DEVID_DB="sqlite:$tmp/live.db"

"$devid" admin tenant add OEM1 --kind oem >/dev/null || fail "tenant add"
admin=$("$devid" admin token add OEM1 --role admin --name alice) || fail "token add"
"$devid" serve --listen 127.0.0.1:0 --workers 0 >serve.out 2>serve.log &
pids="$pids $!"
wait_line serve.out 'listening on' serve
url=$(sed -n 's/.*listening on //p' serve.out)

# a writer through the running server: each token it makes is a row and an audit record
(
	n=0
	while [ ! -e stop ]; do
		n=$((n + 1))
		curl -sS -o /dev/null -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
		    -d "{\"name\":\"t$n\",\"role\":\"operator\"}" "$url/api/v1/tokens"
	done
) &
writer=$!
pids="$pids $writer"
sleep 1
run "$devid" admin backup copy.db
[ "$rc" -eq 0 ] || fail_run "backup while serve writes: exit $rc"
grep -q "into copy.db" "$tmp/out" || fail_run "backup did not say where the copy went"
sleep 0.5
touch stop
wait "$writer"
[ "$(file_mode copy.db)" = -rw------- ] || fail "the copy is $(file_mode copy.db), not -rw-------"
run "$devid" admin --db "sqlite:$tmp/copy.db" audit verify OEM1
[ "$rc" -eq 0 ] || fail_run "the copy's audit chain does not verify"
n_copy=$("$devid" admin --db "sqlite:$tmp/copy.db" token list OEM1 | grep -c ' operator ')
n_live=$("$devid" admin token list OEM1 | grep -c ' operator ')
[ "$n_copy" -gt 0 ] || fail "the copy holds none of the tokens written before it"
[ "$n_copy" -le "$n_live" ] || fail "the copy holds more tokens ($n_copy) than the database ($n_live)"
note "ok a copy taken while serve wrote: $n_copy of $n_live tokens, audit chain intact, 0600"

"$devid" serve --db "sqlite:$tmp/copy.db" --listen 127.0.0.1:0 --workers 0 >copy.out 2>copy.log &
pids="$pids $!"
i=0
until grep -q 'listening on' copy.out 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "serve on the copy did not start: $(tail -3 copy.log)"
	sleep 0.1
done
curl -sS -H "Authorization: Bearer $admin" "$(sed -n 's/.*listening on //p' copy.out)/api/v1/tokens" |
	grep -q '"alice"' || fail "serve on the copy does not know the admin token"
note "ok devid serve runs on the copy"

cp copy.db before.db
run "$devid" admin backup copy.db
[ "$rc" -eq 1 ] && grep -q 'copy.db: File exists' "$tmp/err" || fail_run "an existing file was not refused"
cmp -s copy.db before.db || fail "a refused backup changed the existing file"
run "$devid" admin --db postgres://nobody@127.0.0.1:1/none backup pg.db
[ "$rc" -eq 1 ] || fail_run "a PostgreSQL backup: exit $rc"
[ ! -e pg.db ] || fail "a failed backup left a file"
run "$devid" admin backup
[ "$rc" -eq 2 ] || fail_run "backup without a file: exit $rc, want 2"
note "ok an existing file is refused, PostgreSQL and usage errors leave nothing"
