/* SPDX-License-Identifier: Apache-2.0 */
/*
 * est_tpm.c - the JSON bodies of a TPM's enrollment by credential activation (see est.h):
 * pure, src/lib and jansson only, driven by fuzz_est_tpm.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "http/est.h"
#include "lib/base64.h"
#include "lib/banned.h"

/* A binary member: its name, and where its decoded bytes go. */
struct member {
	const char *name;
	uint8_t **p;
	size_t *len;
};

/* Decodes the base64 string v of member m; refuses an empty value. */
static int
decode(const struct member *m, json_t *v, struct devid_error *e)
{
	int rc;

	if (!json_is_string(v))
		return devid_error_set(e, DEVID_EINVAL, "%s: a base64 string", m->name);
	if (json_string_length(v) == 0)
		return devid_error_set(e, DEVID_EINVAL, "%s: empty", m->name);
	rc = b64_decode(json_string_value(v), json_string_length(v), 0, m->p, m->len);
	if (rc == DEVID_ENOMEM)
		return devid_error_set(e, rc, "%s: out of memory", m->name);
	if (rc != 0)
		return devid_error_set(
		    e, DEVID_EINVAL, "%s: not base64 (RFC 4648, padded)", m->name);
	return 0;
}

/* A text member of [0-9a-f]{1,max} into out (max + 1 bytes). */
static int
hex_member(const char *name, json_t *v, char *out, size_t max, struct devid_error *e)
{
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);

	if (!json_is_string(v) || n == 0 || n > max || strlen(s) != n ||
	    strspn(s, "0123456789abcdef") != n)
		return devid_error_set(
		    e, DEVID_EINVAL, "%s: a string of 1 to %zu lowercase hex digits", name, max);
	memcpy(out, s, n + 1);
	return 0;
}

int
est_tpm_body_parse(enum est_endpoint ep, const uint8_t *body, size_t len, struct est_tpm_body *b,
    struct devid_error *e)
{
	const bool activate = ep == EST_TPMACTIVATE;
	const struct member bin[] = {
	    {"ekCertificate", &b->ek_cert, &b->ek_cert_len},
	    {"akPublic", &b->ak_public, &b->ak_public_len},
	    {"keyPublic", &b->key_public, &b->key_public_len},
	    {"certifyInfo", &b->certify_info, &b->certify_info_len},
	    {"certifySignature", &b->certify_signature, &b->certify_signature_len},
	    {"csr", &b->csr, &b->csr_len},
	    {"secret", &b->secret, &b->secret_len},
	};
	/* the binary members each call takes: activate the first six, enroll the last */
	const size_t from = activate ? 0 : 6, to = activate ? 6 : 7;
	const char *key;
	json_t *root = NULL, *v;
	size_t i;
	int rc = DEVID_EINVAL;

	memset(b, 0, sizeof(*b));
	if (len > MAX_EST_BODY) {
		rc = devid_error_set(
		    e, DEVID_ELIMIT, "body: %zu bytes, limit %d", len, MAX_EST_BODY);
		goto out;
	}
	if ((root = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, NULL)) == NULL ||
	    !json_is_object(root)) {
		devid_error_set(e, rc, "body: a JSON object (duplicate members refused)");
		goto out;
	}
	json_object_foreach(root, key, v)
	{
		for (i = from; i < to; i++) {
			if (strcmp(key, bin[i].name) == 0)
				break;
		}
		if (i < to) {
			if ((rc = decode(&bin[i], v, e)) != 0)
				goto out;
		} else if (activate && strcmp(key, "udid") == 0) {
			if ((rc = hex_member(key, v, b->udid, UDID_HEX_LEN, e)) != 0)
				goto out;
		} else if (!activate && strcmp(key, "id") == 0) {
			if ((rc = hex_member(key, v, b->id, EST_TPM_ID_MAX, e)) != 0)
				goto out;
		} else {
			rc =
			    devid_error_set(e, DEVID_EINVAL, "body: unknown member \"%.64s\"", key);
			goto out;
		}
	}
	rc = DEVID_EINVAL;
	if (activate && (b->ek_cert == NULL) == (b->udid[0] == '\0')) {
		devid_error_set(e, rc, "body: exactly one of ekCertificate and udid");
		goto out;
	}
	for (i = activate ? 1 : from; i < to; i++) {
		if (*bin[i].p == NULL) {
			devid_error_set(e, rc, "body: member %s missing", bin[i].name);
			goto out;
		}
	}
	if (!activate && b->id[0] == '\0') {
		devid_error_set(e, rc, "body: member id missing");
		goto out;
	}
	rc = 0;
out:
	json_decref(root);
	if (rc != 0)
		est_tpm_body_release(b);
	return rc;
}

void
est_tpm_body_release(struct est_tpm_body *b)
{
	free(b->ek_cert);
	free(b->ak_public);
	free(b->key_public);
	free(b->certify_info);
	free(b->certify_signature);
	free(b->csr);
	if (b->secret != NULL)
		OPENSSL_cleanse(b->secret, b->secret_len);
	free(b->secret);
	memset(b, 0, sizeof(*b));
}
