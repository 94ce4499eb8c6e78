#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Tenants, tokens and trust (issue 10) through the real binaries, with curl: each hostile case
# and a check that nothing changed.
#   - import before publish: an OEM importing a devid vendor's manifest is refused (403), so
#     is adding that vendor's signer as its own trust; the vendor's later publish succeeds
#     and the claim code binds the batch to the rightful claimer;
#   - an OEM's own import trust admits an outside vendor's manifest into OEM/BATCH, which no
#     other tenant sees; the OEM retires that signer through the API;
#   - a revoked token and an expired token answer 401 and are listed so; token lists carry
#     no secret and no hash; another tenant's token and trust answer 404;
#   - trust add of a CA certificate or of one without digitalSignature is refused (CLI and
#     API), naming the rule;
#   - a removed signer: the next publish is refused naming it; the old batch stays and
#     names its signer;
#   - every change is in the tenant's audit trail, which verifies and holds no secret.
# Usage: admin.sh DEVID sqlite|postgres
me=admin
. "$(dirname "$0")/lib.sh"
devid=${1:-}
backend=${2:-sqlite}
need_devid "$devid"
need_tool curl curl
need_tool openssl openssl
need_tool /usr/bin/python3 python3
make_tmp
servers=""
trap 'for p in $servers; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT

case "$backend" in
sqlite) export DEVID_DB="sqlite:$tmp/devid.db" ;;
postgres)
	[ -n "${DEVID_TEST_PG_URL:-}" ] || skip "DEVID_TEST_PG_URL not set (run under scripts/with-postgres)"
	export DEVID_DB="$DEVID_TEST_PG_URL"
	;;
*) fail "backend is sqlite or postgres" ;;
esac

# api METHOD PATH TOKEN [BODYFILE]: $status and $tmp/body
api() {
	if [ -n "${4:-}" ]; then
		api_curl "$tmp/body" "$1" "$2" -H "Authorization: Bearer $3" \
		    -H 'Content-Type: application/json' --data-binary "@$4"
	else
		api_curl "$tmp/body" "$1" "$2" -H "Authorization: Bearer $3"
	fi
}

expect_status() {
	[ "$status" = "$1" ] || fail "$2: expected HTTP $1, got $status: $(head -c 400 "$tmp/body")"
	note "ok $2 ($status)"
}

# body_has ERE WHAT: the last answer matches
body_has() {
	grep -Eq -- "$1" "$tmp/body" || fail "$2: the answer does not say /$1/: $(head -c 400 "$tmp/body")"
}

# json EXPR [FILE]: a Python expression over the JSON document j (default: the last answer)
json() {
	/usr/bin/python3 -c 'import json,sys; j=json.load(open(sys.argv[2])); print(eval(sys.argv[1]))' \
	    "$1" "${2:-$tmp/body}"
}

# trust_body ROOT SIGNER OUT: {"root":PEM,"signer":PEM}
trust_body() {
	/usr/bin/python3 -c 'import json,sys; print(json.dumps({"root":open(sys.argv[1]).read(),"signer":open(sys.argv[2]).read()}))' \
	    "$1" "$2" >"$3"
}

count_trust() {
	"$devid" admin trust list --json | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["trust"]))'
}

cd "$tmp" || fail "cd"
run "$devid" vendor init --dir v --vendor ACME
[ $rc -eq 0 ] || fail_run "vendor init ACME"
run "$devid" vendor init --dir w --vendor OUTSIDE
[ $rc -eq 0 ] || fail_run "vendor init OUTSIDE"
for b in B1 B2; do
	run "$devid" vendor mint --dir v --batch $b --count 4 --out $b --keep-keys 0 --quiet
	[ $rc -eq 0 ] || fail_run "mint $b"
