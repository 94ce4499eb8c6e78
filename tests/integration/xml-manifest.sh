#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# xml-manifest: the XML form of a manifest (docs/xml-manifest.md), end to end.
#   - `devid vendor mint --format xml` writes manifest.xml (and no manifest.json), which
#     libxml2's own validator (`xmllint --schema`) accepts against schema/manifest.xsd;
#   - JSON -> XML -> JSON gives back the minted manifest.json byte for byte;
#   - `devid vendor verify` gives the same report for the XML and the JSON form of a reel,
#     accepted or with a tampered entry (refused naming the entry, in both forms);
#   - `devid vendor publish` of an XML reel and `devid import` of an XML manifest store the
#     very entries the JSON form carries (the devices' stored entries compared);
#   - hostile XML (internal entity, billion laughs, an external entity and an external DTD
#     naming a FIFO that would block whoever opened it, a network DTD on a local listener
#     that records any connection, XInclude, a wrong namespace) is refused with a clear
#     error, nothing is opened or fetched, and nothing is stored (rows counted).
# Usage: xml-manifest.sh DEVID SCHEMA.xsd
set -u
me=xml-manifest
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

devid=${1:-}
xsd=${2:-}
need_devid "$devid"
[ -f "$xsd" ] || fail "usage: xml-manifest.sh DEVID SCHEMA.xsd"
need_tool xmllint libxml2-utils
need_tool /usr/bin/python3 python3
need_tool timeout coreutils
need_tool mkfifo coreutils
make_tmp
server=""
listener=""
trap '[ -z "$server" ] || kill "$server" 2>/dev/null; [ -z "$listener" ] || kill "$listener" 2>/dev/null; rm -rf "$tmp"' EXIT
cd "$tmp" || fail "cd"
unset DEVID_SERVER DEVID_TOKEN DEVID_CACERT
export DEVID_DB="sqlite:$tmp/devid.db"

# rows: batches, devices, uploads and pages in the database, as "B D U P"
rows() {
	/usr/bin/python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print(" ".join(str(c.execute("SELECT COUNT(*) FROM " + t).fetchone()[0])
    for t in ("batches", "devices", "uploads", "upload_pages")))' "$tmp/devid.db"
}

# stored BATCH: the entries stored for the devices of BATCH, one a line, sorted
stored() {
	/usr/bin/python3 -c 'import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for (e,) in c.execute("SELECT d.entry FROM devices d JOIN batches b ON b.id = d.batch_id "
                      "WHERE b.name = ? ORDER BY d.entry", (sys.argv[2],)):
    print(e)' "$tmp/devid.db" "$1"
}

# entries FILE: the entries of a JSON manifest, compact, one a line, sorted as stored() sorts
entries() {
	/usr/bin/python3 -c 'import json, sys
for e in sorted(json.dumps(e, separators=(",", ":")) for e in json.load(open(sys.argv[1]))):
    print(e)' "$1"
}

# reel_as_xml REEL OUT: a copy of REEL whose manifest is the XML form of its manifest.json
reel_as_xml() {
	mkdir "$2" && cp "$1/batch.json" "$1/claim.txt" "$2/" || fail "copy $1"
	run "$devid" vendor convert "$1/manifest.json" "$2/manifest.xml"
	[ $rc -eq 0 ] || fail_run "convert $1 to XML"
}

verify() {
	run "$devid" vendor verify "$1" --root v/root.pem --signer v/signer.pem --json --quiet
}

# --- mint --format xml, and the schema -----------------------------------------------------
"$devid" vendor init --dir v --vendor ACME >/dev/null || fail "vendor init"
"$devid" vendor init --dir w --vendor OUTSIDE >/dev/null || fail "vendor init (outside)"
run "$devid" vendor mint --dir v --batch X1 --count 7 --out X1 --format xml --quiet
[ $rc -eq 0 ] || fail_run "mint --format xml"
[ -f X1/manifest.xml ] && [ ! -e X1/manifest.json ] ||
	fail "mint --format xml: expected X1/manifest.xml and no manifest.json: $(ls X1)"
run xmllint --noout --schema "$xsd" X1/manifest.xml
[ $rc -eq 0 ] || fail_run "xmllint --schema refuses what mint --format xml wrote"
run "$devid" vendor mint --dir v --batch J1 --count 5 --out J1 --quiet
[ $rc -eq 0 ] || fail_run "mint (JSON)"
run "$devid" vendor mint --dir v --batch J1 --count 5 --out J9 --format yaml
[ $rc -ne 0 ] && grep -q "expected json or xml" err || fail_run "--format yaml was taken"
note "ok mint --format xml writes manifest.xml, valid against schema/manifest.xsd"

