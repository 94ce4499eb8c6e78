#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The web console end to end (issue 12), in headless Chromium driven by playwright-core:
# devid serve on SQLite with a secrets key, devid gateway as the product cloud (webhook), an
# OEM with an admin and an operator token, and a vendor's two reels. Chromium's fake camera
# plays the first reel's own claim.png (tests/console/png2y4m.py), so the console's scanner
# claims it from the label; console.test.mjs drives every screen, and this script then checks
# on the server that what the console did reads as the admin token's doing.
# Usage: console.sh DEVID
me=console
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../integration/lib.sh"
devid=${1:-}
need_devid "$devid"
devid=$(cd "$(dirname "$devid")" && pwd)/$(basename "$devid")
need_tool curl curl
need_tool openssl openssl
need_tool node nodejs
need_tool /usr/bin/chromium chromium
need_tool /usr/bin/python3 python3
/usr/bin/python3 -c 'import PIL' 2>/dev/null || skip "Pillow is not installed (Debian package python3-pil)"
web=$(cd "$here/../../web" && pwd)
# DEVID_SCREENSHOTS=DIR (the lead's refresh of docs/console/*.png): relative to where we started
case ${DEVID_SCREENSHOTS:-} in
"" | /*) ;;
*) DEVID_SCREENSHOTS=$PWD/$DEVID_SCREENSHOTS ;;
esac
make_tmp
# playwright-core from web/node_modules, installed as web/package-lock.json pins it
sh "$here/../../scripts/web-deps" >"$tmp/web-deps" 2>&1 ||
	skip "the console's npm packages cannot be installed: $(tail -1 "$tmp/web-deps")"
[ -f "$web/node_modules/playwright-core/package.json" ] || fail "scripts/web-deps left no playwright-core"
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd"
export DEVID_DB="sqlite:$tmp/devid.db"
secret="console-gateway-secret-0123456789"

wait_for() { # FILE PATTERN WHAT
	i=0
	until grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 300 ] || fail "$3 did not start: $(tail -5 "$1" "${1%.out}.log" 2>/dev/null)"
		sleep 0.1
	done
}

# the vendor: B1 claimed by the camera, B2 by its typed code
"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "vendor init"
"$devid" vendor mint --dir v --batch B1 --count 10 --out B1 --quiet >/dev/null || fail "mint B1"
"$devid" vendor mint --dir v --batch B2 --count 4 --out B2 --quiet >/dev/null || fail "mint B2"
# B3 stays unclaimed until the photo step: a claim forged without the CSRF header must not take it
"$devid" vendor mint --dir v --batch B3 --count 2 --out B3 --quiet >/dev/null || fail "mint B3"
"$devid" admin tenant add ACME --kind vendor >/dev/null || fail "tenant ACME"
"$devid" admin tenant add OEM1 --kind oem >/dev/null || fail "tenant OEM1"
VT=$("$devid" admin token add ACME --role vendor) || fail "vendor token"
A1=$("$devid" admin token add OEM1 --role admin --name alice) || fail "admin token"
OP=$("$devid" admin token add OEM1 --role operator --name line1) || fail "operator token"
"$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem >/dev/null ||
	fail "trust add"
"$devid" admin secrets-key init "file:$tmp/secrets.key" >/dev/null || fail "secrets-key init"
"$devid" serve --listen 127.0.0.1:0 --secrets-key "file:$tmp/secrets.key" >serve.out 2>serve.log &
pids="$pids $!"
wait_for serve.out 'listening on' "devid serve"
url=$(sed -n 's/.*listening on //p' serve.out)
for b in B1 B2 B3; do
	DEVID_SERVER=$url DEVID_TOKEN=$VT "$devid" vendor publish $b >/dev/null || fail "publish $b"
done

# the product cloud: devid gateway, its webhook on the admin port
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout gw.key -out gw.pem >/dev/null 2>&1 ||
	fail "gateway certificate"
"$devid" gateway --listen 127.0.0.1:0 --tls-cert gw.pem --tls-key gw.key --trust v/root.pem \
    --admin-listen 127.0.0.1:0 --secret "$secret" --db "$tmp/gateway.db" >gw.out 2>gw.log &
pids="$pids $!"
wait_for gw.out 'admin on' "devid gateway"
gw_admin=$(sed -n 's|.*admin on \(http://[^ ]*\).*|\1|p' gw.out)

# the camera: the first reel's label as the video Chromium's fake camera plays
/usr/bin/python3 "$here/png2y4m.py" B1/claim.png camera.y4m || fail "png2y4m"

# a photo of the third reel's label, as a phone takes one: large, the label off centre on a grey
# desk, JPEG; the console decodes it from the file input
/usr/bin/python3 - B3/claim.png photo.jpg <<'PY' || fail "the photo of B3's label"
import sys
from PIL import Image
label = Image.open(sys.argv[1]).convert("L")
label = label.resize((label.width * 3, label.height * 3), Image.NEAREST)
desk = Image.new("L", (3000, 2250), 170)
desk.paste(label, (1900 - label.width, 500))
desk.save(sys.argv[2], quality=90)
PY

shots=${DEVID_SCREENSHOTS:-$tmp/screenshots}
mkdir -p "$shots" || fail "mkdir $shots"
note "server $url, gateway $gw_admin, screenshots in $shots"
DEVID_URL=$url DEVID_ADMIN_TOKEN=$A1 DEVID_OPERATOR_TOKEN=$OP \
    DEVID_GATEWAY_EVENTS="$gw_admin/devid/events" DEVID_GATEWAY_ACL="$gw_admin/devid/acl" \
    DEVID_GATEWAY_SECRET=$secret DEVID_CAMERA="$tmp/camera.y4m" \
    DEVID_B1="ACME/B1" DEVID_B1_COUNT=10 DEVID_B1_DIR="$tmp/B1" \
    DEVID_B2="ACME/B2" DEVID_B2_COUNT=4 DEVID_B2_CODE="$(cat B2/claim.txt)" \
    DEVID_B3="ACME/B3" DEVID_B3_CODE="$(cat B3/claim.txt)" DEVID_B3_PHOTO="$tmp/photo.jpg" \
    DEVID_SHOTS=$shots DEVID_TMP=$tmp DEVID_WEB=$web \
    node "$here/console.test.mjs" || fail "the browser test failed (see above)"

# on the server: the console's changes read as the admin token's, sessions were audited
api_as "$A1" GET /api/v1/audit
[ "$status" = 200 ] || fail "audit: $status $(cat body)"
/usr/bin/python3 - body <<'PY' || fail "the audit trail does not name the console's tokens"
import json, re, sys
recs = json.load(open(sys.argv[1]))["records"]
alice = re.compile(r"^token:[0-9]+:alice$")
line1 = re.compile(r"^token:[0-9]+:line1$")
def who(action, obj=None):
    return [r["actor"] for r in recs if r["action"] == action and (obj is None or r["object"] == obj)]
problems = []
for action, obj in (("batch.claim", "ACME/B1"), ("batch.claim", "ACME/B2"), ("batch.claim", "ACME/B3"),
                    ("device.revoke", None)):
    # the quarantined clone is clone detection's revoke, not the console's
    actors = [a for a in who(action, obj) if a != "clone-detection"]
    if not actors or not all(alice.match(a) for a in actors):
        problems.append(f"{action} {obj or ''}: actors {actors}, want token:<id>:alice")
if who("device.revoke").count("clone-detection") != 1:
    problems.append(f"device.revoke: actors {who('device.revoke')}, want one by clone-detection (the quarantine)")
conn = [r["actor"] for r in recs if r["action"].startswith("connector.")]
if not conn or not all(alice.match(a) for a in conn):
    problems.append(f"connector changes: actors {conn}, want token:<id>:alice")
for action, rx, name in (("session.open", alice, "alice"), ("session.open", line1, "line1"),
                         ("session.close", alice, "alice")):
    if not any(rx.match(a) for a in who(action)):
        problems.append(f"no {action} by token:<id>:{name}")
for p in problems:
    print("console: audit:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
note "ok the audit trail names alice for the three claims, the connector and the revoke, clone detection for the quarantine, and the sessions"
api_as "$A1" GET /api/v1/audit/verify
[ "$status" = 200 ] && grep -q '"ok": *true' body || fail "audit chain: $status $(cat body)"
note "ok the audit chain verifies"
note "all console checks passed"
