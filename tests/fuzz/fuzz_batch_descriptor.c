/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_batch_descriptor.c - libFuzzer target for batch_descriptor_parse(), which reads a
 * vendor's batch.json (a flattened JWS whose payload describes the batch).
 *
 * Besides what the sanitizers catch, it aborts when the parser breaks its contract: a failure
 * must leave *out NULL and give a reason; a success must hold only fields that passed their
 * checks (version 1, count in range, names in the claim-code alphabet, lowercase hex hash).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/claim.h"
#include "lib/error.h"
#include "lib/limits.h"
#include "lib/batch_descriptor.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_batch_descriptor: contract broken: %s\n", what);
		abort();
	}
}

static void
check_failure(int rc, const struct batch_descriptor *d, const struct devid_error *e)
{
	expect(rc < 0, "failure code is not negative");
	expect(d == NULL, "*out is not NULL after a failure");
	expect(e->code == rc, "error code differs from the return value");
	expect(memchr(e->msg, '\0', sizeof(e->msg)) != NULL, "message is not NUL-terminated");
	expect(e->msg[0] != '\0', "failure without a message");
}

static void
check_success(const struct batch_descriptor *d)
{
	size_t n;

	expect(d != NULL, "success without a descriptor");
	expect(d->version == 1, "version is not 1");
	expect(d->count >= 1 && d->count <= MAX_BATCH_COUNT, "count out of range");
	n = strnlen(d->vendor, sizeof(d->vendor));
	expect(n < sizeof(d->vendor) && claim_name_valid(d->vendor, n), "vendor not valid");
	n = strnlen(d->batch_id, sizeof(d->batch_id));
	expect(n < sizeof(d->batch_id) && claim_name_valid(d->batch_id, n), "batchId not valid");
	n = strnlen(d->part_number, sizeof(d->part_number));
	expect(n >= 1 && n <= MAX_TEXT_FIELD_LEN, "partNumber length out of range");
	expect(strnlen(d->claim_sha256, sizeof(d->claim_sha256)) == 64 &&
		strspn(d->claim_sha256, "0123456789abcdef") == 64,
	    "claimSha256 is not 64 lowercase hex digits");
	n = strnlen(d->created_at, sizeof(d->created_at));
	expect(n >= 1 && n <= MAX_TIMESTAMP_LEN, "createdAt length out of range");
	expect(d->prot_b64 != NULL && d->payload_b64 != NULL && d->sig_b64 != NULL,
	    "signed members missing");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct batch_descriptor *d = NULL;
	struct devid_error e;
	int rc;

	devid_error_clear(&e);
	rc = batch_descriptor_parse(data, size, &d, &e);
	if (rc == 0)
		check_success(d);
	else
		check_failure(rc, d, &e);
	batch_descriptor_free(d);
	return 0;
}
