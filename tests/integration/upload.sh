#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Uploads, a batch sent in pages (docs/api.md "Uploads"), end to end: devid serve on SQLite,
# devid vendor publish / devid import and curl as clients.
#   - a publish in pages by the CLI: the batch is visible whole only after the commit;
#   - an interrupted publish (the server killed while pages flow) resumes when run again:
#     only the pages the server lacks are sent;
#   - a page sent again is answered 200 and changes nothing; other bytes for it: 409;
#   - a forged entry on page 3 is refused naming the entry and the page, the CLI aborts the
#     upload, and nothing of the batch is anywhere (rows counted);
#   - abort and expiry leave no row; a commit with a missing page is refused naming it;
#   - another vendor's token gets 404 for every operation on the upload;
#   - an OEM imports an outside vendor's manifest in pages with devid import.
# Usage: upload.sh DEVID
me=upload
. "$(dirname "$0")/lib.sh"
devid=${1:-}
need_devid "$devid"
need_tool curl curl
need_tool /usr/bin/python3 python3
make_tmp
server=""
trap '[ -z "$server" ] || kill -9 "$server" 2>/dev/null; rm -rf "$tmp"' EXIT
export DEVID_DB="sqlite:$tmp/devid.db"
cd "$tmp" || fail "cd"

# start_server [ARGS]: devid serve on a free port (the same one again when $port is set)
start_server() {
	: >serve.out
	"$devid" serve --listen "127.0.0.1:${port:-0}" "$@" >serve.out 2>>serve.log &
	server=$!
	wait_line serve.out 'listening on' "devid serve"
	url=$(sed -n 's/.*listening on //p' serve.out)
	port=${url##*:}
}

# rows: batches, devices, uploads and pages in the database, as "B D U P"
rows() {
	/usr/bin/python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(" ".join(str(c.execute("SELECT COUNT(*) FROM " + t).fetchone()[0])
    for t in ("batches", "devices", "uploads", "upload_pages")))' "$tmp/devid.db"
}

# as TOKEN METHOD PATH [BODY-FILE]: the API as TOKEN; $status, the answer in ./body
as() {
	if [ -n "${4:-}" ]; then
		api_curl body "$2" "$3" -H "Authorization: Bearer $1" \
		    -H 'Content-Type: application/json' --data-binary "@$4"
	else
		api_curl body "$2" "$3" -H "Authorization: Bearer $1"
	fi
}

# field NAME: a member of ./body
field() {
	/usr/bin/python3 -c 'import json, sys; v = json.load(open("body")).get(sys.argv[1]); print("" if v is None else v)' "$1"
}

"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "vendor init"
"$devid" vendor init --dir w --vendor OUTSIDE >/dev/null || fail "vendor init (outside)"
for spec in "v B1 23" "v B2 600" "v B3 12" "v B4 5" "v B5 4" "w W1 7"; do
	set -- $spec
	"$devid" vendor mint --dir "$1" --batch "$2" --count "$3" --out "$2" --quiet >/dev/null ||
		fail "mint $2"
done
"$devid" admin migrate >/dev/null || fail "migrate"
for t in "ACME vendor" "OTHERV vendor" "OEM1 oem"; do
	set -- $t
	"$devid" admin tenant add "$1" --kind "$2" >/dev/null || fail "tenant $1"
done
VT=$("$devid" admin token add ACME --role vendor) || fail "token"
VT2=$("$devid" admin token add OTHERV --role vendor) || fail "token"
A1=$("$devid" admin token add OEM1 --role admin) || fail "token"
"$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem >/dev/null ||
	fail "trust"
"$devid" admin trust add --tenant OEM1 --root w/root.pem --signer w/signer.pem >/dev/null ||
	fail "trust (OEM1's import trust)"
# long enough for the interrupted publish below to be resumed on a loaded machine (the expiry
# section restarts the server with 2 s)
start_server --upload-ttl 60
export DEVID_SERVER="$url" DEVID_TOKEN="$VT"

# --- a publish in pages ------------------------------------------------------------------
run "$devid" vendor publish --page-size 5 B1
[ $rc -eq 0 ] && grep -q '"accepted": 23' out || fail_run "publish B1 in pages of 5"
[ "$(grep -c 'method=PUT path=/api/v1/uploads/[0-9a-f]*/pages/' serve.log)" -eq 5 ] ||
	fail "B1: 5 pages expected in the server's log, saw $(grep -c 'pages/' serve.log)"
printf '{"code":"%s"}' "$(cat B1/claim.txt)" >claim.json
as "$A1" POST /api/v1/claims claim.json
[ "$status" = 200 ] || fail "claim of B1 after its commit: $status $(cat body)"
note "ok a publish of 23 chips in 5 pages, claimed after its commit"

# --- interrupted, then resumed -------------------------------------------------------------
# 600 pages of one entry: the server is killed once a few have arrived, mid-flow
"$devid" vendor publish --page-size 1 B2 >pub2.out 2>pub2.err &
pub=$!
i=0
got=0
while [ "$got" -lt 3 ]; do
	i=$((i + 1))
	[ $i -lt 300 ] || fail "the publish of B2 did not get going: $(cat pub2.err)"
	sleep 0.05
	got=$(grep -c 'method=PUT path=/api/v1/uploads/[0-9a-f]*/pages/' serve.log)
	got=$((got - 5))
done
kill -9 "$server"
wait "$server" 2>/dev/null
server=""
wait "$pub"
prc=$?
[ $prc -ne 0 ] || fail "the publish of B2 ended well though its server was killed"
grep -q 'is kept: run the same command again to resume it' pub2.err ||
	fail "the interrupted publish does not say how to resume: $(cat pub2.err)"
[ "$(rows)" = "$(rows | awk '{ print $1, $2, 1, $4 }')" ] || fail "not one upload open: $(rows)"
held=$(rows | awk '{ print $4 }')
: >serve.log
start_server --upload-ttl 60
run "$devid" vendor publish --page-size 1 B2
[ $rc -eq 0 ] && grep -q '"accepted": 600' out || fail_run "the resumed publish of B2"
grep -q "resuming upload [0-9a-f]* of batch B2: $held page(s)" err ||
	fail_run "the resumed publish did not say it resumed $held pages"
sent=$(grep -c 'method=PUT path=/api/v1/uploads/[0-9a-f]*/pages/' serve.log)
[ "$sent" -eq $((600 - held)) ] ||
	fail "resume sent $sent pages; $held of 600 were held, so $((600 - held)) were due"
note "ok interrupted after $held of 600 pages, resumed with the other $sent"

# --- the protocol with curl: replay, conflict, missing page, another tenant ---------------
/usr/bin/python3 -c 'import json
for b, size in (("B3", 5), ("B5", 2)):
    d = json.load(open(b + "/batch.json"))
    m = json.load(open(b + "/manifest.json"))
    json.dump({"kind": "publish", "descriptor": d, "pageSize": size}, open("open-%s.json" % b, "w"))
    for k in range((len(m) + size - 1) // size):
        json.dump(m[size * k:size * k + size], open("page-%s-%d.json" % (b, k + 1), "w"))
    json.dump(m[0:size], open("page-%s-1-other.json" % b, "w"), indent=2)' || fail "pages"
as "$VT" POST /api/v1/uploads open-B3.json
[ "$status" = 201 ] || fail "open B3: $status $(cat body)"
id=$(field id)
[ "$(field lastPage)" = 3 ] || fail "B3 in pages of 5 has 3: $(cat body)"
as "$VT" PUT "/api/v1/uploads/$id/pages/1" page-B3-1.json
[ "$status" = 201 ] || fail "page 1: $status $(cat body)"
before=$(rows)
as "$VT" PUT "/api/v1/uploads/$id/pages/1" page-B3-1.json
[ "$status" = 200 ] && [ "$(field replayed)" = True ] || fail "page 1 again: $status $(cat body)"
as "$VT" PUT "/api/v1/uploads/$id/pages/1" page-B3-1-other.json
[ "$status" = 409 ] || fail "page 1 with other bytes: $status $(cat body)"
[ "$(rows)" = "$before" ] || fail "a replay or a conflict changed rows: $before -> $(rows)"
note "ok a page again: 200, nothing changed; other bytes for it: 409"
as "$VT" PUT "/api/v1/uploads/$id/pages/3" page-B3-3.json
[ "$status" = 201 ] || fail "page 3: $status $(cat body)"
as "$VT" POST "/api/v1/uploads/$id/commit"
[ "$status" = 400 ] && grep -q 'page 2 is missing' body || fail "commit without page 2: $status $(cat body)"
for op in "GET /api/v1/uploads/$id" "PUT /api/v1/uploads/$id/pages/2" \
    "POST /api/v1/uploads/$id/commit" "DELETE /api/v1/uploads/$id"; do
	set -- $op
	if [ "$1" = PUT ]; then as "$VT2" "$1" "$2" page-B3-2.json; else as "$VT2" "$1" "$2"; fi
	[ "$status" = 404 ] || fail "another vendor's $op: $status $(cat body)"
done
as "$VT2" GET /api/v1/uploads
[ "$status" = 200 ] && grep -q '"uploads":\[\]' body || fail "another vendor lists uploads: $(cat body)"
note "ok a commit with page 2 missing is refused naming it; another vendor gets 404 throughout"
as "$VT" GET "/api/v1/uploads/$id"
[ "$status" = 200 ] && [ "$(field pagesReceived)" = 2 ] || fail "GET the upload: $(cat body)"
as "$VT" PUT "/api/v1/uploads/$id/pages/2" page-B3-2.json
[ "$status" = 201 ] || fail "page 2: $status $(cat body)"
as "$VT" POST "/api/v1/uploads/$id/commit"
[ "$status" = 201 ] && grep -q '"accepted":12' body || fail "commit B3: $status $(cat body)"
note "ok with page 2 sent, the commit makes B3 visible"

# --- abort ----------------------------------------------------------------------------------
before=$(rows)
as "$VT" POST /api/v1/uploads open-B5.json
[ "$status" = 201 ] || fail "open B5: $status $(cat body)"
id=$(field id)
as "$VT" PUT "/api/v1/uploads/$id/pages/1" page-B5-1.json
[ "$status" = 201 ] || fail "page 1 of B5: $status $(cat body)"
as "$VT" DELETE "/api/v1/uploads/$id"
[ "$status" = 204 ] || fail "abort: $status $(cat body)"
[ "$(rows)" = "$before" ] || fail "abort left rows: $before -> $(rows)"
note "ok abort: no upload, page, reserved batch or device left ($before)"

# --- a forged entry on page 3 -------------------------------------------------------------
before=$(rows)
/usr/bin/python3 -c 'import json
m = json.load(open("B4/manifest.json"))
s = m[4]["signature"]
m[4]["signature"] = ("B" if s[3] == "A" else "A").join((s[:3], s[4:]))
json.dump(m, open("B4/manifest.json", "w"), indent=1)' || fail "forge B4"
run "$devid" vendor publish --page-size 2 B4
[ $rc -ne 0 ] || fail_run "a forged entry was published"
grep -q 'page 3' err && grep -q '"index": 4' out && grep -q '"page": 3' out ||
	fail_run "the refusal does not name entry 4 on page 3"
grep -q 'aborted: nothing of batch B4 was kept' err || fail_run "the CLI did not abort the upload"
[ "$(rows)" = "$before" ] || fail "the refused batch left rows: $before -> $(rows)"
printf '{"code":"%s"}' "$(cat B4/claim.txt)" >claim4.json
as "$A1" POST /api/v1/claims claim4.json
[ "$status" = 404 ] || fail "a claim of the refused batch: $status $(cat body)"
note "ok a forged entry on page 3: refused naming entry 4 and page 3; nothing of B4 anywhere"

# --- expiry ----------------------------------------------------------------------------------
kill "$server"
wait "$server" 2>/dev/null
start_server --upload-ttl 2
before=$(rows)
as "$VT" POST /api/v1/uploads open-B5.json
[ "$status" = 201 ] || fail "open B5 again: $status $(cat body)"
id=$(field id)
as "$VT" PUT "/api/v1/uploads/$id/pages/1" page-B5-1.json
[ "$status" = 201 ] || fail "page 1: $status $(cat body)"
sleep 3
as "$VT" PUT "/api/v1/uploads/$id/pages/2" page-B5-2.json
[ "$status" = 404 ] || fail "a page for an expired upload: $status $(cat body)"
# the next upload opened purges what expired
run "$devid" import --token "$A1" --batch W1 --page-size 3 W1/manifest.json
[ $rc -eq 0 ] && grep -q '"accepted": 7' out || fail_run "import W1 in pages of 3"
after=$(rows)
[ "$(echo "$after" | awk '{ print $1 - 1, $2 - 7, $3, $4 }')" = "$before" ] ||
	fail "expiry left rows: $before, then W1 (1 batch, 7 devices): $after"
note "ok an expired upload is gone with all it stored; W1 imported in 3 pages ($after)"

finish "publish in pages, resume, replay, conflict, refusals by entry and page, abort, expiry, tenant isolation, import"
