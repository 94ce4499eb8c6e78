/* SPDX-License-Identifier: Apache-2.0 */
/*
 * checkpoint.c - signed heads of a tenant's audit chain (service.h, docs/audit.md).
 *
 * The chain alone proves that no record was changed, inserted or removed in the middle; it
 * cannot show that the newest records were deleted, since what is left is a shorter chain
 * that verifies. A checkpoint kept outside the database closes that hole: it says "the chain
 * had seq records and record seq hashed to hash", signed by a key the database does not hold.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "lib/base64.h"
#include "lib/json.h"
#include "lib/jws.h"
#include "service/service.h"
#include "lib/banned.h"

/* b64url SHA-256 of the key's DER SubjectPublicKeyInfo: which key signed. */
static int
key_id(EVP_PKEY *key, char kid[44], struct devid_error *e)
{
	unsigned char *der = NULL;
	uint8_t md[SHA256_DIGEST_LENGTH];
	char *b;
	int n;

	if ((n = i2d_PUBKEY(key, &der)) <= 0)
		return devid_error_ssl(e, DEVID_ECRYPTO, "audit checkpoint: key has no public key");
	SHA256(der, (size_t)n, md);
	OPENSSL_free(der);
	if ((b = b64url_encode(md, sizeof(md))) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "out of memory");
	snprintf(kid, 44, "%s", b);
	free(b);
	return 0;
}

int
audit_checkpoint_make(struct db *db, const char *tenant, EVP_PKEY *key, char **out,
    struct audit_checkpoint *cp, struct devid_error *e)
{
	struct audit_checkpoint c = {0};
	struct tenant t;
	json_t *hdr = NULL, *pay = NULL;
	char *h = NULL, *p = NULL, *hb = NULL, *pb = NULL, *sb = NULL, *text = NULL;
	uint8_t sig[ES256_SIG_LEN];
	size_t n;
	int rc;

	*out = NULL;
	if ((rc = store_tenant_get(db, tenant, &t, e)) != 0 ||
	    (rc = audit_verify_at(db, t.id, -1, c.hash, &c.seq, e)) != 0 ||
	    (rc = key_id(key, c.kid, e)) != 0)
		return rc;
	snprintf(c.tenant, sizeof(c.tenant), "%s", t.name);
	c.at = time(NULL);
	hdr =
	    json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", AUDIT_CHECKPOINT_TYP, "kid", c.kid);
	pay = json_pack("{s:i, s:s, s:I, s:s, s:I}", "v", 1, "tenant", c.tenant, "seq",
	    (json_int_t)c.seq, "hash", c.hash, "at", (json_int_t)c.at);
	if (hdr == NULL || pay == NULL || (h = json_dump_compact(hdr)) == NULL ||
	    (p = json_dump_compact(pay)) == NULL ||
	    (hb = b64url_encode((const uint8_t *)h, strlen(h))) == NULL ||
	    (pb = b64url_encode((const uint8_t *)p, strlen(p))) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto out;
	}
	n = strlen(hb) + 1 + strlen(pb);
	if ((text = malloc(n + 1 + 2 * ES256_SIG_LEN)) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto out;
	}
	snprintf(text, n + 1, "%s.%s", hb, pb);
	if ((rc = es256_sign(key, (const uint8_t *)text, n, sig, e)) != 0) {
		devid_error_prefix(e, "audit checkpoint");
		goto out;
	}
	if ((sb = b64url_encode(sig, sizeof(sig))) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto out;
	}
	snprintf(text + n, 1 + 2 * ES256_SIG_LEN, ".%s", sb);
	*out = text;
	text = NULL;
	if (cp != NULL)
		*cp = c;
out:
	json_decref(hdr);
	json_decref(pay);
	free(h);
	free(p);
	free(hb);
	free(pb);
	free(sb);
	free(text);
	return rc;
}

/* The decoded JSON of a b64url part of the JWS. */
static json_t *
part_json(const char *b64, size_t n, const char *what, struct devid_error *e)
{
	uint8_t *raw = NULL;
	size_t len;
	json_t *j;

	if (b64url_decode(b64, n, &raw, &len) != 0) {
		devid_error_set(e, DEVID_EINVAL, "audit checkpoint: %s is not base64url", what);
		return NULL;
	}
	j = json_parse(raw, len, what, e);
	free(raw);
	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		devid_error_set(e, DEVID_EINVAL, "audit checkpoint: %s is not a JSON object", what);
		return NULL;
	}
	if (j == NULL)
		devid_error_prefix(e, "audit checkpoint");
	return j;
}

