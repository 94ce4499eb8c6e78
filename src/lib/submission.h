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
#include "manifest.h"

/*
 * A publish body, its entries parsed by nthreads threads: *d and *m are new (free them) on success;
 * entries that do not parse are in r. DEVID_EINVAL naming what is wrong otherwise, with nothing
 * returned.
 */
int publish_body_parse(const json_t *body, int nthreads, struct batch_descriptor **d,
    struct manifest **m, struct manifest_report *r, struct devid_error *e);

/* A claim body: the code text (borrowed from body) checked with claim_code_parse into c. */
int claim_body_parse(const json_t *body, const char **code, size_t *len, struct claim_code *c,
    struct devid_error *e);

#endif
