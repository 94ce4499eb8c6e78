/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_manifest.c - libFuzzer target for manifest_parse(), which reads a whole vendor
 * manifest (a JSON array of SignedSecureElement entries) and records each entry that does not
 * parse in a struct manifest_report. The report is also written as JSON, as `devid vendor
 * verify` and the service's ingest do.
 *
 * Besides what the sanitizers catch, it aborts when the parser breaks its contract: a failure
 * leaves *out NULL with a reason; a success has one slot per array element, NULL exactly where
 * the report records a rejection, and the report's counts agree with the slots.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/error.h"
#include "lib/limits.h"
#include "lib/manifest.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_manifest: contract broken: %s\n", what);
		abort();
	}
}

static void
check_success(const struct manifest *m, const struct manifest_report *r)
{
	size_t nnull = 0, want;

	expect(m != NULL, "success without a manifest");
	expect(m->n >= 1 && m->n <= MAX_BATCH_COUNT, "entry count out of range");
	expect(m->entries != NULL, "no entry slots");
	expect(r->total == m->n, "report total differs from the entry count");
	for (size_t i = 0; i < m->n; i++) {
		if (m->entries[i] == NULL)
			nnull++;
		else
			expect(m->entries[i]->cert != NULL && m->entries[i]->json != NULL,
			    "a parsed entry is incomplete");
	}
	expect(r->rejected == nnull, "rejections differ from the entries that did not parse");
	want = r->rejected < MAX_REPORT_ERRORS ? r->rejected : MAX_REPORT_ERRORS;
	expect(r->nrejects == want, "kept rejections differ from the count");
	for (size_t i = 0; i < r->nrejects; i++) {
		const struct manifest_reject *x = &r->rejects[i];

		expect(x->index < m->n && m->entries[x->index] == NULL,
		    "a rejection points at a parsed entry");
		expect(i == 0 || x->index > r->rejects[i - 1].index,
		    "rejections are not in index order");
		expect(
		    memchr(x->message, '\0', sizeof(x->message)) != NULL && x->message[0] != '\0',
		    "a rejection has no message");
		expect(memchr(x->unique_id, '\0', sizeof(x->unique_id)) != NULL,
		    "a rejection's uniqueId is not NUL-terminated");
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest_report r;
	struct manifest *m = NULL;
	struct devid_error e;
	json_t *j;
	int rc;

	memset(&r, 0, sizeof(r));
	devid_error_clear(&e);
	rc = manifest_parse(data, size, &m, &r, &e);
	if (rc == 0) {
		check_success(m, &r);
		j = manifest_report_json(&r);
		expect(j != NULL, "the report cannot be written as JSON");
		expect(json_array_size(json_object_get(j, "errors")) == r.nrejects,
		    "a rejection is missing from the report's JSON");
		json_decref(j);
	} else {
		expect(rc < 0, "failure code is not negative");
		expect(m == NULL, "*out is not NULL after a failure");
		expect(e.code == rc, "error code differs from the return value");
		expect(e.msg[0] != '\0', "failure without a message");
	}
	manifest_report_release(&r);
	manifest_free(m);
	return 0;
}
