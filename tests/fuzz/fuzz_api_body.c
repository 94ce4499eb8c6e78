/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_api_body.c - libFuzzer target for the JSON bodies of devid's REST API: the first byte
 * chooses the endpoint (publish, import, claim), the rest is the body, parsed exactly as the
 * server does (publish_body_parse_bytes; or json_parse with duplicate keys refused, then
 * manifest_from_json or claim_body_parse). Aborts when a parser breaks its contract: a failure
 * returns nothing and gives a reason; a success returns what it says.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "lib/submission.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_api_body: contract broken: %s\n", what);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest_report r;
	struct batch_descriptor *d = NULL;
	struct manifest *m = NULL;
	struct claim_code c;
	struct devid_error e;
	const char *code;
	json_t *body;
	size_t len;
	int rc;

	if (size < 1)
		return 0;
	memset(&r, 0, sizeof(r));
	devid_error_clear(&e);
	if (data[0] % 3 == 0) {
		/* the publish body is delimited from its bytes, not parsed as one tree */
		rc = publish_body_parse_bytes(data + 1, size - 1, 1, &d, &m, &r, &e);
		expect(rc == 0 ? d != NULL && m != NULL && m->n == r.total
			       : d == NULL && m == NULL && e.msg[0] != '\0',
		    "publish body");
		manifest_report_release(&r);
		manifest_free(m);
		batch_descriptor_free(d);
		return 0;
	}
	if ((body = json_parse(data + 1, size - 1, "body", &e)) == NULL) {
		expect(e.msg[0] != '\0', "JSON failure without a reason");
		return 0;
	}
	switch (data[0] % 3) {
	case 1:
		rc = manifest_from_json(body, &m, &r, &e);
		expect(rc == 0 ? m != NULL && m->n >= 1 : m == NULL && e.msg[0] != '\0',
		    "import body");
		break;
	default:
		rc = claim_body_parse(body, &code, &len, &c, &e);
		expect(rc == 0 ? len == strlen(c.text) && memcmp(code, c.text, len) == 0
			       : e.msg[0] != '\0',
		    "claim body");
		break;
	}
	manifest_report_release(&r);
	manifest_free(m);
	batch_descriptor_free(d);
	json_decref(body);
	return 0;
}