done
run "$devid" vendor mint --dir w --batch W1 --count 3 --out W1 --keep-keys 0 --quiet
[ $rc -eq 0 ] || fail_run "mint W1"
# a signer under OUTSIDE's root without digitalSignature
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyEncipherment\n' >nods.ext
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout nods.key \
    -subj "/O=OUTSIDE/CN=no digitalSignature" -out nods.csr >/dev/null 2>&1 &&
	openssl x509 -req -in nods.csr -CA w/root.pem -CAkey w/root.key -CAcreateserial -days 2 \
	    -extfile nods.ext -out nods.pem >/dev/null 2>&1 || fail "openssl: the signer without digitalSignature"

"$devid" admin migrate >/dev/null || fail "migrate"
for t in "ACME vendor" "OEM1 oem" "OEM2 oem"; do
	set -- $t
	"$devid" admin tenant add "$1" --kind "$2" >/dev/null || fail "tenant $1"
done
run "$devid" admin tenant list
[ $rc -eq 0 ] && [ "$(grep -Ec '^(ACME|OEM1|OEM2) ' out)" = 3 ] || fail_run "tenant list"
VT=$("$devid" admin token add ACME --role vendor --name publisher) || fail "token"
A1=$("$devid" admin token add OEM1 --role admin --name a1) || fail "token"
A2=$("$devid" admin token add OEM2 --role admin --name a2) || fail "token"
[ "$(printf '%s' "$A1" | wc -l)" = 0 ] && [ "${#A1}" = 43 ] || fail "token add prints only the token: $A1"

# trust add: a CA or a signer without digitalSignature is refused, naming the rule
run "$devid" admin trust add --vendor ACME --root v/root.pem --signer v/root.pem
[ $rc -eq 1 ] && grep -q 'RFC 5280 4.2.1.9: basicConstraints CA:TRUE' err || fail_run "a CA as signer"
run "$devid" admin trust add --tenant OEM1 --root w/root.pem --signer nods.pem
[ $rc -eq 1 ] && grep -q 'RFC 5280 4.2.1.3: keyUsage lacks digitalSignature' err ||
	fail_run "a signer without digitalSignature"
[ "$(count_trust)" = 0 ] || fail "a refused trust add stored something"
note "ok trust add refuses a CA and a signer without digitalSignature, storing nothing"
run "$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem
[ $rc -eq 0 ] || fail_run "trust add ACME"

"$devid" serve --listen 127.0.0.1:0 --threads 2 >"$tmp/s.out" 2>"$tmp/s.log" &
servers="$servers $!"
i=0
while ! grep -q 'listening on' "$tmp/s.out" 2>/dev/null; do
	i=$((i + 1))
	[ $i -lt 100 ] || { cat "$tmp/s.log" >&2; fail "serve did not start"; }
	sleep 0.1
done
url=$(sed -n 's/.*listening on //p' "$tmp/s.out")

# tokens over the API: an admin makes, lists and revokes its tenant's tokens only
printf '{"name":"line-1","role":"operator"}' >tok.json
api POST /api/v1/tokens "$A1" tok.json
expect_status 201 "an admin makes an operator token"
OP1=$(json 'j["token"]')
op1_id=$(json 'j["id"]')
api POST /api/v1/tokens "$OP1" tok.json
expect_status 403 "an operator makes no token"
api GET /api/v1/tokens "$A1"
expect_status 200 "token list"
body_has '"name": *"line-1"' "the list names line-1"
for secret in "$A1" "$OP1" "$A2"; do
	grep -qF "$secret" body && fail "a token's secret is in the list"
	h=$(printf '%s' "$secret" | openssl dgst -sha256 -r | awk '{ print $1 }')
	grep -qF "$h" body && fail "a token's hash is in the list"
