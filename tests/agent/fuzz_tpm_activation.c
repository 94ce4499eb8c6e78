/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_tpm_activation.c - libFuzzer target for agent_tpm_activation_parse(), which reads
 * devid's answer to tpm/activate (the credential devid-agent tpm-enroll hands to
 * TPM2_ActivateCredential).
 *
 * Besides what the sanitizers catch, it aborts when the parser breaks its contract: a result
 * is one of the documented codes; a failure gives a reason; a success has an id of 32
 * lowercase hex digits and two TPM2Bs within their limits whose sizes are the rest of them,
 * and the same bytes parse the same way again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/internal.h"
#include "devid/agent.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_tpm_activation: contract broken: %s\n", what);
		abort();
	}
}

static int
tpm2b_ok(const uint8_t *p, size_t len, size_t max)
{
	return len >= 2 && len <= max && (size_t)(p[0] << 8 | p[1]) == len - 2;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_tpm_activation a, again;
	struct devid_error e;
	int rc;

	devid_error_clear(&e);
	rc = agent_tpm_activation_parse(data, size, &a, &e);
	expect(rc == 0 || rc == DEVID_EINVAL || rc == DEVID_ELIMIT || rc == DEVID_ENOMEM,
	    "an undocumented result");
	if (rc != 0) {
		expect(e.msg[0] != '\0', "a failure without a reason");
		return 0;
	}
	expect(strlen(a.id) == AGENT_TPM_ACTIVATION_ID_LEN &&
		strspn(a.id, "0123456789abcdef") == AGENT_TPM_ACTIVATION_ID_LEN,
	    "an id that is not 32 lowercase hex digits");
	expect(tpm2b_ok(a.blob, a.blob_len, sizeof(a.blob)), "a credentialBlob that is no TPM2B");
	expect(tpm2b_ok(a.secret, a.secret_len, sizeof(a.secret)),
	    "an encryptedSecret that is no TPM2B");
	expect(agent_tpm_activation_parse(data, size, &again, NULL) == 0 &&
		strcmp(again.id, a.id) == 0 && again.blob_len == a.blob_len &&
		memcmp(again.blob, a.blob, a.blob_len) == 0 && again.secret_len == a.secret_len &&
		memcmp(again.secret, a.secret, a.secret_len) == 0,
	    "not deterministic");
	return 0;
}
