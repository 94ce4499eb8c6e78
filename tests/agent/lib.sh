# SPDX-License-Identifier: Apache-2.0
# lib.sh - what the agent's integration scripts share, after tests/integration/lib.sh and
# make_tmp; sourced, never run on its own. Servers a script starts go into $pids; they are
# stopped, and $tmp removed, however the script ends.
#
#   stop_servers                  kills and reaps every process in $pids
#   expect STATUS WHAT ERE CMD... CMD exits with STATUS and its stderr matches ERE (if not
#                                 empty); else check_failed_run (the script goes on)

# shellcheck shell=sh disable=SC2154 # tmp, rc: make_tmp's and run's
pids=
stop_servers() {
	for p in $pids; do
		kill "$p" 2>/dev/null
	done
	for p in $pids; do
		wait "$p" 2>/dev/null
	done
	pids=
}
trap 'stop_servers; rm -rf "$tmp"' EXIT

# expect STATUS WHAT ERE CMD...: CMD exits with STATUS and stderr matches ERE (if not empty)
expect() {
	want=$1
	what=$2
	ere=$3
	shift 3
	run "$@"
	if [ "$rc" -ne "$want" ]; then
		check_failed_run "$what: exit status $rc, expected $want"
	elif [ -n "$ere" ] && ! grep -Eq -- "$ere" "$tmp/err"; then
		check_failed_run "$what: stderr does not say /$ere/"
	fi
}
