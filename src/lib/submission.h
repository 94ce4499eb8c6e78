/* SPDX-License-Identifier: Apache-2.0 */
/*
 * submission.h - the request bodies that carry batches to devid, parsed without side effects
 * (the service verifies and stores what these return):
 *   publish  {"descriptor": <batch.json JWS>, "manifest": [SignedSecureElement ...]}
 *   import   [SignedSecureElement ...]
 *   upload   {"kind": "publish"|"import", ...}, then pages of [SignedSecureElement ...]
 *   claim    {"code": "DEVID1:..."}
 */
#ifndef DEVID_SUBMISSION_H
#define DEVID_SUBMISSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "claim.h"
#include "error.h"
#include "limits.h"

/* A part of a body: its bytes p[off .. off + len). */
struct body_part {
	size_t off, len;
};

/*
 * Delimits the two members of a publish body without parsing them (a scanner that only
 * tracks strings and brackets): the descriptor's and the manifest's values as parts of p.
 * Members other than these two, or either twice, are refused (DEVID_EINVAL naming the shape).
 * The caller parses the descriptor (batch_descriptor_parse) and the manifest, a page at a time
 * (manifest_split, manifest_parse_spans), from their exact bytes.
 */
int publish_body_split(const uint8_t *p, size_t n, struct body_part *descriptor,
    struct body_part *manifest, struct devid_error *e);

/*
 * The body that opens an upload (docs/api.md "Uploads"), at most MAX_UPLOAD_OPEN_SIZE bytes:
 *   {"kind":"publish","descriptor":{batch.json's JWS},"pageSize":N}
 *   {"kind":"import","batch":"NAME","pageSize":N}
 * pageSize 1 to MAX_UPLOAD_PAGE_ENTRIES; unknown members refused. Caller-owned: release it.
 */
struct upload_open_body {
	bool import;
	char *descriptor; /* a publish: the descriptor as compact JSON (its JWS strings as sent) */
	char batch[MAX_NAME_LEN + 1]; /* an import: the batch name, [A-Z0-9.-]{1,64} */
	long long page_size;
};
int upload_open_body_parse(
    const uint8_t *p, size_t n, struct upload_open_body *b, struct devid_error *e);
void upload_open_body_release(struct upload_open_body *b);

/* A claim body: the code text (borrowed from body) checked with claim_code_parse into c. */
int claim_body_parse(const json_t *body, const char **code, size_t *len, struct claim_code *c,
    struct devid_error *e);

#endif
