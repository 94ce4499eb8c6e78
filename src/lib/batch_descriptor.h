/* SPDX-License-Identifier: Apache-2.0 */
/*
 * batch_descriptor.h - batch.json: one flattened JWS by the vendor's manifest signer whose
 * payload is {"version":1,"vendor","batchId","partNumber","count","claimSha256","createdAt"}
 * (docs/formats.md). Parsing checks every field's type, length and pattern; verifying checks
 * the signer and the signature over the exact bytes received.
 */
#ifndef DEVID_BATCH_DESCRIPTOR_H
#define DEVID_BATCH_DESCRIPTOR_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "error.h"
#include "jws.h"
#include "limits.h"
#include "vendor_trust.h"

struct batch_descriptor {
	int version;
	char vendor[MAX_NAME_LEN + 1];
	char batch_id[MAX_NAME_LEN + 1];
	char part_number[MAX_TEXT_FIELD_LEN + 1];
	long long count;
	char claim_sha256[65];
	char created_at[MAX_TIMESTAMP_LEN + 1];
	struct jws_header hdr;
	char *prot_b64, *payload_b64, *sig_b64; /* as received */
};

/* Parses batch.json (a flattened JWS and its payload); no signature check. */
int batch_descriptor_parse(
    const uint8_t *p, size_t n, struct batch_descriptor **out, struct devid_error *e);
/* The same over an already parsed JSON object (borrowed). */
int batch_descriptor_from_json(
    const json_t *obj, struct batch_descriptor **out, struct devid_error *e);
/* The descriptor's signer is trusted and its signature verifies. */
int batch_descriptor_verify(
    const struct batch_descriptor *d, const struct vendor_trust *t, struct devid_error *e);
/*
 * The descriptor as signed, its three JWS members in one compact JSON object (free()), as
 * devid stores it; NULL when out of memory.
 */
char *batch_descriptor_json(const struct batch_descriptor *d);
void batch_descriptor_free(struct batch_descriptor *d);

#endif
