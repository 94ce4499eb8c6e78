/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_api_body.c - libFuzzer target for the JSON bodies of devid's REST API: the first byte
 * chooses the endpoint (publish, import, claim, an upload's opening), the rest is the body,
 * parsed exactly as the server does (publish_body_split, then the descriptor and the manifest
 * from their exact bytes; manifest_parse; claim_body_parse after json_parse with duplicate keys
 * refused; upload_open_body_parse). Aborts when a parser breaks its contract: a failure
 * returns nothing and gives a reason; a success returns what it says.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"
#include "lib/batch_descriptor.h"
#include "lib/manifest.h"
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
	struct upload_open_body ub;
	struct body_part dp, mp;
	struct claim_code c;
	struct devid_error e;
	const char *code;
	json_t *body = NULL;
	size_t len;
	int rc;

	if (size < 1)
		return 0;
	memset(&r, 0, sizeof(r));
	devid_error_clear(&e);
	switch (data[0] % 4) {
	case 0:
		/* the publish body is delimited from its bytes, not parsed as one tree */
		rc = publish_body_split(data + 1, size - 1, &dp, &mp, &e);
		expect(rc == 0 ? dp.len > 0 && mp.len > 0 && dp.off + dp.len <= size - 1 &&
			    mp.off + mp.len <= size - 1 &&
			    (dp.off + dp.len <= mp.off || mp.off + mp.len <= dp.off)
			       : e.msg[0] != '\0',
		    "publish body");
		if (rc == 0 && batch_descriptor_parse(data + 1 + dp.off, dp.len, &d, &e) == 0 &&
		    manifest_parse(data + 1 + mp.off, mp.len, &m, &r, &e) == 0)
			expect(m->n == r.total, "publish manifest");
		break;
	case 1:
		rc = manifest_parse(data + 1, size - 1, &m, &r, &e);
		expect(rc == 0 ? m != NULL && m->n >= 1 : m == NULL && e.msg[0] != '\0',
		    "import body");
		break;
	case 2:
		if ((body = json_parse(data + 1, size - 1, "body", &e)) == NULL) {
			expect(e.msg[0] != '\0', "JSON failure without a reason");
			break;
		}
		rc = claim_body_parse(body, &code, &len, &c, &e);
		expect(rc == 0 ? len == strlen(c.text) && memcmp(code, c.text, len) == 0
			       : e.msg[0] != '\0',
		    "claim body");
		break;
	default:
		rc = upload_open_body_parse(data + 1, size - 1, &ub, &e);
		expect(rc == 0 ? ub.page_size >= 1 && ub.page_size <= MAX_UPLOAD_PAGE_ENTRIES &&
			    (ub.import ? ub.descriptor == NULL && ub.batch[0] != '\0'
				       : ub.descriptor != NULL && ub.batch[0] == '\0')
			       : ub.descriptor == NULL && e.msg[0] != '\0',
		    "upload body");
		upload_open_body_release(&ub);
		break;
	}
	manifest_report_release(&r);
	manifest_free(m);
	batch_descriptor_free(d);
	json_decref(body);
	return 0;
}
