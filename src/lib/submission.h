/* SPDX-License-Identifier: Apache-2.0 */
/*
 * submission.h - the request bodies that carry batches to devid, parsed without side effects
 * (the service verifies and stores what these return):
 *   publish  {"descriptor": <batch.json JWS>, "manifest": [SignedSecureElement ...]}
 *   import   [SignedSecureElement ...]
 *   claim    {"code": "DEVID1:..."}
 */
#ifndef DEVID_SUBMISSION_H
#define DEVID_SUBMISSION_H

#include <jansson.h>

#include "claim.h"
#include "error.h"
#include "batch_descriptor.h"
#include "manifest.h"

/*
 * A publish body from its bytes, without building a JSON tree of it: *d and *m are new (free
 * them) on success, entries that do not parse are in r; DEVID_EINVAL naming what is wrong
 * otherwise, with nothing returned. The members are
 * delimited by a scanner that only tracks strings and brackets, then the descriptor and the
 * manifest are parsed from their exact bytes (the manifest by nthreads threads). Members
 * other than these two, or either twice, are refused.
 */
int publish_body_parse_bytes(const uint8_t *p, size_t n, int nthreads, struct batch_descriptor **d,
    struct manifest **m, struct manifest_report *r, struct devid_error *e);

/* A claim body: the code text (borrowed from body) checked with claim_code_parse into c. */
int claim_body_parse(const json_t *body, const char **code, size_t *len, struct claim_code *c,
    struct devid_error *e);

#endif