done
grep -q '"a2"' body && fail "OEM1's list shows OEM2's token"
note "ok token lists carry no secret, no hash, no other tenant's token"
api GET /api/v1/tokens "$A2"
grep -q 'line-1' body && fail "OEM2 sees OEM1's token"
api DELETE "/api/v1/tokens/$op1_id" "$A2"
expect_status 404 "another tenant's token is not found"
api GET /api/v1/batches "$OP1"
expect_status 200 "the token still works after the refused revoke"
api DELETE "/api/v1/tokens/$op1_id" "$A1"
expect_status 200 "revoke"
api GET /api/v1/batches "$OP1"
expect_status 401 "a revoked token"
run "$devid" admin token list OEM1
[ $rc -eq 0 ] && grep -Eq "^$op1_id +line-1 +operator +revoked " out || fail_run "listed as revoked"
grep -qF "$A1" out && fail "token list shows a secret"

# an expired token
BRIEF=$("$devid" admin token add OEM1 --role operator --name brief --expires 2s) || fail "token add --expires"
api GET /api/v1/batches "$BRIEF"
expect_status 200 "a token before its expiry"
sleep 3
api GET /api/v1/batches "$BRIEF"
expect_status 401 "an expired token"
run "$devid" admin token list OEM1
grep -Eq '^[0-9]+ +brief +[a-z]+ +expired ' out || fail_run "listed as expired"
"$devid" admin token list OEM1 --json >tokens.json || fail "token list --json"
[ "$(json '[t["lastUsedAt"] is not None for t in j["tokens"] if t["name"] == "a1"]' tokens.json)" = "[True]" ] ||
	fail "a1's last use is not recorded: $(cat tokens.json)"
run "$devid" admin token revoke OEM1 brief
[ $rc -eq 0 ] || fail_run "token revoke by name"
run "$devid" admin token revoke OEM2 brief
[ $rc -eq 1 ] && grep -q 'no token named "brief"' err || fail_run "revoking another tenant's token by name"

# import before publish: refused; the vendor's publish then succeeds; the code binds
api POST "/api/v1/imports?batch=B1" "$A1" B1/manifest.json
expect_status 403 "an OEM imports a devid vendor's manifest before its publish"
body_has 'devid vendor ACME' "the refusal names the vendor"
trust_body v/root.pem v/signer.pem acme-trust.json
api POST /api/v1/trust "$A1" acme-trust.json
expect_status 403 "an OEM adds a devid vendor's signer as its own import trust"
[ "$(count_trust)" = 1 ] || fail "the refused trust was stored"
printf '{"descriptor":%s,"manifest":%s}' "$(cat B1/batch.json)" "$(cat B1/manifest.json)" >b1.json
api POST /api/v1/vendor/batches "$VT" b1.json
expect_status 201 "the vendor publishes B1 afterwards"
printf '{"code":"%s"}' "$(cat B1/claim.txt)" >c1.json
api POST /api/v1/claims "$A2" c1.json
expect_status 200 "the rightful claimer claims with the code"
body_has '"claimed": *true' "bound"
api GET /api/v1/batches/ACME/B1 "$A2"
expect_status 200 "B1 is OEM2's"
[ "$(json 'j["signer"]["sha256"]')" = "$(openssl x509 -in v/signer.pem -outform DER | openssl dgst -sha256 -r | awk '{ print $1 }')" ] ||
	fail "B1 does not name its signer: $(cat body)"
api GET /api/v1/batches/ACME/B1 "$A1"
expect_status 404 "the importer has nothing of B1"

