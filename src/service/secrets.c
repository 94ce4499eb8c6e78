/* SPDX-License-Identifier: Apache-2.0 */
/*
 * secrets.c - connector secrets encrypted at rest (service.h, docs/secrets.md).
 *
 * A secret field of a connector's config (the connector type names them) is stored as
 * {"enc":"v1:<key id>:<b64url(nonce | ciphertext | tag)>"}: AES-256-GCM under the server's
 * secrets key, a fresh random 96-bit nonce each time, and the additional data
 * "devid-connector-secret/v1/<tenant>/<connector>/<field>", so a ciphertext copied to another
 * connector, tenant or field does not decrypt.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "lib/base64.h"
#include "service/service.h"
#include "lib/banned.h"

#define ENC_PREFIX "v1:"
#define AAD_MAX (64 + 3 * (MAX_NAME_LEN + 1) + 64)

static int
aad_make(char *aad, size_t n, const char *tenant, const char *connector, const char *field)
{
	int len = snprintf(aad, n, "devid-connector-secret/v1/%s/%s/%s", tenant, connector, field);

	return len > 0 && (size_t)len < n ? len : -1;
}

int
secrets_key_set_id(struct secrets_key *k, struct devid_error *e)
{
	static const char what[] = "devid secrets key id";
	static const uint8_t zero[SECRETS_NONCE_LEN];
	uint8_t tag[SECRETS_TAG_LEN];
	int rc;

	/*
	 * The tag of nothing under a fixed nonce: the same for one key, different for another,
	 * and no help in finding the key. Random nonces never meet the all-zero one (2^-96).
	 */
	if ((rc = k->gcm(k->ctx, true, zero, (const uint8_t *)what, sizeof(what) - 1, NULL, 0, NULL,
		 tag, e)) != 0)
		return rc;
	hex_encode(tag, 8, k->id);
	return 0;
}

/* One field: the plaintext string value to {"enc":…}. */
static int
seal_one(const struct secrets_key *k, const char *aad, size_t aadlen, json_t *config,
    const char *field, const char *pt, struct devid_error *e)
{
	size_t n = strlen(pt), blen = SECRETS_NONCE_LEN + n + SECRETS_TAG_LEN;
	uint8_t *buf = malloc(blen);
	char *b64 = NULL, *val = NULL;
	size_t vlen;
	int rc = DEVID_ENOMEM;

	if (buf == NULL)
		goto oom;
	if (RAND_bytes(buf, SECRETS_NONCE_LEN) != 1) {
		rc = devid_error_set(e, DEVID_ECRYPTO, "secrets: no random bytes");
		goto out;
	}
	if ((rc = k->gcm(k->ctx, true, buf, (const uint8_t *)aad, aadlen, (const uint8_t *)pt, n,
		 buf + SECRETS_NONCE_LEN, buf + SECRETS_NONCE_LEN + n, e)) != 0)
		goto out;
	if ((b64 = b64url_encode(buf, blen)) == NULL)
		goto oom;
	vlen = strlen(ENC_PREFIX) + sizeof(k->id) + 1 + strlen(b64) + 1;
	if ((val = malloc(vlen)) == NULL)
		goto oom;
	snprintf(val, vlen, ENC_PREFIX "%s:%s", k->id, b64);
	OPENSSL_cleanse((char *)pt, n); /* jansson frees the old string unwiped */
	if (json_object_set_new(config, field, json_pack("{s:s}", "enc", val)) != 0)
		goto oom;
	rc = 0;
	goto out;
oom:
	rc = devid_error_set(e, DEVID_ENOMEM, "secrets: out of memory");
out:
	if (buf != NULL)
		OPENSSL_cleanse(buf, blen);
	free(buf);
	free(b64);
	free(val);
	return rc;
}

bool
secrets_config_has(const json_t *config, const char *const *fields)
{
	for (size_t i = 0; fields != NULL && fields[i] != NULL; i++)
		if (json_object_get(config, fields[i]) != NULL)
			return true;
	return false;
}

int
secrets_seal_config(const struct secrets_key *k, const char *const *fields, const char *tenant,
    const char *connector, json_t *config, struct devid_error *e)
{
	char aad[AAD_MAX];
	const char *pt;
	json_t *v;
	int len, rc;

	for (size_t i = 0; fields != NULL && fields[i] != NULL; i++) {
		if ((v = json_object_get(config, fields[i])) == NULL)
			continue;
		if (k == NULL)
			return devid_error_set(e, DEVID_ECONFLICT, SECRETS_NEED_KEY_MSG);
		if (!json_is_string(v))
			return devid_error_set(
			    e, DEVID_EINVAL, "connector: config %s must be a string", fields[i]);
		if ((len = aad_make(aad, sizeof(aad), tenant, connector, fields[i])) < 0)
			return devid_error_set(e, DEVID_EINVAL, "secrets: names too long");
		pt = json_string_value(v);
		if ((rc = seal_one(k, aad, (size_t)len, config, fields[i], pt, e)) != 0)
			return rc;
	}
	return 0;
}

