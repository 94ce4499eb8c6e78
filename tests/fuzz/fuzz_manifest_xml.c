/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_manifest_xml.c - libFuzzer target for the XML form of a manifest (manifest_xml.h),
 * the factory feed as received.
 *
 * Besides what the sanitizers catch, it aborts when the reader breaks its contract: a
 * failure must give a negative code and a reason; a success must give a JSON array of as
 * many entries as it counted, each of which turns back into the same XML; and the document
 * fed in two pieces must give the same result as fed at once.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/dynbuf.h"
#include "lib/error.h"
#include "lib/limits.h"
#include "lib/manifest_xml.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_manifest_xml: contract broken: %s\n", what);
		abort();
	}
}

/* Feeds data in two pieces split at cut; the result's code, and its JSON in out. */
static int
feed_split(const uint8_t *data, size_t size, size_t cut, struct dynbuf *out, uint64_t *entries)
{
	struct manifest_xml *x = manifest_xml_new();
	struct devid_error e;
	int rc;

	expect(x != NULL, "out of memory");
	devid_error_clear(&e);
	rc = manifest_xml_feed(x, data, cut, false, out, &e);
	if (rc == 0)
		rc = manifest_xml_feed(x, data + cut, size - cut, true, out, &e);
	*entries = manifest_xml_entries(x);
	manifest_xml_free(x);
	return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dynbuf out, split, back;
	struct devid_error e;
	json_t *root = NULL;
	uint64_t entries = 0;
	int rc, rc2;

	dynbuf_init(&out, (size_t)64 << 20);
	dynbuf_init(&split, (size_t)64 << 20);
	dynbuf_init(&back, (size_t)64 << 20);
	devid_error_clear(&e);
	rc = manifest_xml_to_json(data, size, &out, &e);
	if (rc != 0) {
		expect(rc < 0, "failure code is not negative");
		expect(e.code == rc, "error code differs from the return value");
		expect(memchr(e.msg, '\0', sizeof(e.msg)) != NULL, "message is not NUL-terminated");
		expect(e.msg[0] != '\0', "failure without a message");
	} else {
		root = json_loadb((const char *)out.p, out.len, JSON_REJECT_DUPLICATES, NULL);
		expect(json_is_array(root) && json_array_size(root) >= 1,
		    "success without a JSON array of entries");
		expect(dynbuf_addstr(&back, MANIFEST_XML_HEAD) == 0, "out of memory");
		for (size_t i = 0; i < json_array_size(root); i++)
			expect(manifest_xml_entry(json_array_get(root, i), i, &back, &e) == 0,
			    "an entry read from XML has no XML form");
		expect(dynbuf_addstr(&back, MANIFEST_XML_TAIL) == 0, "out of memory");
		dynbuf_reset(&split);
		expect(manifest_xml_to_json(back.p, back.len, &split, &e) == 0 &&
			split.len == out.len && memcmp(split.p, out.p, out.len) == 0,
		    "the XML written back does not read as the same JSON");
		dynbuf_reset(&split);
	}
	rc2 = feed_split(data, size, size > 0 ? data[0] % (size + 1) : 0, &split, &entries);
	expect((rc == 0) == (rc2 == 0), "fed in two pieces, the verdict differs");
	if (rc == 0) {
		expect(entries == json_array_size(root), "entry count differs from the array");
		expect(split.len == out.len && memcmp(split.p, out.p, out.len) == 0,
		    "fed in two pieces, the JSON differs");
	}
	json_decref(root);
	dynbuf_release(&out);
	dynbuf_release(&split);
	dynbuf_release(&back);
	return 0;
}
