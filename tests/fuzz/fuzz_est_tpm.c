/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_est_tpm.c - libFuzzer target for the JSON bodies of tpm/activate and tpm/enroll
 * (est_tpm_body_parse): the first byte's low bit chooses the call, the rest is the body.
 * Aborts when the parser breaks its contract: a refusal gives a reason and leaves the body
 * empty; a success holds every required member of its call, exactly one of ekCertificate and
 * udid for activate, and no member of the other call.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/est.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_est_tpm: contract broken: %s\n", what);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct est_tpm_body empty;
	enum est_endpoint ep;
	struct est_tpm_body b;
	struct devid_error e;
	int rc;

	if (size < 1)
		return 0;
	ep = (data[0] & 1) != 0 ? EST_TPMENROLL : EST_TPMACTIVATE;
	devid_error_clear(&e);
	rc = est_tpm_body_parse(ep, data + 1, size - 1, &b, &e);
	if (rc != 0) {
		expect(e.msg[0] != '\0' && e.code == rc, "a refusal gives a reason");
		expect(memcmp(&b, &empty, sizeof(b)) == 0, "a refusal leaves the body empty");
	} else if (ep == EST_TPMACTIVATE) {
		expect((b.ek_cert != NULL) != (b.udid[0] != '\0'), "one of ekCertificate and udid");
		expect(b.ak_public != NULL && b.key_public != NULL && b.certify_info != NULL &&
			b.certify_signature != NULL && b.csr != NULL,
		    "activate's members");
		expect(b.ak_public_len > 0 && b.csr_len > 0, "members are not empty");
		expect(b.secret == NULL && b.id[0] == '\0', "no member of enroll");
	} else {
		expect(b.id[0] != '\0' && b.secret != NULL && b.secret_len > 0, "enroll's members");
		expect(b.ak_public == NULL && b.ek_cert == NULL && b.udid[0] == '\0',
		    "no member of activate");
	}
	est_tpm_body_release(&b);
	est_tpm_body_release(&b);
	return 0;
}
