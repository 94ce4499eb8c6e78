# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=sh
# swtpm.sh - a throwaway TPM 2.0 (swtpm) for tests; sourced, never run on its own.
#
#   swtpm_available              true if swtpm, swtpm_setup and tpm2-tools are installed
#   swtpm_manufacture DIR [ARG...]
#                                a TPM's state in DIR/state, made by swtpm_setup as a TPM
#                                factory does; ARGs go to swtpm_setup (--create-ek-cert
#                                --config FILE --ecc ...). Without ARGs: a bare TPM 2.0
#   swtpm_start DIR              runs the TPM of DIR on two free ports of 127.0.0.1 and exports
#                                TPM2TOOLS_TCTI and TPM2OPENSSL_TCTI (tpm2-tools and the
#                                tpm2-openssl provider reach it) and SWTPM_TCTI (the same
#                                string); the TPM is started (TPM2_Startup) and ready
#   swtpm_stop                   stops the TPM of swtpm_start (its state stays in DIR)
#
# Nothing here exits or prints on success; each function returns non-zero with the tool's
# output on stderr when something fails.

swtpm_available() {
	command -v swtpm >/dev/null 2>&1 && command -v swtpm_setup >/dev/null 2>&1 &&
	    command -v tpm2_startup >/dev/null 2>&1
}

swtpm_manufacture() {
	swtpm_dir=$1
	shift
	mkdir -p "$swtpm_dir/state" || return 1
	# swtpm_setup reads its defaults from XDG_CONFIG_HOME: keep the caller's home out of it
	XDG_CONFIG_HOME=$swtpm_dir swtpm_setup --tpm2 --tpmstate "$swtpm_dir/state" \
	    --overwrite "$@" >"$swtpm_dir/setup.log" 2>&1 || {
		cat "$swtpm_dir/setup.log" >&2
		return 1
	}
}

swtpm_start() {
	swtpm_dir=$1
	[ -d "$swtpm_dir/state" ] || mkdir -p "$swtpm_dir/state" || return 1
	swtpm_try=0
	while [ $swtpm_try -lt 10 ]; do
		swtpm_try=$((swtpm_try + 1))
		# an even port in 20000-59998 for the commands, the next one for control
		swtpm_port=$(( ($(od -An -N2 -tu2 /dev/urandom) % 20000) * 2 + 20000 ))
		rm -f "$swtpm_dir/swtpm.pid"
		swtpm socket --tpm2 --tpmstate dir="$swtpm_dir/state" \
		    --server type=tcp,port=$swtpm_port,bindaddr=127.0.0.1 \
		    --ctrl type=tcp,port=$((swtpm_port + 1)),bindaddr=127.0.0.1 \
		    --flags not-need-init,startup-clear --pid file="$swtpm_dir/swtpm.pid" \
		    --log file="$swtpm_dir/swtpm.log" --daemon 2>"$swtpm_dir/start.err" || continue
		SWTPM_TCTI="swtpm:host=127.0.0.1,port=$swtpm_port"
		TPM2TOOLS_TCTI=$SWTPM_TCTI
		TPM2OPENSSL_TCTI=$SWTPM_TCTI
		export SWTPM_TCTI TPM2TOOLS_TCTI TPM2OPENSSL_TCTI
		# startup-clear ran already; this proves the TPM answers
		if tpm2_getrandom 8 >/dev/null 2>"$swtpm_dir/start.err"; then
			return 0
		fi
		swtpm_stop
	done
	cat "$swtpm_dir/start.err" "$swtpm_dir/swtpm.log" >&2 2>/dev/null
	return 1
}

swtpm_stop() {
	[ -n "${swtpm_dir:-}" ] && [ -s "$swtpm_dir/swtpm.pid" ] || return 0
	kill "$(cat "$swtpm_dir/swtpm.pid")" 2>/dev/null
	rm -f "$swtpm_dir/swtpm.pid"
}
