#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# The API additions the web console needs (docs/console.md, "API the console adds"), with curl
# against a real devid serve on the database given (sqlite or postgres): the claim's batch
# fields; batch state and device counts after a revoke and a transfer; device search by UDID
# and serial prefix, a malformed q refused; the device view's birth certificate compared
# with `openssl x509`, its clouds after a webhook push to devid gateway (and the job's
# outcomes by device), its operational certificates after an EST enrollment (revoked, with
# its reason, and in the tenant's CRL); connector tests against devid gateway (ok, wrong
# secret, closed port) and cirrent's 409; a connector read and deleted; audit/verify intact
# and broken after a row is edited; operators refused what the console does not show them.
# Usage: console-api.sh DEVID sqlite|postgres
me=console-api
. "$(dirname "$0")/lib.sh"
devid=${1:-}
backend=${2:-sqlite}
need_devid "$devid"
need_tool curl curl
need_tool openssl openssl
need_tool /usr/bin/python3 python3
make_tmp
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd"
secret="gateway-secret-0123456789abcdef"

case "$backend" in
sqlite) export DEVID_DB="sqlite:$tmp/devid.db" ;;
postgres)
	[ -n "${DEVID_TEST_PG_URL:-}" ] || skip "DEVID_TEST_PG_URL not set (run under scripts/with-postgres)"
	export DEVID_DB="$DEVID_TEST_PG_URL"
	need_tool psql postgresql-client
	;;
*) fail "backend is sqlite or postgres" ;;
esac

wait_for() { # FILE PATTERN WHAT
	i=0
	until grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 150 ] || fail "$3 did not start: $(cat "$1" "$1.log" 2>/dev/null | tail -5)"
		sleep 0.1
	done
}

py() { # EXPR over the last answer (j): fails the check when it is not true
	/usr/bin/python3 -c 'import json,re,sys; j=json.load(open("body")); sys.exit(0 if eval(sys.argv[1]) else 1)' "$1"
}
expect() { # STATUS WHAT [PYTHON-EXPR]
	if [ "$status" != "$1" ]; then
		check_failed "$2: HTTP $status, want $1: $(head -c 400 body)"
	elif [ -n "${3:-}" ] && ! py "$3"; then
		check_failed "$2: $3 does not hold for $(head -c 600 body)"
	else
		note "ok $2"
	fi
}

# --- a vendor, two OEMs, a CA for EST, devid serve and devid gateway ---------------------
"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "vendor init"
"$devid" vendor mint --dir v --batch B1 --count 6 --out B1 --keep-keys 1 --quiet >/dev/null || fail "mint B1"
"$devid" vendor mint --dir v --batch B2 --count 3 --out B2 --quiet >/dev/null || fail "mint B2"
"$devid" admin migrate >/dev/null || fail "migrate"
"$devid" admin tenant add ACME --kind vendor >/dev/null || fail "tenant"
"$devid" admin tenant add OEM1 --kind oem >/dev/null || fail "tenant"
"$devid" admin tenant add OEM2 --kind oem >/dev/null || fail "tenant"
VT=$("$devid" admin token add ACME --role vendor) || fail "token"
A1=$("$devid" admin token add OEM1 --role admin) || fail "token"
OP1=$("$devid" admin token add OEM1 --role operator) || fail "token"
A2=$("$devid" admin token add OEM2 --role admin) || fail "token"
"$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem >/dev/null || fail "trust"
"$devid" admin ca init --tenant OEM1 --key-file "$tmp/ca.key" >/dev/null 2>&1 || fail "ca init"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 -keyout tls.key -out tls.pem >/dev/null 2>&1 || fail "TLS cert"
"$devid" admin secrets-key init "file:$tmp/secrets.key" >/dev/null || fail "secrets-key init"
"$devid" serve --listen 127.0.0.1:0 --device-listen 127.0.0.1:0 --tls-cert tls.pem --tls-key tls.key \
    --secrets-key "file:$tmp/secrets.key" >serve.out 2>serve.log &