/* One {"enc":"v1:<id>:<b64>"} back to its string. */
static int
open_one(const struct secrets_key *k, const char *aad, size_t aadlen, json_t *config,
    const char *field, const char *enc, const char *connector, struct devid_error *e)
{
	const char *id = enc + strlen(ENC_PREFIX), *colon;
	uint8_t *raw = NULL;
	char *pt = NULL;
	size_t n = 0, ptlen;
	int rc;

	if (strncmp(enc, ENC_PREFIX, strlen(ENC_PREFIX)) != 0 ||
	    (colon = strchr(id, ':')) == NULL || colon - id != 16 ||
	    b64url_decode(colon + 1, strlen(colon + 1), &raw, &n) != 0 ||
	    n < SECRETS_NONCE_LEN + SECRETS_TAG_LEN) {
		rc = devid_error_set(e, DEVID_EINVAL,
		    "connector %s: stored secret %s is not v1:<key id>:<base64url>", connector,
		    field);
		goto out;
	}
	if (k == NULL) {
		rc = devid_error_set(e, DEVID_ECONFLICT,
		    "connector %s: its secrets are encrypted (key %.16s) and this server has no "
		    "secrets key: start devid serve with --secrets-key",
		    connector, id);
		goto out;
	}
	if (strncmp(id, k->id, 16) != 0) {
		rc = devid_error_set(e, DEVID_ECRYPTO,
		    "connector %s: its secrets are encrypted under key %.16s, this server has key "
		    "%s",
		    connector, id, k->id);
		goto out;
	}
	ptlen = n - SECRETS_NONCE_LEN - SECRETS_TAG_LEN;
	if ((pt = malloc(ptlen + 1)) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "secrets: out of memory");
		goto out;
	}
	if (k->gcm(k->ctx, false, raw, (const uint8_t *)aad, aadlen, raw + SECRETS_NONCE_LEN, ptlen,
		(uint8_t *)pt, raw + SECRETS_NONCE_LEN + ptlen, e) != 0) {
		rc = devid_error_set(e, DEVID_ECRYPTO,
		    "connector %s: stored secret %s does not decrypt (AES-GCM tag mismatch: "
		    "changed, or moved from another connector)",
		    connector, field);
		goto out;
	}
	pt[ptlen] = '\0';
	if (memchr(pt, '\0', ptlen) != NULL ||
	    json_object_set_new(config, field, json_stringn(pt, ptlen)) != 0) {
		rc = devid_error_set(e, DEVID_EINVAL, "connector %s: secret %s", connector, field);
		goto out;
	}
	rc = 0;
out:
	if (pt != NULL)
		OPENSSL_cleanse(pt, ptlen + 1);
	free(pt);
	free(raw);
	return rc;
}

int
secrets_open_config(const struct secrets_key *k, const char *const *fields, const char *tenant,
    const char *connector, json_t *config, struct devid_error *e)
{
	char aad[AAD_MAX];
	const char *enc;
	json_t *v;
	int len, rc;

	for (size_t i = 0; fields != NULL && fields[i] != NULL; i++) {
		if ((v = json_object_get(config, fields[i])) == NULL || json_is_string(v))
			continue; /* absent, or stored before secrets were encrypted */
		if (!json_is_object(v) || json_object_size(v) != 1 ||
		    (enc = json_string_value(json_object_get(v, "enc"))) == NULL)
			return devid_error_set(e, DEVID_EINVAL,
			    "connector %s: stored secret %s is neither a string nor {\"enc\":…}",
			    connector, fields[i]);
		if ((len = aad_make(aad, sizeof(aad), tenant, connector, fields[i])) < 0)
			return devid_error_set(e, DEVID_EINVAL, "secrets: names too long");
		if ((rc = open_one(k, aad, (size_t)len, config, fields[i], enc, connector, e)) != 0)
			return rc;
	}
	return 0;
}

void
secrets_wipe_config(json_t *config, const char *const *fields)
{
	json_t *v;

	for (size_t i = 0; fields != NULL && fields[i] != NULL; i++)
		if ((v = json_object_get(config, fields[i])) != NULL && json_is_string(v))
			/* jansson owns the bytes; they go back to malloc wiped */
			OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}