# --- round trip ----------------------------------------------------------------------------
run "$devid" vendor convert J1/manifest.json j1.xml
[ $rc -eq 0 ] || fail_run "convert JSON to XML"
run xmllint --noout --schema "$xsd" j1.xml
[ $rc -eq 0 ] || fail_run "xmllint --schema refuses the converted manifest"
run "$devid" vendor convert j1.xml j1.json
[ $rc -eq 0 ] || fail_run "convert XML to JSON"
cmp -s J1/manifest.json j1.json || fail "JSON -> XML -> JSON changed the manifest"
run "$devid" vendor convert j1.xml j1.json
[ $rc -ne 0 ] && grep -q "j1.json" err || fail_run "convert overwrote an existing file"
run "$devid" vendor convert X1/manifest.xml x1.json
[ $rc -eq 0 ] || fail_run "convert the minted XML to JSON"
note "ok JSON -> XML -> JSON is the same bytes"

# --- the same verification for both forms --------------------------------------------------
reel_as_xml J1 J1X
verify J1
[ $rc -eq 0 ] || fail_run "verify J1 (JSON)"
cp out verify-json.out
verify J1X
[ $rc -eq 0 ] || fail_run "verify J1X (XML)"
cmp -s out verify-json.out || fail "verify reports differ: JSON $(cat verify-json.out), XML $(cat out)"
grep -q '"verdict": "ACCEPTED"' out || fail_run "verify J1X is not ACCEPTED"
cp J1X/manifest.xml J1/manifest.xml
verify J1
[ $rc -ne 0 ] && grep -q "both manifest.json and manifest.xml" err ||
	fail_run "a reel with both forms was verified"
rm J1/manifest.xml

# a tampered signature in entry 2, in the JSON form and in the XML form made from it
mkdir T1 && cp J1/batch.json J1/claim.txt T1/ || fail "copy J1"
/usr/bin/python3 -c 'import json, sys
m = json.load(open(sys.argv[1]))
s = m[2]["signature"]
m[2]["signature"] = ("B" if s[0] == "A" else "A") + s[1:]
json.dump(m, open(sys.argv[2], "w"))' J1/manifest.json T1/manifest.json || fail "tamper"
uid2=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[2]["header"]["uniqueId"])' J1/manifest.json)
reel_as_xml T1 T1X
verify T1
[ $rc -ne 0 ] || fail_run "a tampered entry was accepted (JSON)"
cp out tamper-json.out
verify T1X
[ $rc -ne 0 ] || fail_run "a tampered entry was accepted (XML)"
cmp -s out tamper-json.out || fail "tampered: reports differ: JSON $(cat tamper-json.out), XML $(cat out)"
grep -q "entry 2" out && grep -q "$uid2" out || fail_run "the refusal does not name entry 2 ($uid2)"
note "ok vendor verify: the same report for both forms, accepted and with entry 2 tampered"

# --- publish and import of XML -------------------------------------------------------------
"$devid" admin migrate >/dev/null || fail "migrate"
"$devid" admin tenant add ACME --kind vendor >/dev/null || fail "tenant ACME"
"$devid" admin tenant add OEM1 --kind oem >/dev/null || fail "tenant OEM1"
VT=$("$devid" admin token add ACME --role vendor) || fail "token"
A1=$("$devid" admin token add OEM1 --role admin) || fail "token"
"$devid" admin trust add --vendor ACME --root v/root.pem --signer v/signer.pem >/dev/null ||
	fail "trust"
"$devid" admin trust add --tenant OEM1 --root w/root.pem --signer w/signer.pem >/dev/null ||
	fail "trust (OEM1's import trust)"
: >serve.out
"$devid" serve --listen 127.0.0.1:0 >serve.out 2>serve.log &
server=$!
wait_line serve.out 'listening on' "devid serve"
url=$(sed -n 's/.*listening on //p' serve.out)
export DEVID_SERVER="$url"

run "$devid" vendor publish --token "$VT" --page-size 3 X1
[ $rc -eq 0 ] && grep -q '"accepted": 7' out || fail_run "publish of the XML reel X1"
stored X1 >x1.stored
entries x1.json >x1.expected
cmp -s x1.stored x1.expected ||
	fail "X1's stored entries are not the JSON form's: $(wc -l <x1.stored) stored, $(wc -l <x1.expected) expected, $(comm -3 x1.stored x1.expected | wc -l) differ"

run "$devid" vendor mint --dir w --batch W1 --count 4 --out W1 --format xml --quiet
[ $rc -eq 0 ] || fail_run "mint W1 --format xml"
run "$devid" import --token "$A1" --batch W1 --page-size 3 W1/manifest.xml
[ $rc -eq 0 ] && grep -q '"accepted": 4' out || fail_run "import of an XML manifest"
run "$devid" vendor convert W1/manifest.xml w1.json
stored W1 >w1.stored
entries w1.json >w1.expected
cmp -s w1.stored w1.expected || fail "W1's stored entries are not the JSON form's"

