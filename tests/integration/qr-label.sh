#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# qr-label: the QR label claim.png that `devid vendor mint` writes decodes (with zbarimg, which
# shares no code with devid) to exactly the text of claim.txt, for a short and for the longest
# vendor and batch names, and has the 4-module quiet zone ISO/IEC 18004 asks for.
#
# Usage: sh qr-label.sh DEVID
set -u
me=qr-label
case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"

devid=${1:-}
need_devid "$devid"
need_tool zbarimg zbar-tools
py=/usr/bin/python3
[ -x "$py" ] || skip "$py is missing (Debian package python3)"

make_tmp
# vendor and batch names of the longest length DESIGN.md allows (64): the longest claim text
vendor64=VVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVVV.-09
batch64=BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB.-09
{ [ ${#vendor64} -eq 64 ] && [ ${#batch64} -eq 64 ]; } || fail "test bug: name lengths"

# check_label VENDOR BATCH: mint one chip and decode its label
check_label() {
	v=$tmp/v-$1
	reel=$tmp/reel-$1-$2
	run "$devid" vendor init --dir "$v" --vendor "$1"
	[ "$rc" -eq 0 ] || fail_run "vendor init --vendor $1 exited $rc"
	run "$devid" vendor mint --dir "$v" --batch "$2" --count 1 --keep-keys 0 --out "$reel"
	[ "$rc" -eq 0 ] || fail_run "vendor mint --batch $2 exited $rc"
	[ -s "$reel/claim.png" ] || fail "$reel/claim.png is missing or empty"

	text=$(cat "$reel/claim.txt")
	printf '%s\n' "$text" | grep -Eq "^DEVID1:$1:$2:[A-Z2-7]{26}\$" ||
		fail "claim.txt \"$text\" is not DEVID1:$1:$2:<26 base32 characters>"
	grep -q "^claim code: $text\$" "$tmp/out" ||
		fail_run "mint did not print the code of claim.txt"

	# zbarimg prints the symbol and a newline on stdout; stderr may carry dbus noise
	zbarimg -q --raw "$reel/claim.png" >"$tmp/decoded" 2>/dev/null
	zrc=$?
	[ "$zrc" -eq 0 ] || fail "zbarimg found no QR code in claim.png for $1/$2 (exit $zrc)"
	cmp -s "$tmp/decoded" "$reel/claim.txt" || {
		printf 'claim.txt: %s\nzbarimg:   %s\n' "$text" "$(cat "$tmp/decoded")" >&2
		fail "the QR label of $1/$2 does not decode to claim.txt"
	}

	# geometry: square, whole modules, quiet zone of at least 4 modules on every side
	"$py" - "$reel/claim.png" >"$tmp/geom" <<'EOF' || fail "claim.png of $1/$2: $(cat "$tmp/geom")"
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
if data[:8] != b"\x89PNG\r\n\x1a\n":
    print("not a PNG"); sys.exit(1)
pos, idat, hdr = 8, b"", None
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        hdr = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
w, h, depth, ctype, _, _, interlace = hdr
if (depth, ctype, interlace) != (8, 0, 0):
    # another pixel format is fine for a label; this check reads only 8-bit gray
    print("geometry not checked: bit depth %d, colour type %d" % (depth, ctype)); sys.exit(0)
raw = zlib.decompress(idat)
rows, prev = [], bytearray(w)
for y in range(h):
    f, line = raw[y * (w + 1)], bytearray(raw[y * (w + 1) + 1:(y + 1) * (w + 1)])
    for x in range(w):
        a = line[x - 1] if x else 0
        b, c = prev[x], prev[x - 1] if x else 0
        p = a + b - c
        pred = [0, a, b, (a + b) // 2,
                a if abs(p - a) <= abs(p - b) and abs(p - a) <= abs(p - c)
                else b if abs(p - b) <= abs(p - c) else c][f]
        line[x] = (line[x] + pred) & 0xff
    rows.append(line)
    prev = line
dark = [[v < 128 for v in r] for r in rows]
ys = [y for y in range(h) if any(dark[y])]
xs = [x for x in range(w) if any(dark[y][x] for y in ys)]
top, left = ys[0], xs[0]
run = 0
while dark[top][left + run]:
    run += 1
if w != h or run % 7:
    print("not square (%dx%d) or finder pattern of %d px" % (w, h, run)); sys.exit(1)
module = run // 7
size = (xs[-1] - left + 1) // module
quiet = min(top, left, w - 1 - xs[-1], h - 1 - ys[-1]) // module
if size < 21 or (size - 17) % 4:
    print("%d modules across is no QR version" % size); sys.exit(1)
if quiet < 4:
    print("quiet zone of %d modules, ISO/IEC 18004 asks for 4" % quiet); sys.exit(1)
print("QR version %d, %d px per module, quiet zone %d modules" % ((size - 17) // 4, module, quiet))
EOF
	note "$1/$2 (${#text} characters): decodes to claim.txt; $(cat "$tmp/geom")"
}

check_label ACME B-1
check_label "$vendor64" "$batch64"