/* Splits and checks the JWS and fills cp from its payload (signature checked first). */
static int
checkpoint_parse(
    const char *s, size_t len, EVP_PKEY *pub, struct audit_checkpoint *cp, struct devid_error *e)
{
	const char *dot1, *dot2, *typ, *alg, *kid, *tenant, *hash;
	json_t *hdr = NULL, *pay = NULL;
	json_int_t v, seq, at;
	char want_kid[44];
	int rc = DEVID_EINVAL;

	if ((dot1 = memchr(s, '.', len)) == NULL ||
	    (dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - s))) == NULL ||
	    memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - s)) != NULL)
		return devid_error_set(e, DEVID_EINVAL,
		    "audit checkpoint: not a compact JWS (RFC 7515 7.1: three parts joined by "
		    "'.')");
	if ((hdr = part_json(s, (size_t)(dot1 - s), "protected header", e)) == NULL)
		goto out;
	if (json_get_str(hdr, "alg", 1, 16, true, &alg, NULL, "audit checkpoint header", e) != 0 ||
	    json_get_str(hdr, "typ", 1, 64, true, &typ, NULL, "audit checkpoint header", e) != 0 ||
	    json_get_str(hdr, "kid", 1, 43, true, &kid, NULL, "audit checkpoint header", e) != 0)
		goto out;
	if (strcmp(alg, "ES256") != 0 || strcmp(typ, AUDIT_CHECKPOINT_TYP) != 0) {
		devid_error_set(e, DEVID_EINVAL,
		    "audit checkpoint: header must say alg ES256 and typ " AUDIT_CHECKPOINT_TYP);
		goto out;
	}
	if ((rc = key_id(pub, want_kid, e)) != 0)
		goto out;
	if (strcmp(kid, want_kid) != 0) {
		rc = devid_error_set(e, DEVID_ECRYPTO,
		    "audit checkpoint: signed by key %s, not by the given key %s", kid, want_kid);
		goto out;
	}
	if ((rc = jws_verify(pub, s, (size_t)(dot1 - s), dot1 + 1, (size_t)(dot2 - dot1 - 1),
		 dot2 + 1, len - (size_t)(dot2 + 1 - s), e)) != 0) {
		rc = devid_error_set(e, DEVID_ECRYPTO,
		    "audit checkpoint: the signature does not verify (RFC 7515 5.2): the "
		    "checkpoint is forged or was changed");
		goto out;
	}
	rc = DEVID_EINVAL;
	if ((pay = part_json(dot1 + 1, (size_t)(dot2 - dot1 - 1), "payload", e)) == NULL)
		goto out;
	if (json_get_int(pay, "v", 1, 1, &v, "audit checkpoint", e) != 0 ||
	    json_get_str(
		pay, "tenant", 1, MAX_NAME_LEN, true, &tenant, NULL, "audit checkpoint", e) != 0 ||
	    json_get_int(pay, "seq", 0, INT64_MAX, &seq, "audit checkpoint", e) != 0 ||
	    json_get_str(pay, "hash", 64, 64, true, &hash, NULL, "audit checkpoint", e) != 0 ||
	    json_get_int(pay, "at", 0, INT64_MAX, &at, "audit checkpoint", e) != 0)
		goto out;
	snprintf(cp->tenant, sizeof(cp->tenant), "%s", tenant);
	snprintf(cp->hash, sizeof(cp->hash), "%s", hash);
	snprintf(cp->kid, sizeof(cp->kid), "%s", kid);
	cp->seq = seq;
	cp->at = at;
	rc = 0;
out:
	json_decref(hdr);
	json_decref(pay);
	return rc;
}

int
audit_checkpoint_verify(struct db *db, const char *tenant, const uint8_t *jws, size_t len,
    EVP_PKEY *pub, struct audit_checkpoint *cp, int64_t *count, struct devid_error *e)
{
	const char *s = (const char *)jws;
	char at_hash[65];
	struct tenant t;
	int rc;

	memset(cp, 0, sizeof(*cp));
	*count = 0;
	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' '))
		len--;
	while (len > 0 && (*s == '\n' || *s == '\r' || *s == ' ')) {
		s++;
		len--;
	}
	if (len > AUDIT_CHECKPOINT_MAX)
		return devid_error_set(e, DEVID_EINVAL, "audit checkpoint: longer than %d bytes",
		    AUDIT_CHECKPOINT_MAX);
	if ((rc = checkpoint_parse(s, len, pub, cp, e)) != 0)
		return rc;
	if ((rc = store_tenant_get(db, tenant, &t, e)) != 0)
		return rc;
	if (strcmp(cp->tenant, t.name) != 0)
		return devid_error_set(e, DEVID_EINVAL,
		    "audit checkpoint seq %lld is of tenant %s, not of %s", (long long)cp->seq,
		    cp->tenant, t.name);
	at_hash[0] = '\0';
	if ((rc = audit_verify_at(db, t.id, cp->seq, at_hash, count, e)) != 0) {
		devid_error_prefix(e, "checking against checkpoint seq %lld", (long long)cp->seq);
		return rc;
	}
	if (*count < cp->seq)
		return devid_error_set(e, DEVID_ECRYPTO,
		    "audit: the trail of %s ends at record %lld, but checkpoint seq %lld says it "
		    "had %lld records: records from %lld on were removed",
		    t.name, (long long)*count, (long long)cp->seq, (long long)cp->seq,
		    (long long)*count + 1);
	if (strcmp(at_hash, cp->hash) != 0)
		return devid_error_set(e, DEVID_ECRYPTO,
		    "audit: record %lld of %s is not the one checkpoint seq %lld signed (its hash "
		    "differs): the trail was rewritten up to there",
		    (long long)cp->seq, t.name, (long long)cp->seq);
	return 0;
}
