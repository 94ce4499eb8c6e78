/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_manifest_entry.c - libFuzzer target for manifest_entry_parse_bytes(), the structural
 * parse of one SignedSecureElement entry as received from a vendor.
 *
 * Besides what the sanitizers catch, it aborts when the parser breaks its contract: a failure
 * must leave *out NULL and give a reason; a success must hold a birth certificate, a UDID and
 * a compact copy of the entry that parses again to the same chip.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/error.h"
#include "lib/limits.h"
#include "lib/manifest.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_manifest_entry: contract broken: %s\n", what);
		abort();
	}
}

static void
check_failure(int rc, const struct manifest_entry *m, const struct devid_error *e)
{
	expect(rc < 0, "failure code is not negative");
	expect(m == NULL, "*out is not NULL after a failure");
	expect(e->code == rc, "error code differs from the return value");
	expect(memchr(e->msg, '\0', sizeof(e->msg)) != NULL, "message is not NUL-terminated");
	expect(e->msg[0] != '\0', "failure without a message");
}

static void
check_success(const struct manifest_entry *m)
{
	struct manifest_entry *again = NULL;
	struct devid_error e;
	size_t uid_len, json_len;

	expect(m != NULL, "success without an entry");
	uid_len = strnlen(m->unique_id, sizeof(m->unique_id));
	expect(uid_len >= 1 && uid_len <= MAX_SERIAL_LEN, "uniqueId length out of range");
	expect(strnlen(m->group_id, sizeof(m->group_id)) <= MAX_NAME_LEN, "groupId too long");
	expect(strnlen(m->udid, sizeof(m->udid)) == UDID_HEX_LEN, "UDID is not full length");
	expect(m->cert != NULL, "no birth certificate");
	expect(m->chain != NULL, "no chain stack");
	expect(m->jwk_xy_len == 64 || m->jwk_xy_len == 96 ||
		(m->tpm && m->jwk_xy_len == 0 && m->jwk_n_len >= 1 &&
		    m->jwk_n_len <= EK_RSA_BYTES && m->jwk_e_len >= 1 &&
		    m->jwk_e_len <= EK_RSA_E_BYTES),
	    "JWK: not x||y of P-256/P-384, nor a TPM entry's RSA n and e");
	expect(m->prot_b64 != NULL && m->payload_b64 != NULL && m->sig_b64 != NULL,
	    "signed members missing");
	expect(m->json != NULL, "no compact copy");

	/* The stored copy is what devid keeps; it must describe the same chip. */
	json_len = strlen(m->json);
	if (json_len > MAX_ENTRY_SIZE)
		return;
	devid_error_clear(&e);
	expect(manifest_entry_parse_bytes((const uint8_t *)m->json, json_len, &again, &e) == 0,
	    "the compact copy does not parse again");
	expect(strcmp(again->unique_id, m->unique_id) == 0, "uniqueId changed in the copy");
	expect(strcmp(again->udid, m->udid) == 0, "UDID changed in the copy");
	expect(strcmp(again->prot_b64, m->prot_b64) == 0 &&
		strcmp(again->payload_b64, m->payload_b64) == 0 &&
		strcmp(again->sig_b64, m->sig_b64) == 0,
	    "signed members changed in the copy");
	manifest_entry_free(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest_entry *m = NULL;
	struct devid_error e;
	int rc;

	devid_error_clear(&e);
	rc = manifest_entry_parse_bytes(data, size, &m, &e);
	if (rc == 0)
		check_success(m);
	else
		check_failure(rc, m, &e);
	manifest_entry_free(m);
	return 0;
}
