#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# cli-errors: every devid command's usage error is one line naming the bad word, exit 2
# (no server needed); `devid vendor` says clearly what is wrong, on stderr, with a non-zero exit, and
# leaves nothing behind; it refuses to overwrite keys or a reel; --help exits 0; key files are
# mode 0600; a reel signed by a signer that is not trusted is rejected with exit status 1.
#
# Usage: sh cli-errors.sh DEVID
set -u
me=cli-errors
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

devid=${1:-}
need_devid "$devid"
make_tmp
v=$tmp/vendor
reel=$tmp/reel
new=$tmp/new-reel # never to be created by a failing command

# expect_error WHAT ERE CMD...: CMD exits non-zero (and not by a signal or a sanitizer's
# abort), says what is wrong (ERE) in the first line of stderr (the usage text that may follow
# names every option, so it cannot count), and does not create $new. A failure is
# counted and the script goes on, so one run shows every CLI problem.
expect_error() {
	what=$1
	want=$2
	shift 2
	run "$@"
	if [ "$rc" -eq 0 ]; then
		check_failed_run "$what: exit status 0, expected an error"
	elif [ "$rc" -ge 126 ]; then
		check_failed_run "$what: exit status $rc (crash or signal)"
	elif ! sed -n 1p "$tmp/err" | grep -Eq -- "$want"; then
		check_failed_run "$what: the first line of stderr does not say /$want/"
	fi
	if [ -e "$new" ]; then
		check_failed "$what: created $new although it failed"
		rm -rf "$new"
	fi
}

# expect_ok WHAT CMD...: CMD exits 0 (a failure is counted; the script goes on)
expect_ok() {
	what=$1
	shift
	run "$@"
	[ "$rc" -eq 0 ] || check_failed_run "$what: exit status $rc, expected 0"
}

# --- help -----------------------------------------------------------------------------
expect_ok 'devid --help' "$devid" --help
grep -q 'vendor' "$tmp/out" || check_failed_run "devid --help does not mention the vendor command"
for sub in '' init mint verify; do
	# shellcheck disable=SC2086 # $sub is one word or nothing
	expect_ok "devid vendor $sub --help" "$devid" vendor $sub --help
	grep -q '^usage: devid vendor init' "$tmp/out" ||
		check_failed_run "devid vendor $sub --help does not print the usage on stdout"
done

# --- init --------------------------------------------------------------------------------
expect_error 'init without --vendor' '--vendor' \
    "$devid" vendor init --dir "$new"
expect_error 'init without --dir' '--dir' "$devid" vendor init --vendor ACME
expect_error 'init with a lowercase vendor name' 'vendor name "Acme".*\[A-Z0-9.-\]' \
    "$devid" vendor init --dir "$new" --vendor Acme
expect_error 'init with a 65-character vendor name' 'must match' \
    "$devid" vendor init --dir "$new" \
    --vendor VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV
expect_error 'init with an empty vendor name' 'must match' \
    "$devid" vendor init --dir "$new" --vendor ''
expect_error 'init with an unknown option' "unknown option '--colour'" \
    "$devid" vendor init --dir "$new" --vendor ACME --colour red

expect_ok 'vendor init' "$devid" vendor init --dir "$v" --vendor ACME
for f in root issuing signer; do
	{ [ -s "$v/$f.pem" ] && [ -s "$v/$f.key" ]; } ||
		fail "vendor init did not write $f.pem and $f.key"
	mode=$(file_mode "$v/$f.key")
	[ "$mode" = "-rw-------" ] || check_failed "$v/$f.key has mode $mode, expected -rw------- (0600)"
done

# the names DESIGN.md allows are [A-Z0-9.-]{1,64}: the longest one must work too
name64=VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV.-09
expect_ok 'init with a 64-character vendor name' \
    "$devid" vendor init --dir "$tmp/v64" --vendor "$name64"

