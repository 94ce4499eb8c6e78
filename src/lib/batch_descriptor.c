/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "batch_descriptor.h"
#include "claim.h"
#include "json.h"
#include "banned.h"

void
batch_descriptor_free(struct batch_descriptor *d)
{
	if (d == NULL)
		return;
	free(d->prot_b64);
	free(d->payload_b64);
	free(d->sig_b64);
	free(d);
}

static int
copy_str(const json_t *o, const char *key, size_t min, size_t max, char *dst, const char *what,
    struct devid_error *e)
{
	const char *s;
	size_t n;

	if (json_get_str(o, key, min, max, true, &s, &n, what, e) != 0)
		return DEVID_EINVAL;
	memcpy(dst, s, n + 1);
	return 0;
}

int
batch_descriptor_parse(
    const uint8_t *p, size_t n, struct batch_descriptor **out, struct devid_error *e)
{
	static const char what[] = "batch descriptor";
	struct batch_descriptor *d = NULL;
	json_t *root = NULL, *payload = NULL;
	uint8_t *raw = NULL;
	size_t len, rawlen;
	json_int_t v;
	int rc = DEVID_EINVAL;

	*out = NULL;
	if (n > MAX_DESCRIPTOR_SIZE) {
		devid_error_set(e, rc, "%s: %zu bytes, limit %d", what, n, MAX_DESCRIPTOR_SIZE);
		goto out;
	}
	if ((root = json_parse(p, n, what, e)) == NULL)
		goto out;
	if (!json_is_object(root)) {
		devid_error_set(e, rc, "%s: not a JSON object", what);
		goto out;
	}
	if ((d = calloc(1, sizeof(*d))) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "%s: out of memory", what);
		goto out;
	}
	if (json_get_strdup(
		root, "protected", MAX_PROTECTED_SIZE * 2, &d->prot_b64, &len, what, e) ||
	    json_get_strdup(root, "payload", MAX_DESCRIPTOR_SIZE, &d->payload_b64, &len, what, e) ||
	    json_get_strdup(root, "signature", 128, &d->sig_b64, &rawlen, what, e))
		goto out;
	if (jws_header_parse(d->prot_b64, strlen(d->prot_b64), &d->hdr, e) != 0) {
		devid_error_prefix(e, "%s", what);
		goto out;
	}
	if (b64url_decode(d->payload_b64, len, &raw, &rawlen) != 0) {
		devid_error_set(e, rc, "%s: payload is not unpadded base64url", what);
		goto out;
	}
	if ((payload = json_parse(raw, rawlen, what, e)) == NULL)
		goto out;
	if (!json_is_object(payload)) {
		devid_error_set(e, rc, "%s: payload is not a JSON object", what);
		goto out;
	}
	if (json_get_int(payload, "version", 1, 1, &v, what, e) != 0)
		goto out;
	d->version = (int)v;
	if (json_get_int(payload, "count", 1, MAX_BATCH_COUNT, &d->count, what, e) != 0 ||
	    copy_str(payload, "vendor", 1, MAX_NAME_LEN, d->vendor, what, e) ||
	    copy_str(payload, "batchId", 1, MAX_NAME_LEN, d->batch_id, what, e) ||
	    copy_str(payload, "partNumber", 1, MAX_TEXT_FIELD_LEN, d->part_number, what, e) ||
	    copy_str(payload, "claimSha256", 64, 64, d->claim_sha256, what, e) ||
	    copy_str(payload, "createdAt", 1, MAX_TIMESTAMP_LEN, d->created_at, what, e))
		goto out;
	if (!claim_name_valid(d->vendor, strlen(d->vendor)) ||
	    !claim_name_valid(d->batch_id, strlen(d->batch_id))) {
		devid_error_set(e, rc, "%s: vendor and batchId must match [A-Z0-9.-]{1,64}", what);
		goto out;
	}
	if (strspn(d->claim_sha256, "0123456789abcdef") != 64) {
		devid_error_set(e, rc, "%s: claimSha256 is not 64 lowercase hex digits", what);
		goto out;
	}
	*out = d;
	d = NULL;
	rc = 0;
out:
	free(raw);
	json_decref(payload);
	json_decref(root);
	batch_descriptor_free(d);
	return rc;
}

int
batch_descriptor_verify(
    const struct batch_descriptor *d, const struct vendor_trust *t, struct devid_error *e)
{
	X509 *signer;

	if ((signer = vendor_trust_get0_signer(t, d->hdr.x5t_s256)) == NULL)
		return vendor_trust_refuse("batch descriptor: signer", d->hdr.x5t_s256, e);
	if (jws_verify(X509_get0_pubkey(signer), d->prot_b64, strlen(d->prot_b64), d->payload_b64,
		strlen(d->payload_b64), d->sig_b64, strlen(d->sig_b64), e) != 0) {
		devid_error_prefix(e, "batch descriptor: JWS (RFC 7515 5.2)");
		return DEVID_ECRYPTO;
	}
	return 0;
}

int
batch_descriptor_from_json(const json_t *obj, struct batch_descriptor **out, struct devid_error *e)
{
	char *text;
	int rc;

	*out = NULL;
	if (!json_is_object(obj))
		return devid_error_set(e, DEVID_EINVAL, "batch descriptor: not a JSON object");
	/* only the JWS strings are verified, and re-serializing keeps them byte for byte */
	if ((text = json_dump_compact(obj)) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "batch descriptor: out of memory");
	rc = batch_descriptor_parse((const uint8_t *)text, strlen(text), out, e);
	free(text);
	return rc;
}

char *
batch_descriptor_json(const struct batch_descriptor *d)
{
	json_t *j = json_pack("{s:s, s:s, s:s}", "payload", d->payload_b64, "protected",
	    d->prot_b64, "signature", d->sig_b64);
	char *text = j != NULL ? json_dump_compact(j) : NULL;

	json_decref(j);
	return text;
}
