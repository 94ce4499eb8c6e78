# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=sh
# softhsm.sh - a throwaway SoftHSM2 for tests; sourced, never run on its own.
#
#   softhsm_available                 true if softhsm2-util and the module are installed
#   softhsm_setup DIR LABEL SOPIN PIN a private SoftHSM2 under DIR (its own conf and token
#                                     directory) with one initialized token LABEL; exports
#                                     SOFTHSM2_CONF and DEVID_PKCS11_MODULE
#   softhsm_import_key PEM LABEL IDHEX PIN
#                                     imports a PEM private key (any form OpenSSL reads;
#                                     softhsm2-util wants unencrypted PKCS#8) into the token
#                                     of softhsm_setup as object LABEL with CKA_ID IDHEX
#
# Nothing here exits or prints on success; each function returns non-zero with the tool's
# output on stderr when something fails. A C test does the same with setenv, mkdtemp and
# system() (tests/unit/test_p11.c).

SOFTHSM_MODULE=${SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

softhsm_available() {
	command -v softhsm2-util >/dev/null 2>&1 && [ -r "$SOFTHSM_MODULE" ]
}

softhsm_setup() {
	softhsm_dir=$1
	softhsm_label=$2
	mkdir -p "$softhsm_dir/tokens" || return 1
	printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
	    "$softhsm_dir/tokens" >"$softhsm_dir/softhsm2.conf" || return 1
	SOFTHSM2_CONF=$softhsm_dir/softhsm2.conf
	DEVID_PKCS11_MODULE=$SOFTHSM_MODULE
	export SOFTHSM2_CONF DEVID_PKCS11_MODULE
	softhsm2-util --init-token --free --label "$2" --so-pin "$3" --pin "$4" \
	    >"$softhsm_dir/init.log" 2>&1 || {
		cat "$softhsm_dir/init.log" >&2
		return 1
	}
}

softhsm_import_key() {
	: "${softhsm_dir:?softhsm_setup first}"
	openssl pkcs8 -topk8 -nocrypt -in "$1" -out "$softhsm_dir/import.p8" \
	    >"$softhsm_dir/import.log" 2>&1 &&
	    softhsm2-util --import "$softhsm_dir/import.p8" --token "$softhsm_label" \
		--label "$2" --id "$3" --pin "$4" >>"$softhsm_dir/import.log" 2>&1
	softhsm_rc=$?
	rm -f "$softhsm_dir/import.p8"
	[ $softhsm_rc -eq 0 ] || cat "$softhsm_dir/import.log" >&2
	return $softhsm_rc
}
