# SPDX-License-Identifier: Apache-2.0
# bench/lib.sh - helpers of bench/run; sourced, never run on its own. POSIX sh + awk.
#
#   now                     seconds since the epoch, with a fraction where date can
#   elapsed T0 T1           T1 - T0, three decimals
#   rate N SECONDS          N / SECONDS, whole units per second
#   openssl_ecdsap256 SECONDS PROCESSES
#                           "sign/s verify/s" of `openssl speed ecdsap256` (-multi when > 1)
#   record NAME RATE LIMIT UNIT [GOAL]
#                           one row of the result table (GOAL 0: shown, not judged)
#   print_table             the rows, aligned, with ratio = rate / limit

# shellcheck shell=sh disable=SC2154 # work and goal are bench/run's

bench_fail() {
	printf 'bench: %s\n' "$*" >&2
	exit 1
}

# progress to stderr, so that stdout is the table alone
say() {
	printf 'bench: %s\n' "$*" >&2
}

now() {
	# %N is GNU date; elsewhere it is printed as it is, and whole seconds have to do
	t=$(date +%s.%N 2>/dev/null)
	case $t in
	*[!0-9.]* | .* | *.) date +%s ;;
	*) printf '%s\n' "$t" ;;
	esac
}

elapsed() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f\n", b - a }'
}

rate() {
	awk -v n="$1" -v s="$2" 'BEGIN { if (s <= 0) exit 1; printf "%.0f\n", n / s }'
}

# openssl_ecdsap256 SECONDS PROCESSES: prints "SIGN VERIFY" per second, summed over the
# processes. The result table's line is
#   " 256 bits ecdsa (nistp256)   0.0000s   0.0000s  71170.4  23960.0"
# (OpenSSL 1.1 writes "256 bit"); with -multi N the same line holds the sum, and each child
# also reports "Got: +F4:<idx>:256:<sign/s>:<verify/s> from <n>" (the -mr machine format).
# Both are read; where both are there they must agree within 5 %, else the children's sum wins.
openssl_ecdsap256() {
	if [ "$2" -gt 1 ]; then
		openssl speed -seconds "$1" -multi "$2" ecdsap256 >"$work/speed.out" 2>"$work/speed.err"
	else
		openssl speed -seconds "$1" ecdsap256 >"$work/speed.out" 2>"$work/speed.err"
	fi || bench_fail "openssl speed ecdsap256 failed: $(tail -n 3 "$work/speed.err")"
	awk -v procs="$2" '
	function num(s) { return s ~ /^[0-9]+(\.[0-9]*)?$/ }
	/ecdsa \(nistp256\)/ && num($(NF - 1)) && num($NF) {
		table_sign = $(NF - 1); table_verify = $NF; table = 1
	}
	/\+F4:[0-9]+:256:/ {
		rec = substr($0, index($0, "+F4:"))
		sub(/[ \t].*/, "", rec)
		if (split(rec, f, ":") >= 5 && num(f[4]) && num(f[5])) {
			multi_sign += f[4]; multi_verify += f[5]; children++
		}
	}
	function near(a, b) { return a > 0 && b > 0 && (a - b) / b < 0.05 && (b - a) / b < 0.05 }
	END {
		if (children > 0 && children != procs) {
			print "expected " procs " children, got " children > "/dev/stderr"; exit 1
		}
		if (table && (!children || (near(table_sign, multi_sign) && near(table_verify, multi_verify))))
			printf "%.0f %.0f\n", table_sign, table_verify
		else if (children)
			printf "%.0f %.0f\n", multi_sign, multi_verify
		else
			exit 1
	}' "$work/speed.out" ||
		bench_fail "cannot read sign/s and verify/s from openssl speed: $(tail -n 3 "$work/speed.out")"
}

# record NAME RATE LIMIT UNIT [GOAL]: GOAL is the ratio this hot path must reach ($goal)
record() {
	printf '%s|%s|%s|%s|%s\n' "$1" "$2" "$3" "$4" "${5:-$goal}" >>"$work/rows"
	say "$1: $2 $4, limit $3"
}

# print_table: the rows with their ratio; a ratio below $goal is marked
print_table() {
	[ -s "$work/rows" ] || bench_fail "no results"
	awk -F'|' '
	{ name[NR] = $1; r[NR] = $2; l[NR] = $3; unit[NR] = $4; g[NR] = $5
	  if (length($1) > w) w = length($1)
	  if (length($4) > uw) uw = length($4) }
	END {
		if (w < 8) w = 8
		if (uw < 10) uw = 10
		printf "%-" w "s  %10s  %10s  %-" uw "s  %6s  %5s  %s\n", "hot path", "rate", "limit",
		    "unit", "ratio", "goal", ""
		for (i = 1; i <= NR; i++) {
			ratio = l[i] > 0 ? r[i] / l[i] : 0
			verdict = ratio > 1.05 ? "above limit?" : g[i] == 0 ? "(no goal)" : \
			    ratio >= g[i] ? "met" : "BELOW"
			# three decimals below 0.1, where a hot path costs many limit operations
			printf "%-" w "s  %10d  %10d  %-" uw "s  %6." (ratio < 0.1 ? 3 : 2) "f  %5." \
			    (g[i] > 0 && g[i] < 0.1 ? 3 : 2) "f  %s\n", name[i], r[i], l[i],
			    unit[i], ratio, g[i], verdict
		}
	}' "$work/rows"
}

# busy_warning: samples /proc/stat for a second and says so when other processes keep the
# CPUs busy (the limits are measured in the same run, but load may come and go between one
# measurement and the next)
busy_warning() {
	[ -r /proc/stat ] || return 0
	a=$(sed -n 's/^cpu  *//p' /proc/stat)
	sleep 1
	b=$(sed -n 's/^cpu  *//p' /proc/stat)
	printf '%s\n%s\n' "$a" "$b" | awk '
	# user nice system idle iowait irq softirq steal ...
	{ idle[NR] = $4 + $5; total[NR] = 0; for (i = 1; i <= NF; i++) total[NR] += $i }
	END {
		t = total[2] - total[1]
		if (t <= 0) exit
		busy = 1 - (idle[2] - idle[1]) / t
		if (busy > 0.25)
			printf "bench: warning: the CPUs were %.0f%% busy before starting: other " \
			    "processes compete, rates and limits will be low and noisy\n", busy * 100
	}' >&2
}

# below_goal: true if some row's ratio is under $goal
below_goal() {
	awk -F'|' '$3 > 0 && $2 / $3 < $5 { found = 1 } END { exit !found }' \
	    "$work/rows"
}

# above_limit: true if some row's rate is more than 5 % above its limit
above_limit() {
	awk -F'|' '$3 > 0 && $2 > $3 * 1.05 { found = 1 } END { exit !found }' "$work/rows"
}