# a tampered XML import is refused naming the entry, nothing stored
run "$devid" vendor mint --dir w --batch W2 --count 3 --out W2 --format xml --quiet
[ $rc -eq 0 ] || fail_run "mint W2 --format xml"
mkdir T2 || fail "mkdir T2"
/usr/bin/python3 -c 'import sys
x = open(sys.argv[1]).read()
i = x.index("<signature>", x.index("<entry>", x.index("<entry>") + 1)) + len("<signature>")
x = x[:i] + ("B" if x[i] == "A" else "A") + x[i + 1:]
open(sys.argv[2], "w").write(x)' W2/manifest.xml T2/manifest.xml || fail "tamper XML"
before=$(rows)
run "$devid" import --token "$A1" --batch W2 T2/manifest.xml
[ $rc -ne 0 ] && grep -q "entry 1" out err || fail_run "a tampered XML import was not refused naming entry 1"
[ "$(rows | cut -d' ' -f1,2)" = "$(echo "$before" | cut -d' ' -f1,2)" ] ||
	fail "the refused import stored something: $before -> $(rows)"
note "ok publish and import of XML store the JSON form's entries; a tampered one is refused"

# --- hostile XML ---------------------------------------------------------------------------
mkfifo fifo || fail "mkfifo"
/usr/bin/python3 -c 'import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(5)
open("listener.port", "w").write(str(s.getsockname()[1]))
while True:
    c, _ = s.accept()
    open("listener.hits", "a").write("connection\n")
    c.close()' &
listener=$!
wait_file listener.port "the listener"
lport=$(cat listener.port)
ns='xmlns="urn:devid:manifest:1"'
entry='<entry><payload>eyJ9</payload><protected>eyJ9</protected><header><uniqueId>1</uniqueId></header><signature>c2ln</signature></entry>'
printf '<!DOCTYPE m [<!ENTITY x "eyJ9">]>\n<manifest %s><entry><payload>&x;</payload></entry></manifest>\n' "$ns" >internal.xml
printf '<!DOCTYPE m [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;"><!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;"><!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;"><!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;"><!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;"><!ENTITY i "&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;">]>\n<manifest %s><entry><payload>&i;</payload></entry></manifest>\n' "$ns" >laughs.xml
printf '<!DOCTYPE m [<!ENTITY x SYSTEM "file://%s/fifo">]>\n<manifest %s><entry><payload>&x;</payload></entry></manifest>\n' "$tmp" "$ns" >external.xml
printf '<!DOCTYPE manifest SYSTEM "file://%s/fifo">\n<manifest %s>%s</manifest>\n' "$tmp" "$ns" "$entry" >dtd-file.xml
printf '<!DOCTYPE manifest SYSTEM "http://127.0.0.1:%s/m.dtd">\n<manifest %s>%s</manifest>\n' "$lport" "$ns" "$entry" >dtd-net.xml
printf '<manifest %s xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file://%s/fifo" parse="text"/></manifest>\n' "$ns" "$tmp" >xinclude.xml
printf '<manifest %s>%s&undeclared;</manifest>\n' "$ns" "$entry" >undeclared.xml
printf '<manifest xmlns="urn:other">%s</manifest>\n' "$entry" >namespace.xml
before=$(rows)
for spec in "internal DOCTYPE" "laughs DOCTYPE" "external DOCTYPE" "dtd-file DOCTYPE" \
    "dtd-net DOCTYPE" "xinclude element <include> in namespace" "undeclared undeclared" \
    "namespace urn:other"; do
	set -- $spec
	name=$1
	shift
	run timeout 20 "$devid" import --token "$A1" --batch H1 "$name.xml"
	[ $rc -ne 124 ] || fail "import of $name.xml hung: something opened the FIFO"
	[ $rc -ne 0 ] && grep -q "$name.xml: XML manifest: line [0-9]*: .*$*" err ||
		fail_run "import of hostile $name.xml: expected a refusal naming '$*'"
	mkdir "R-$name" && cp J1/batch.json J1/claim.txt "R-$name/" && cp "$name.xml" "R-$name/manifest.xml" ||
		fail "reel R-$name"
	run timeout 20 "$devid" vendor verify "R-$name" --root v/root.pem --signer v/signer.pem
	[ $rc -ne 124 ] || fail "verify of $name.xml hung: something opened the FIFO"
	[ $rc -ne 0 ] && grep -q "XML manifest: line [0-9]*: .*$*" err ||
		fail_run "verify of hostile $name.xml: expected a refusal naming '$*'"
done
[ "$(rows)" = "$before" ] || fail "hostile XML changed rows (or opened an upload): $before -> $(rows)"
[ ! -e listener.hits ] || fail "the network DTD was fetched: $(cat listener.hits)"
note "ok hostile XML refused, nothing read outside the document, nothing stored"

finish "mint --format xml valid per XSD, round trip, same verification, publish, import, tampering, hostile XML"
