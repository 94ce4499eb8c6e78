#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Real exchanges match docs/openapi.json, both ways: runs the integration tests that call the
# REST API through api_curl (api.sh, console-api.sh and admin.sh on SQLite; session.sh,
# provision.sh, secrets.sh, upload.sh and clone.sh) with their exchanges recorded (DEVID_API_RECORD, see
# tests/integration/lib.sh), then check_responses.py checks that
#   - every answer has a documented status, content type and, for JSON, matches its schema;
#   - every request the server accepted (2xx) has the body the operation documents: a JSON
#     body valid against its requestBody schema (requests answered 4xx are bad on purpose);
#   - every operation of the document is exercised, but for a short list with reasons.
# aws-iot.sh and azure-dps.sh also call the API through api_curl but take a minute between
# them (rate-limited drains against their stand-ins); they are not run here. The scripts
# run two at a time, to keep this test near half a minute.
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

# record NAME [ARG]: integration/NAME.sh DEVID [ARG] with its exchanges recorded; a script
# that fails or skips (exit 77: a tool it needs is missing) fails this test, so that nothing
# goes unchecked silently
record() {
	DEVID_API_RECORD="$tmp/exchanges" sh "$here/../integration/$1.sh" "$devid" ${2:+"$2"} \
	    >"$tmp/$1.log" 2>&1 ||
	    { tail -20 "$tmp/$1.log" >&2; fail "$1.sh failed or skipped, so its exchanges are not checked"; }
}

# two lanes of about the same time; each lane's scripts one after another
(record provision && record api sqlite && record upload && record clone sqlite) &
lane1=$!
(record session && record secrets && record console-api sqlite && record admin sqlite) &
lane2=$!
wait "$lane1"
rc1=$?
wait "$lane2"
rc2=$?
if [ "$rc1" -ne 0 ] || [ "$rc2" -ne 0 ]; then
	fail "an integration script failed (above)"
fi
/usr/bin/python3 "$here/check_responses.py" "$doc" "$tmp/exchanges" ||
    fail "exchanges that do not match docs/openapi.json (above)"
note "ok: every recorded exchange matches docs/openapi.json"
