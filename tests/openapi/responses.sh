#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Real answers match docs/openapi.json: runs the API's integration tests (api.sh,
# console-api.sh and admin.sh, on SQLite) with their exchanges recorded (DEVID_API_RECORD, see
# tests/integration/lib.sh), then checks every recorded answer against the document
# (check_responses.py).
# Usage: responses.sh DEVID DOC
me=openapi-responses
. "$(dirname "$0")/../integration/lib.sh"
devid=${1:-}
doc=${2:-}
need_devid "$devid"
[ -f "$doc" ] || fail "usage: responses.sh DEVID DOC"
/usr/bin/python3 -c 'import jsonschema' 2>/dev/null || skip "python3-jsonschema is not installed (scripts/install-deps)"
here=$(cd "$(dirname "$0")" && pwd)
make_tmp
mkdir "$tmp/exchanges" || fail "mkdir"
for t in api console-api admin; do
	DEVID_API_RECORD="$tmp/exchanges" sh "$here/../integration/$t.sh" "$devid" sqlite >"$tmp/$t.log" 2>&1 ||
	    { tail -20 "$tmp/$t.log" >&2; fail "$t.sh failed, so its answers are not checked"; }
done
/usr/bin/python3 "$here/check_responses.py" "$doc" "$tmp/exchanges" ||
    fail "answers that do not match docs/openapi.json (above)"
note "ok: every recorded answer matches docs/openapi.json"