# init refuses to replace keys, and leaves them as they were
sums_before=$(cat "$v"/*.key "$v"/*.pem | cksum)
expect_error 'init into a vendor directory' 'already exists.*refusing' \
    "$devid" vendor init --dir "$v" --vendor ACME
[ "$(cat "$v"/*.key "$v"/*.pem | cksum)" = "$sums_before" ] ||
	check_failed "a refused vendor init changed the vendor keys or certificates"
# one key left over from an interrupted init is enough to refuse
{ mkdir "$tmp/partial" && cp "$v/signer.key" "$tmp/partial/"; } || fail "cannot set up partial"
expect_error 'init where one key exists' 'signer.key already exists' \
    "$devid" vendor init --dir "$tmp/partial" --vendor ACME
cmp -s "$v/signer.key" "$tmp/partial/signer.key" ||
	check_failed "a refused vendor init replaced a key"

# --- mint --------------------------------------------------------------------------------
mint() {
	"$devid" vendor mint --dir "$v" --batch B-1 --out "$new" "$@"
}
expect_error 'mint without --count' '--count' mint
expect_error 'mint without --out' '--out' \
    "$devid" vendor mint --dir "$v" --batch B-1 --count 1
expect_error 'mint without --batch' '--batch' \
    "$devid" vendor mint --dir "$v" --count 1 --out "$new"
expect_error 'mint without --dir' '--dir' \
    "$devid" vendor mint --batch B-1 --count 1 --out "$new"
expect_error 'mint --count 0' '--count "0"' mint --count 0
expect_error 'mint --count abc' '--count "abc"' mint --count abc
expect_error 'mint --count -1' '--count "-1"' mint --count -1
expect_error 'mint --count 12x' '--count "12x"' mint --count 12x
expect_error 'mint --count 1000001' '--count "1000001"' mint --count 1000001
expect_error 'mint --count 18446744073709551617' '--count' mint --count 18446744073709551617
expect_error 'mint --keep-keys abc' '--keep-keys "abc"' mint --count 1 --keep-keys abc
expect_error 'mint --threads 0' '--threads "0"' mint --count 1 --threads 0
expect_error 'mint with a lowercase batch id' 'batch "b-1".*\[A-Z0-9.-\]' \
    "$devid" vendor mint --dir "$v" --batch b-1 --count 1 --out "$new"
expect_error 'mint with a batch id holding a colon' 'batch "B:1"' \
    "$devid" vendor mint --dir "$v" --batch B:1 --count 1 --out "$new"
expect_error 'mint with a lowercase part number' 'part' \
    "$devid" vendor mint --dir "$v" --batch B-1 --count 1 --part se1 --out "$new"
expect_error 'mint from a directory without a vendor PKI' 'root.pem' \
    "$devid" vendor mint --dir "$tmp/nothing" --batch B-1 --count 1 --out "$new"
expect_error 'mint with an extra argument' 'unexpected argument "extra"' mint --count 1 extra

expect_ok 'mint' "$devid" vendor mint --dir "$v" --batch B-1 --count 4 --keep-keys 2 \
    --out "$reel" --quiet
nkeys=0
for key in "$reel"/chips/*.key; do
	[ -e "$key" ] || break
	nkeys=$((nkeys + 1))
	mode=$(file_mode "$key")
	[ "$mode" = "-rw-------" ] ||
		check_failed "${key#"$tmp"/} has mode $mode, expected -rw------- (0600)"
done
[ "$nkeys" -eq 2 ] || check_failed "--keep-keys 2 kept $nkeys chip keys"

# minting again into the same OUT refuses and leaves the reel as it was
sums_before=$(cat "$reel/manifest.json" "$reel/batch.json" "$reel/claim.txt" | cksum)
expect_error 'mint into a reel that has a manifest.json' 'exists and is not an empty directory' \
    "$devid" vendor mint --dir "$v" --batch B-2 --count 1 --out "$reel"
[ "$(cat "$reel/manifest.json" "$reel/batch.json" "$reel/claim.txt" | cksum)" = \
    "$sums_before" ] || check_failed "a refused mint changed the existing reel"

# --- verify ------------------------------------------------------------------------------
expect_error 'verify without --signer' '--signer' \
    "$devid" vendor verify "$reel" --root "$v/root.pem"
expect_error 'verify without OUT' 'OUT' \
    "$devid" vendor verify --root "$v/root.pem" --signer "$v/signer.pem"
expect_error 'verify of a directory that is no reel' 'batch.json' \
    "$devid" vendor verify "$tmp/nothing" --root "$v/root.pem" --signer "$v/signer.pem"
expect_ok 'verify' "$devid" vendor verify "$reel" --root "$v/root.pem" --signer "$v/signer.pem"
grep -q ': 4 entries, 4 accepted, 0 rejected: ACCEPTED$' "$tmp/out" ||
	check_failed_run "verify of a good reel does not say 4 accepted"

# a second vendor's signer and root: every entry and the descriptor are rejected for the signer
expect_ok 'second vendor init' "$devid" vendor init --dir "$tmp/other" --vendor OTHER
run "$devid" vendor verify "$reel" --root "$tmp/other/root.pem" --signer "$tmp/other/signer.pem"
[ "$rc" -eq 1 ] ||
	check_failed_run "verify with another vendor's signer: exit status $rc, expected 1"
n=$(grep -c '^rejected: entry [0-9]*: .*signer not trusted' "$tmp/out")
[ "$n" -eq 4 ] ||
	check_failed_run "verify with another vendor's signer: $n of 4 entries name the signer"
grep -q '^rejected batch: .*signer not trusted' "$tmp/out" ||
	check_failed_run "verify with another vendor's signer: the batch descriptor's signer is not named"
grep -q ': 4 entries, 0 accepted, 4 rejected: REJECTED$' "$tmp/out" ||
	check_failed_run "verify with another vendor's signer does not say REJECTED"
run "$devid" vendor verify "$reel" --root "$tmp/other/root.pem" \
    --signer "$tmp/other/signer.pem" --json
[ "$rc" -eq 1 ] ||
	check_failed_run "verify --json with another vendor's signer: exit $rc, expected 1"
# accepted and rejected are counts of entries; the verdict is separate
grep -q '"accepted": 0,' "$tmp/out" ||
	check_failed_run "verify --json does not count 0 accepted entries"
grep -q '"rejected": 4,' "$tmp/out" ||
	check_failed_run "verify --json does not count 4 rejected entries"
grep -q '"REJECTED"' "$tmp/out" || check_failed_run "verify --json does not say REJECTED"
grep -q 'signer not trusted' "$tmp/out" || check_failed_run "verify --json does not name the signer"

# the vendor's root with another vendor's signer: that signer cannot be trusted at all
run "$devid" vendor verify "$reel" --root "$v/root.pem" --signer "$tmp/other/signer.pem"
[ "$rc" -eq 1 ] || check_failed_run "verify with a signer outside the root: exit $rc, expected 1"
grep -Eq 'signer.*(does not chain|not trusted)' "$tmp/out" "$tmp/err" ||
	check_failed_run "verify with a signer outside the vendor root does not say so"

# --- every command's usage error: exit 2, one line on stderr naming the bad word -------------
# usage_error WHAT ERE CMD...: exit status 2, exactly one line on stderr, matching ERE and
# ending with the pointer to --help; nothing on stdout. No server is needed: usage errors are
# found before any request (DEVID_SERVER points nowhere to make sure).
usage_error() {
	what=$1
	want=$2
	shift 2
	run env DEVID_SERVER=http://127.0.0.1:1 DEVID_TOKEN=t "$@"
	if [ "$rc" -ne 2 ]; then
		check_failed_run "$what: exit status $rc, expected 2"
	elif [ "$(wc -l <"$tmp/err")" -ne 1 ]; then
		check_failed_run "$what: $(wc -l <"$tmp/err") lines on stderr, expected one"
	elif ! grep -Eq -- "$want" "$tmp/err"; then
		check_failed_run "$what: stderr does not say /$want/"
	elif ! grep -Eq -- "; see 'devid[a-z -]* --help'\$" "$tmp/err"; then
		check_failed_run "$what: stderr does not point to --help"
	elif [ -s "$tmp/out" ]; then
		check_failed_run "$what: printed on stdout"
	fi
}
udid=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
usage_error 'a misspelt command' "^devid: unknown command 'batchs' \\(did you mean 'batches'\\?\\)" \
    "$devid" batchs
usage_error 'an unknown command' "^devid: unknown command 'frobnicate';" "$devid" frobnicate
usage_error 'an unknown global option' "unknown option '--colour' before the command" \
    "$devid" --colour red batches
usage_error 'a global option without its value' "option '--server' needs a value" \
    "$devid" --server
usage_error 'an unknown option' "^devid batches: unknown option '--colour'" \
    "$devid" batches --colour red
usage_error 'an option of another command' "^devid batches: option '--reason' does not apply" \
    "$devid" batches --reason x
usage_error 'an option without its value' "^devid devices: option '--batch' needs a value" \
    "$devid" devices --batch
usage_error '--output yaml' "--output 'yaml': expected json or table" "$devid" -o yaml batches
usage_error 'claim without a code' '^devid claim: missing the claim code' "$devid" claim
usage_error 'claim with two codes' "unexpected argument 'B'" "$devid" claim A B
usage_error 'batches with an argument' "^devid batches: unexpected argument 'x'" "$devid" batches x
usage_error 'devices --limit 0' "--limit '0': expected 1 to 1000" "$devid" devices --limit 0
usage_error 'device without a name' '^devid device: missing the device' "$devid" device
usage_error 'device with a space' "'a b' is neither a UDID" "$devid" device 'a b'
usage_error 'revoke without a device' '^devid revoke: missing the device' "$devid" revoke
usage_error 'manifest of no batch' "'acme' is no batch: name it as VENDOR/BATCH" \
    "$devid" manifest acme
usage_error 'manifest --format xml' "--format 'xml': expected json, pem or csv" \
    "$devid" manifest ACME/B1 --format xml
usage_error 'transfer without a batch' '^devid transfer: missing the batch' "$devid" transfer
usage_error 'release of two batches' "unexpected argument 'A/C'" "$devid" release A/B A/C
usage_error 'import without --batch' '^devid import: needs --batch NAME' "$devid" import f.json
usage_error 'import --batch lowercase' "--batch 'w1'" "$devid" import --batch w1 f.json
usage_error 'audit of an unknown verb' "^devid audit: unknown subcommand 'verfy' \\(did you mean 'verify'\\?\\)" \
    "$devid" audit verfy
usage_error 'audit list --after x' "--after 'x'" "$devid" audit list --after x
usage_error 'audit verify with an argument' "^devid audit verify: unexpected argument 'x'" \
    "$devid" audit verify x
usage_error 'jobs devices without an id' '^devid jobs devices: missing the job ID' \
    "$devid" jobs devices
usage_error 'jobs devices x' "'x' is no job id" "$devid" jobs devices x
usage_error 'jobs list --status' "^devid jobs list: option '--status' does not apply" \
    "$devid" jobs list --status ok
usage_error 'connectors of an unknown verb' "unknown subcommand 'ad' \\(did you mean 'add'\\?\\)" \
    "$devid" connectors ad GW
usage_error 'connectors show without a name' "^devid connectors show: missing the connector's NAME" \
    "$devid" connectors show
usage_error 'connectors add without --type' '^devid connectors add: needs --type' \
    "$devid" connectors add GW --url http://x
usage_error 'connectors put without --mode' '^devid connectors put: needs --type and --mode' \
    "$devid" connectors put GW --type webhook
usage_error 'connectors add --mode sometimes' "--mode 'sometimes'" \
    "$devid" connectors add GW --type webhook --mode sometimes
usage_error 'connectors add --rate 0' "--rate '0'" "$devid" connectors add GW --type webhook --rate 0
usage_error 'connectors delete --url' "option '--url' does not apply" \
    "$devid" connectors delete GW --url http://x
usage_error 'connectors show of a bad name' "'a/b' is no connector name" "$devid" connectors show a/b
usage_error 'provision without --connector' '^devid provision: needs --connector' \
    "$devid" provision --batch ACME/B1
usage_error 'provision of nothing' 'which devices' "$devid" provision --connector GW
usage_error 'provision of both' 'not both' "$devid" provision --connector GW --batch A/B "$udid"
usage_error 'provision of a bad UDID' "'xyz' is no UDID" "$devid" provision --connector GW xyz
usage_error 'quota set without --max' '^devid quota set: needs --max' "$devid" quota set
usage_error 'quota set --max many' "--max 'many'" "$devid" quota set --max many
usage_error 'quota of an unknown verb' "unknown subcommand 'sett' \\(did you mean 'set'\\?\\)" \
    "$devid" quota sett
usage_error 'clone-policy set of nothing' '^devid clone-policy set: needs --mode' \
    "$devid" clone-policy set
usage_error 'clone-policy show --mode' "option '--mode' does not apply" \
    "$devid" clone-policy show --mode flag
usage_error 'clone-policy of an unknown verb' "unknown subcommand 'sett' \\(did you mean 'set'\\?\\)" \
    "$devid" clone-policy sett
usage_error 'suspicions --after x' "--after 'x': expected a suspicion's id" "$devid" suspicions --after x
usage_error 'tokens add without --role' '^devid tokens add: needs --name N and --role' \
    "$devid" tokens add --name x
usage_error 'tokens revoke without a token' '^devid tokens revoke: missing the token' \
    "$devid" tokens revoke
usage_error 'tokens revoke of a bad name' "'a b' is no token id or name" "$devid" tokens revoke 'a b'
usage_error 'trust add without --signer' '^devid trust add: needs --root ROOT.pem and --signer' \
    "$devid" trust add --root r.pem
usage_error 'trust remove x' "'x' is no trust id" "$devid" trust remove x
usage_error 'vendor publish without a reel' '^devid vendor publish: missing the reel' \
    "$devid" vendor publish
usage_error 'vendor of an unknown subcommand' "unknown subcommand \"mnt\" \\(did you mean 'mint'\\?\\)" \
    "$devid" vendor mnt
usage_error 'vendor verify -o yaml' "--output 'yaml'" "$devid" vendor verify -o yaml x
usage_error 'admin of a misspelt command' "^devid admin: unknown command 'tokn' \\(did you mean 'token'\\?\\)" \
    "$devid" admin --db "sqlite:$tmp/never.db" tokn list
usage_error 'admin with an unknown option' "^devid admin: unknown option '--colour'" \
    "$devid" admin --db "sqlite:$tmp/never.db" --colour red migrate
usage_error 'admin ca rotate without a key' \
    '^devid admin: ca rotate needs --tenant and one of --pkcs11 or --key-file' \
    "$devid" admin --db "sqlite:$tmp/never.db" ca rotate --tenant OEM1
usage_error 'admin ca rotate --validity-days' '^devid admin: ca rotate keeps the CA' \
    "$devid" admin --db "sqlite:$tmp/never.db" ca rotate --tenant OEM1 --key-file k --validity-days 9
[ -e "$tmp/never.db" ] && check_failed "an admin usage error created the database"
usage_error 'serve with an unknown option' "^devid serve: unknown option '--colour'" \
    "$devid" serve --db "sqlite:$tmp/never.db" --colour red
usage_error 'serve with a value out of range' "^devid serve: --threads is 1 to 64" \
    "$devid" serve --db "sqlite:$tmp/never.db" --threads 0
usage_error 'serve with an argument' "^devid serve: 'extra': serve takes no arguments" \
    "$devid" serve --db "sqlite:$tmp/never.db" extra
usage_error 'serve with a bad configuration file' "^devid serve: $tmp/bad.conf:1: db is outside a section" \
    sh -c "printf 'db = x\\n' >'$tmp/bad.conf' && exec \"\$0\" serve --config '$tmp/bad.conf'" "$devid"
usage_error 'gateway with an unknown option' "^devid gateway: unknown option '--colour'" \
    "$devid" gateway --colour red
usage_error 'gateway without what it needs' "^devid gateway: --tls-cert, --tls-key, --trust or --ldevid-ca, --db" \
    "$devid" gateway --listen 127.0.0.1:0
[ -e "$tmp/never.db" ] && check_failed "a serve usage error created the database"

# --help of every command: its usage on stdout, exit 0
for c in claim batches devices device manifest revoke transfer release import audit jobs \
    connectors provision quota clone-policy suspicions tokens trust 'vendor publish' admin serve \
    gateway; do
	# shellcheck disable=SC2086 # $c is one or two words
	run "$devid" $c --help
	[ "$rc" -eq 0 ] && grep -q "^usage: devid" "$tmp/out" ||
		check_failed_run "devid $c --help does not print its usage on stdout with exit 0"
done
# the global options of the help work before the command as well as after
run "$devid" --server http://127.0.0.1:1 --token t -o json batches
grep -q 'connection refused' "$tmp/err" ||
	check_failed_run "devid --server URL --token T batches did not try the server"

finish "usage errors, refusals, key modes, --help and untrusted signers"