pids="$pids $!"
wait_for serve.out 'EST on' "devid serve"
url=$(sed -n 's/.*listening on //p' serve.out)
est_addr=$(sed -n 's|.*EST on https://\([^/ ]*\).*|\1|p' serve.out)
export DEVID_SERVER=$url DEVID_CACERT="$tmp/tls.pem"
for b in B1 B2; do
	DEVID_TOKEN=$VT "$devid" vendor publish $b >/dev/null || fail "publish $b"
done
"$devid" gateway --listen 127.0.0.1:0 --tls-cert tls.pem --tls-key tls.key --trust v/root.pem \
    --admin-listen 127.0.0.1:0 --secret "$secret" --db "$tmp/gateway.db" >gw.out 2>gw.log &
pids="$pids $!"
wait_for gw.out 'admin on' "devid gateway"
gw_admin=$(sed -n 's|.*admin on http://\([^ ]*\).*|\1|p' gw.out)
# api_as TOKEN METHOD PATH [BODY]: $status and ./body (the API is on TLS, as EST needs it)
api_as() {
	if [ -n "${4:-}" ]; then
		api_curl body "$2" "$3" --cacert tls.pem -H "Authorization: Bearer $1" \
		    -H 'Content-Type: application/json' --data-binary "$4"
	else
		api_curl body "$2" "$3" --cacert tls.pem -H "Authorization: Bearer $1"
	fi
}
api() { api_as "$A1" "$@"; }

# --- claim: the batch in the answer --------------------------------------------------------
api_as "$OP1" POST /api/v1/claims "{\"code\":\"$(cat B1/claim.txt)\"}"
expect 200 "an operator claims B1, the answer names the batch" \
    'j=={"batch":"ACME/B1","claimed":True,"vendor":"ACME","name":"B1","partNumber":j["partNumber"],"count":6} and j["partNumber"]!=""'
api POST /api/v1/claims "{\"code\":\"$(cat B1/claim.txt)\"}"
expect 200 "a repeat claim answers the batch too" 'j["claimed"] is False and j["count"]==6 and j["batch"]=="ACME/B1"'
api POST /api/v1/claims "{\"code\":\"$(cat B2/claim.txt)\"}"
expect 200 "claim B2" 'j["name"]=="B2" and j["count"]==3'

# --- batches: state and device counts --------------------------------------------------------
api GET /api/v1/batches
expect 200 "batches list state and counts" \
    '[(b["batch"],b["state"],b["devices"]) for b in j["batches"]]==[("B1","claimed",{"active":6,"revoked":0}),("B2","claimed",{"active":3,"revoked":0})]'
