#!/bin/sh
# cli-errors: `devid vendor` says clearly what is wrong, on stderr, with a non-zero exit, and
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

finish "usage errors, refusals, key modes, --help and untrusted signers"