# an OEM's own import trust for a vendor outside devid
api POST "/api/v1/imports?batch=W1" "$A1" W1/manifest.json
expect_status 400 "no import without the tenant's own trust"
body_has 'not trusted' "the refusal says why"
trust_body w/root.pem w/root.pem ca-trust.json
api POST /api/v1/trust "$A1" ca-trust.json
expect_status 400 "a CA as import signer"
body_has '4.2.1.9' "names the rule"
trust_body w/root.pem nods.pem nods-trust.json
api POST /api/v1/trust "$A1" nods-trust.json
expect_status 400 "an import signer without digitalSignature"
body_has '4.2.1.3' "names the rule"
trust_body w/root.pem w/signer.pem w-trust.json
api POST /api/v1/trust "$A1" w-trust.json
expect_status 201 "OEM1 trusts OUTSIDE's signer for its imports"
w_id=$(json 'j["id"]')
api GET /api/v1/trust "$A2"
expect_status 200 "OEM2's trust"
[ "$(json 'len(j["trust"])')" = 0 ] || fail "OEM2 sees OEM1's trust: $(cat body)"
api DELETE "/api/v1/trust/$w_id" "$A2"
expect_status 404 "another tenant's trust is not found"
api POST "/api/v1/imports?batch=W1" "$A1" W1/manifest.json
expect_status 201 "import under the tenant's own trust"
api GET /api/v1/batches/OEM1/W1 "$A1"
expect_status 200 "the import lives in OEM1/W1"
[ "$(json 'j["source"]')" = import ] && [ "$(json 'j["signer"]["id"]')" = "$w_id" ] ||
	fail "OEM1/W1: $(cat body)"
api GET /api/v1/batches/OEM1/W1 "$A2"
expect_status 404 "no other tenant sees the import"
api DELETE "/api/v1/trust/$w_id" "$A1"
expect_status 200 "OEM1 retires its signer"
[ "$(json 'type(j["removedAt"]).__name__')" = str ] || fail "the retired signer: $(cat "$tmp/body")"

# a removed signer: its next manifest is refused; the old batch stays and names it
acme_id=$("$devid" admin trust list --vendor ACME --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["trust"][0]["id"])')
run "$devid" admin trust remove "$acme_id"
[ $rc -eq 0 ] || fail_run "trust remove"
printf '{"descriptor":%s,"manifest":%s}' "$(cat B2/batch.json)" "$(cat B2/manifest.json)" >b2.json
api POST /api/v1/vendor/batches "$VT" b2.json
expect_status 400 "a removed signer's publish"
body_has 'was removed from trust' "the refusal says so"
body_has 'ACME Manifest Signer' "and names the signer"
printf '{"code":"%s"}' "$(cat B2/claim.txt)" >c2.json
api POST /api/v1/claims "$A2" c2.json
expect_status 404 "nothing of B2 was stored"
api GET /api/v1/batches/ACME/B1 "$A2"
expect_status 200 "B1 stays"
[ "$(json 'type(j["signer"]["removedAt"]).__name__')" = str ] || fail "B1's signer is not shown removed: $(cat body)"
api GET /api/v1/batches "$A2"
body_has 'ACME Manifest Signer' "the batch list names the signer"

# the audit trail: every change, no secret, the chains verify
api GET /api/v1/audit "$A1"
expect_status 200 "OEM1's audit"
for action in tenant.add token.add token.revoke trust.add batch.import; do
	grep -q "\"$action\"" body || fail "no $action in OEM1's audit: $(head -c 600 body)"
done
grep -q "\"actor\": *\"token:[0-9]*:a1\"" body || fail "the audit does not name the token a1"
for secret in "$A1" "$OP1" "$BRIEF"; do
	grep -qF "$secret" body && fail "a secret is in the audit trail"
done
for t in OEM1 OEM2 ACME; do
	run "$devid" admin audit verify $t
	[ $rc -eq 0 ] || fail_run "audit verify $t"
done
case "$backend" in
sqlite) /usr/bin/python3 - "${DEVID_DB#sqlite:}" ACME <<'PY' || fail "ACME's chain lacks trust.add or trust.remove"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
acts = {r[0] for r in c.execute("SELECT action FROM audit a JOIN tenants t ON t.id = a.tenant_id WHERE t.name = ?", (sys.argv[2],))}
assert {"trust.add", "trust.remove", "tenant.add", "batch.publish"} <= acts, acts
PY
	;;
esac
note "ok every change is audited in the affected tenant's chain, without a secret"
note "all admin checks passed on $backend"