api GET "/api/v1/devices?batch=ACME/B1"
udids=$(/usr/bin/python3 -c 'import json; print(" ".join(sorted(d["udid"] for d in json.load(open("body"))["devices"])))')
chip=$(ls B1/chips/*.key | sed 's|.*/||; s|\.key$||')
other=$(printf '%s\n' $udids | grep -v "$chip" | head -1)
api POST "/api/v1/devices/$other/revoke" '{"reason":"keyCompromise"}'
expect 200 "revoke one device of B1"
api GET /api/v1/batches/ACME/B1
expect 200 "B1 after a revoke: 5 active, 1 revoked" 'j["state"]=="claimed" and j["devices"]=={"active":5,"revoked":1}'
api GET /api/v1/batches
expect 200 "the list agrees" '[b["devices"] for b in j["batches"] if b["batch"]=="B1"]==[{"active":5,"revoked":1}]'
api POST /api/v1/batches/ACME/B2/transfer
expect 200 "transfer B2"
tcode=$(/usr/bin/python3 -c 'import json; print(json.load(open("body"))["code"])')
api GET /api/v1/batches/ACME/B2
expect 200 "B2 in transfer" 'j["state"]=="transfer" and j["devices"]=={"active":3,"revoked":0}'
api GET /api/v1/batches
expect 200 "the list shows the transfer" '[b["state"] for b in j["batches"] if b["batch"]=="B2"]==["transfer"]'
api_as "$A2" POST /api/v1/claims "{\"code\":\"$tcode\"}"
expect 200 "OEM2 claims B2 with the transfer code" 'j["claimed"] is True and j["batch"]=="ACME/B2"'
api_as "$A2" GET /api/v1/batches/ACME/B2
expect 200 "B2 is OEM2's, claimed again" 'j["state"]=="claimed" and j["devices"]=={"active":3,"revoked":0}'

# --- device search -----------------------------------------------------------------------------
api GET "/api/v1/devices/$chip"
expect 200 "the device view"
dserial=$(/usr/bin/python3 -c 'import json; print(json.load(open("body"))["serial"])')
[ -n "$dserial" ] || check_failed "no serial in the device view"
pre=$(printf '%s' "$chip" | cut -c1-6 | tr a-f A-F)
api GET "/api/v1/devices?q=$pre"
expect 200 "q= a UDID prefix in capitals" "sorted(d['udid'] for d in j['devices'])==[u for u in '''$udids'''.split() if u.startswith('$pre'.lower())]"
spre=$(printf '%s' "$dserial" | cut -c1-$((${#dserial} - 1)))
sq=$(/usr/bin/python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$dserial")
api GET "/api/v1/devices?q=$sq"
expect 200 "q= a whole chip serial" "[d['udid'] for d in j['devices']]==['$chip']"
spq=$(/usr/bin/python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$spre")
api GET "/api/v1/devices?q=$spq&limit=1000"
expect 200 "q= a serial prefix finds the device" "'$chip' in [d['udid'] for d in j['devices']] and all(d['serial'].startswith('''$spre''') or d['udid'].startswith('''$spre'''.lower()) for d in j['devices'])"
api GET "/api/v1/devices?q=ffffffffffffffffzz"
expect 200 "q= matching nothing" 'j["devices"]==[]'
api GET "/api/v1/devices?q=%27%25"
expect 200 "q= with SQL and LIKE characters matches nothing" 'j["devices"]==[]'
api GET "/api/v1/devices?q=%C3%A9t%C3%A9"
expect 400 "q= not printable ASCII" 'j["message"].startswith("q:")'
api GET "/api/v1/devices?q=$(/usr/bin/python3 -c 'print("a"*65)')"
expect 400 "q= too long" 'j["message"].startswith("q:")'
api_as "$A2" GET "/api/v1/devices?q=$pre"
expect 200 "another tenant's search finds none of OEM1's devices" 'j["devices"]==[]'

# --- the device view: birth certificate -------------------------------------------------------
api GET "/api/v1/devices/$chip"
cp body dev.json
cert="B1/chips/$chip.pem"
subj=$(openssl x509 -in "$cert" -noout -subject -nameopt RFC2253 | sed 's/^subject=//')
iss=$(openssl x509 -in "$cert" -noout -issuer -nameopt RFC2253 | sed 's/^issuer=//')
ser=$(openssl x509 -in "$cert" -noout -serial | sed 's/^serial=//')
nb=$(openssl x509 -in "$cert" -noout -startdate | sed 's/^notBefore=//')
na=$(openssl x509 -in "$cert" -noout -enddate | sed 's/^notAfter=//')
fp=$(openssl x509 -in "$cert" -outform DER | openssl dgst -sha256 | awk '{ print $NF }')
curve=$(openssl x509 -in "$cert" -noout -text | sed -n 's/.*NIST CURVE: *//p')
/usr/bin/python3 - "$subj" "$iss" "$ser" "$nb" "$na" "$fp" "$curve" <<'PY' || check_failed "birthCertificate differs from openssl x509: $(cat dev.json)"
import json, sys, time
b = json.load(open("dev.json"))["birthCertificate"]
subj, iss, ser, nb, na, fp, curve = sys.argv[1:]
t = lambda s: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.strptime(s.replace("  ", " "), "%b %d %H:%M:%S %Y GMT"))
want = {"subject": subj, "issuer": iss, "serial": b["serial"], "notBefore": t(nb), "notAfter": t(na),
        "keyType": "EC " + curve, "sha256": fp}
assert int(b["serial"], 16) == int(ser, 16), (b["serial"], ser)
assert b == want, (b, want)
PY
note "ok birthCertificate matches openssl x509"

# --- clouds: a webhook push to devid gateway ---------------------------------------------------
api POST /api/v1/connectors "{\"name\":\"GW\",\"type\":\"webhook\",\"mode\":\"manual\",\"config\":{\"url\":\"http://$gw_admin/devid/events\",\"secret\":\"$secret\"}}"
expect 201 "a webhook connector to devid gateway"
api POST /api/v1/provision "{\"connector\":\"GW\",\"devices\":[\"$chip\"]}"
expect 202 "push the device"
i=0
until api GET "/api/v1/devices/$chip" && py 'any(c["status"]=="ok" for c in j["clouds"])'; do
	i=$((i + 1))
	[ $i -lt 150 ] || { check_failed "no ok outcome in clouds: $(cat body)"; break; }
	sleep 0.1
done
expect 200 "clouds after the push" \
    'j["clouds"][0]["connector"]=="GW" and j["clouds"][0]["type"]=="webhook" and j["clouds"][0]["action"]=="add" and j["clouds"][0]["status"]=="ok" and isinstance(j["clouds"][0]["job"],int) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", j["clouds"][0]["at"]) is not None and j["clouds"][0]["message"] is None'
gw_job=$(/usr/bin/python3 -c 'import json; print(json.load(open("body"))["clouds"][0]["job"])')
api GET "/api/v1/jobs/$gw_job/devices"
expect 200 "the job's outcomes by device" \
    "j['job']==$gw_job and [(d['udid'],d['status']) for d in j['devices']]==[('$chip','ok')] and j['next'] is None"
api POST /api/v1/connectors "{\"name\":\"SHUT\",\"type\":\"webhook\",\"mode\":\"manual\",\"config\":{\"url\":\"http://127.0.0.1:9/\",\"secret\":\"$secret\"}}"
expect 201 "a webhook connector to a closed port"
api POST /api/v1/provision "{\"connector\":\"SHUT\",\"devices\":[\"$chip\"]}"
expect 202 "push to the closed port"
i=0
until api GET "/api/v1/devices/$chip" && py 'any(c["connector"]=="SHUT" and c["status"]=="failed" for c in j["clouds"])'; do
	i=$((i + 1))
	[ $i -lt 150 ] || { check_failed "no failed outcome for SHUT: $(cat body)"; break; }
	sleep 0.1
done
expect 200 "a failed push is newest first, with its message" \
    'j["clouds"][0]["connector"]=="SHUT" and j["clouds"][0]["status"]=="failed" and j["clouds"][0]["message"]!="" and [c["connector"] for c in j["clouds"]]==["SHUT","GW"]'
api_as "$A2" GET "/api/v1/devices/$chip"
expect 404 "another tenant's device stays 404"

# --- certificates: an EST enrollment, then a revoke ---------------------------------------------
openssl req -new -key "B1/chips/$chip.key" -subj "/CN=$chip" -outform DER 2>/dev/null | base64 >csr.b64 || fail "csr"
st=$(curl -sS --cacert tls.pem --cert "$cert" --key "B1/chips/$chip.key" -H 'Content-Type: application/pkcs10' \
    --data-binary @csr.b64 -o est.b64 -w '%{http_code}' "https://$est_addr/.well-known/est/OEM1/simpleenroll")
[ "$st" = 200 ] || fail "EST enrollment: $st $(cat est.b64)"
base64 -d <est.b64 | openssl pkcs7 -inform DER -print_certs -out ldevid.pem 2>/dev/null || fail "EST answer"
lser=$(openssl x509 -in ldevid.pem -noout -serial | sed 's/^serial=//')
lna=$(openssl x509 -in ldevid.pem -noout -enddate | sed 's/^notAfter=//')
api GET "/api/v1/devices/$chip"
expect 200 "certificates after an enrollment" \
    "len(j['certificates'])==1 and int(j['certificates'][0]['serial'],16)==int('$lser',16) and j['certificates'][0]['notBefore']<j['certificates'][0]['notAfter'] and 'revokedAt' not in j['certificates'][0]"
/usr/bin/python3 -c 'import json,sys,time; c=json.load(open("body"))["certificates"][0]; sys.exit(c["notAfter"]!=time.strftime("%Y-%m-%dT%H:%M:%SZ",time.strptime(sys.argv[1].replace("  "," "),"%b %d %H:%M:%S %Y GMT")))' "$lna" ||
	check_failed "certificate notAfter differs from openssl x509"
api_as "$A2" GET "/api/v1/devices/$other"
expect 404 "a device of another tenant's batch is 404"
api POST "/api/v1/devices/$chip/revoke" '{"reason":"superseded"}'
expect 200 "revoke the enrolled device: the answer has the revoked certificate" \
    'j["certificates"][0]["reason"]=="superseded" and j["certificates"][0]["revokedAt"]>=j["certificates"][0]["notBefore"]'
api_curl crl.der GET /api/v1/tenants/OEM1/crl --cacert tls.pem
if [ "$status" = 200 ] && [ "$ctype" = application/pkix-crl ] &&
	openssl crl -inform DER -in crl.der -noout -text 2>/dev/null |
	    grep -Eqi "Serial Number: 0*$(printf '%s' "$lser" | sed 's/^0*//')\$"; then
	note "ok the tenant's CRL, without a token, lists the revoked certificate"
else
	check_failed "GET /api/v1/tenants/OEM1/crl: HTTP $status, $ctype, not a CRL listing $lser"
fi
# generation 1 by number is the same CRL; a generation the tenant never had is 404
api_curl crl1.der GET /api/v1/tenants/OEM1/crl/1 --cacert tls.pem
[ "$status" = 200 ] && cmp -s crl.der crl1.der ||
	check_failed "GET /api/v1/tenants/OEM1/crl/1: HTTP $status, not the CRL of /crl"
api_curl crl9.der GET /api/v1/tenants/OEM1/crl/9 --cacert tls.pem
[ "$status" = 404 ] || check_failed "GET /api/v1/tenants/OEM1/crl/9: HTTP $status, want 404"

# --- connector tests ----------------------------------------------------------------------------
api POST /api/v1/connectors/GW/test
expect 200 "test against devid gateway" 'j["ok"] is True and "200" in j["message"]'
grep -q 'gateway event test' gw.log || check_failed "the gateway did not log the test event"
api POST /api/v1/connectors "{\"name\":\"WRONG\",\"type\":\"webhook\",\"mode\":\"manual\",\"config\":{\"url\":\"http://$gw_admin/devid/events\",\"secret\":\"not-the-gateway-secret-0123\"}}"
expect 201 "a webhook connector with a wrong secret"
api POST /api/v1/connectors/WRONG/test
expect 200 "the gateway refuses a wrong HMAC" \
    'j["ok"] is False and "401" in j["message"] and "Signature" in j["message"] and "not-the-gateway" not in j["message"]'
# a PUT that leaves the secret out keeps the stored one (the console never gets it back)
api PUT /api/v1/connectors/WRONG "{\"type\":\"webhook\",\"mode\":\"manual\",\"config\":{\"url\":\"http://$gw_admin/devid/events\"}}"
expect 200 "PUT without the secret"
api POST /api/v1/connectors/WRONG/test
expect 200 "the stored (wrong) secret was kept" 'j["ok"] is False and "401" in j["message"]'
api PUT /api/v1/connectors/WRONG "{\"type\":\"webhook\",\"mode\":\"manual\",\"config\":{\"url\":\"http://$gw_admin/devid/events\",\"secret\":\"$secret\"}}"
expect 200 "PUT with the right secret"
api PUT /api/v1/connectors/WRONG "{\"type\":\"webhook\",\"mode\":\"manual\",\"config\":{\"url\":\"http://$gw_admin/devid/events\"}}"
expect 200 "PUT without the secret again"
api POST /api/v1/connectors/WRONG/test
expect 200 "a new secret replaces the stored one and is kept in turn" 'j["ok"] is True'
api PUT /api/v1/connectors/WRONG '{"type":"cirrent","mode":"manual","config":{"url":"http://127.0.0.1:9/"}}'
expect 200 "a change of type starts from the new config"
api PUT /api/v1/connectors/WRONG "{\"type\":\"webhook\",\"mode\":\"manual\",\"config\":{\"url\":\"http://$gw_admin/devid/events\"}}"
expect 400 "no secret is kept across types" 'j["message"].find("secret")>=0'
api POST /api/v1/connectors/SHUT/test
expect 200 "a closed port" 'j["ok"] is False and j["message"]!=""'
api POST /api/v1/connectors '{"name":"CIR","type":"cirrent","mode":"manual","config":{"url":"http://127.0.0.1:9/"}}'
expect 201 "a cirrent connector"
api POST /api/v1/connectors/CIR/test
expect 409 "cirrent has no test call" 'j["message"]=="the cirrent contract has no test call"'
api POST /api/v1/connectors/NOPE/test
expect 404 "test of a missing connector"
api_as "$A2" POST /api/v1/connectors/GW/test
expect 404 "test of another tenant's connector"
api GET /api/v1/connectors/CIR
expect 200 "read a connector" 'j["name"]=="CIR" and j["type"]=="cirrent"'
api DELETE /api/v1/connectors/CIR
expect 200 "delete a connector" 'j=={"deleted":True}'
api GET /api/v1/connectors/CIR
expect 404 "a deleted connector is gone"

# --- operators: 403 on what the console does not show them --------------------------------------
api_as "$OP1" POST /api/v1/connectors/GW/test
expect 403 "an operator cannot test a connector"
api_as "$OP1" GET /api/v1/connectors
expect 403 "an operator cannot list connectors"
api_as "$OP1" GET /api/v1/connectors/GW
expect 403 "an operator cannot read a connector"
api_as "$OP1" POST /api/v1/connectors '{"name":"X","type":"webhook","mode":"manual","config":{}}'
expect 403 "an operator cannot create a connector"
api_as "$OP1" DELETE /api/v1/connectors/GW
expect 403 "an operator cannot delete a connector"
api_as "$OP1" GET /api/v1/audit
expect 403 "an operator cannot read the audit trail"
api_as "$OP1" GET /api/v1/audit/verify
expect 403 "an operator cannot verify the audit trail"
api_as "$OP1" GET "/api/v1/batches/ACME/B1/manifest?format=pem"
expect 403 "an operator cannot download a manifest"
api_as "$OP1" POST /api/v1/provision '{"connector":"GW","batch":"ACME/B1"}'
expect 403 "an operator cannot provision"
api_as "$OP1" POST /api/v1/batches/ACME/B1/transfer
expect 403 "an operator cannot transfer"
api_as "$OP1" POST /api/v1/batches/ACME/B1/release
expect 403 "an operator cannot release"
api_as "$OP1" POST "/api/v1/devices/$other/revoke"
expect 403 "an operator cannot revoke"
api_as "$OP1" GET /api/v1/batches/ACME/B1
expect 200 "an operator reads batches" 'j["devices"]=={"active":4,"revoked":2}'
api_as "$OP1" GET "/api/v1/devices?q=$pre"
expect 200 "an operator searches devices"

# --- audit/verify ---------------------------------------------------------------------------------
api GET /api/v1/audit/verify
expect 200 "the audit chain verifies" 'j["ok"] is True and j["records"]>=5 and len(j["head"])==64 and set(j)=={"ok","records","head"}'
records=$(/usr/bin/python3 -c 'import json; print(json.load(open("body"))["records"])')
head=$(/usr/bin/python3 -c 'import json; print(json.load(open("body"))["head"])')
api GET "/api/v1/audit?after=$((records - 1))"
expect 200 "head is the last record's hash" "j['records'][-1]['hash']=='$head' and j['records'][-1]['seq']==$records"
api_as "$A2" GET /api/v1/audit/verify
expect 200 "OEM2's own chain" "j['ok'] is True and j['head']!='$head'"
case "$backend" in
sqlite) /usr/bin/python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("UPDATE audit SET actor=? WHERE seq=2 AND tenant_id=(SELECT id FROM tenants WHERE name=?)", ("mallory","OEM1")); c.commit()' "$tmp/devid.db" ;;
postgres) psql -q "$DEVID_DB" -c "UPDATE audit SET actor='mallory' WHERE seq=2 AND tenant_id=(SELECT id FROM tenants WHERE name='OEM1')" >/dev/null ;;
esac
api GET /api/v1/audit/verify
expect 200 "an edited record breaks the chain" \
    "j['ok'] is False and j['brokenAt']==2 and j['records']==1 and 'record 2' in j['message']"
api_as "$A2" GET /api/v1/audit/verify
expect 200 "OEM2's chain is untouched" 'j["ok"] is True'
finish "console API on $backend"
