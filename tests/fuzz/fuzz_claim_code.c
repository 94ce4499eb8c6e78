/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_claim_code.c - libFuzzer target for claim_code_parse(), which reads the text a user
 * types or scans from a label: DEVID1:<VENDOR>:<BATCH>:<CODE>.
 *
 * Besides what the sanitizers catch, it aborts when the parser breaks its contract: a failure
 * gives a reason; a success keeps the text exactly as given (it is what gets hashed), and
 * its parts put back together give that text again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/claim.h"
#include "lib/error.h"
#include "lib/limits.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_claim_code: contract broken: %s\n", what);
		abort();
	}
}

static void
check_success(const uint8_t *data, size_t size, const struct claim_code *c)
{
	char joined[MAX_CLAIM_TEXT_LEN + 2];
	size_t vn, bn;
	int n;

	vn = strnlen(c->vendor, sizeof(c->vendor));
	bn = strnlen(c->batch, sizeof(c->batch));
	expect(vn < sizeof(c->vendor) && claim_name_valid(c->vendor, vn), "vendor not valid");
	expect(bn < sizeof(c->batch) && claim_name_valid(c->batch, bn), "batch not valid");
	expect(strnlen(c->code, sizeof(c->code)) == CLAIM_CODE_B32_LEN, "code length wrong");
	expect(strnlen(c->text, sizeof(c->text)) == size && memcmp(c->text, data, size) == 0,
	    "text differs from the input");
	n = snprintf(
	    joined, sizeof(joined), "%s:%s:%s:%s", CLAIM_CODE_PREFIX, c->vendor, c->batch, c->code);
	expect(n >= 0 && (size_t)n == size && memcmp(joined, data, size) == 0,
	    "the parts do not give the text back");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct claim_code c;
	struct devid_error e;
	int rc;

	devid_error_clear(&e);
	rc = claim_code_parse(data, size, &c, &e);
	if (rc == 0) {
		check_success(data, size, &c);
	} else {
		expect(rc < 0, "failure code is not negative");
		expect(e.code == rc, "error code differs from the return value");
		expect(e.msg[0] != '\0', "failure without a message");
	}
	return 0;
}
