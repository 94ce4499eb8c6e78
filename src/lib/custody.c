/* SPDX-License-Identifier: Apache-2.0 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "base64.h"
#include "custody.h"
#include "json.h"
#include "jws.h"
#include "limits.h"
#include "banned.h"

static const char ZERO_HASH[] = "0000000000000000000000000000000000000000000000000000000000000000";

int
custody_key_thumbprint(EVP_PKEY *key, char out[17])
{
	unsigned char *der = NULL;
	uint8_t md[SHA256_DIGEST_LENGTH];
	char *t;
	int len;

	if ((len = i2d_PUBKEY(key, &der)) <= 0)
		return DEVID_ECRYPTO;
	SHA256(der, (size_t)len, md);
	OPENSSL_free(der);
	if ((t = b64url_encode(md, 12)) == NULL)
		return DEVID_ENOMEM;
	snprintf(out, 17, "%s", t);
	free(t);
	return 0;
}

char *
custody_key_b64(EVP_PKEY *key)
{
	unsigned char *der = NULL;
	char *s;
	int len;

	if ((len = i2d_PUBKEY(key, &der)) <= 0)
		return NULL;
	s = b64_encode(der, (size_t)len);
	OPENSSL_free(der);
	return s;
}

/* One signature object {"protected","signature"} over prot "." pay_b64 by key, kid role:thumb. */
static json_t *
sign_one(EVP_PKEY *key, const char *role, const char *pay_b64, struct devid_error *e)
{
	char thumb[17], kid[32], *hdr = NULL, *prot = NULL, *input = NULL, *sig_b64 = NULL;
	uint8_t sig[ES256_SIG_LEN];
	size_t plen, ylen;
	json_t *h = NULL, *out = NULL;

	if (custody_key_thumbprint(key, thumb) != 0) {
		devid_error_set(e, DEVID_ECRYPTO, "custody: the %s key is not encodable", role);
		return NULL;
	}
	snprintf(kid, sizeof(kid), "%s:%s", role, thumb);
	if ((h = json_pack("{s:s, s:s, s:s}", "alg", "ES256", "typ", CUSTODY_TYP, "kid", kid)) ==
		NULL ||
	    (hdr = json_dump_compact(h)) == NULL ||
	    (prot = b64url_encode((const uint8_t *)hdr, strlen(hdr))) == NULL)
		goto oom;
	plen = strlen(prot);
	ylen = strlen(pay_b64);
	if ((input = malloc(plen + ylen + 2)) == NULL)
		goto oom;
	memcpy(input, prot, plen);
	input[plen] = '.';
	memcpy(input + plen + 1, pay_b64, ylen + 1);
	if (es256_sign(key, (const uint8_t *)input, plen + 1 + ylen, sig, e) != 0) {
		devid_error_prefix(e, "custody: %s signature", role);
		goto out;
	}
	if ((sig_b64 = b64url_encode(sig, sizeof(sig))) == NULL ||
	    (out = json_pack("{s:s, s:s}", "protected", prot, "signature", sig_b64)) == NULL)
		goto oom;
	goto out;
oom:
	devid_error_set(e, DEVID_ENOMEM, "custody: out of memory");
out:
	json_decref(h);
	free(hdr);
	free(prot);
	free(input);
	free(sig_b64);
	return out;
}

json_t *
custody_sign(const uint8_t *payload, size_t plen, EVP_PKEY *devid_key, EVP_PKEY *owner_key,
    struct devid_error *e)
{
	char *pay_b64 = NULL;
	json_t *sigs = NULL, *s, *out = NULL;

	if ((pay_b64 = b64url_encode(payload, plen)) == NULL || (sigs = json_array()) == NULL) {
		devid_error_set(e, DEVID_ENOMEM, "custody: out of memory");
		goto out;
	}
	if ((s = sign_one(devid_key, "devid", pay_b64, e)) == NULL ||
	    json_array_append_new(sigs, s) != 0)
		goto out;
	if (owner_key != NULL &&
	    ((s = sign_one(owner_key, "owner", pay_b64, e)) == NULL ||
		json_array_append_new(sigs, s) != 0))
		goto out;
	if ((out = json_pack("{s:s, s:O}", "payload", pay_b64, "signatures", sigs)) == NULL)
		devid_error_set(e, DEVID_ENOMEM, "custody: out of memory");
out:
	free(pay_b64);
	json_decref(sigs);
	return out;
}

/* --- verification ------------------------------------------------------------------------ */

/* What a record's verification carries to the next one. */
struct link {
	char hash[65]; /* SHA-256 of the payload bytes */
	char manifest[65];
	json_t *new_owner; /* the payload's newOwner (a reference) */
};

static EVP_PKEY *
key_from_b64(const char *s, size_t n)
{
	uint8_t *der = NULL;
	const unsigned char *p;
	size_t len;
	EVP_PKEY *k = NULL;

	if (b64_decode(s, n, 0, &der, &len) != 0)
		return NULL;
	p = der;
	k = d2i_PUBKEY(NULL, &p, (long)len);
	if (k != NULL && p != der + len) {
		EVP_PKEY_free(k);
		k = NULL;
	}
	if (k == NULL)
		ERR_clear_error();
	free(der);
	return k;
}

static bool
is_hex64(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (size_t i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* A party {"tenant","kind","key","keySource"}: checked for shape only. */
static int
party_check(const json_t *o, const char *what, struct devid_error *e)
{
	static const char *const keys[] = {"tenant", "kind", "key", "keySource", NULL};
	const char *s;
	json_t *k;

	if (!json_is_object(o))
		return devid_error_set(e, DEVID_EINVAL, "%s is not an object", what);
	if (json_only_keys(o, keys, what, e) != 0 ||
	    json_get_str(o, "tenant", 1, MAX_NAME_LEN, true, &s, NULL, what, e) != 0 ||
	    json_get_str(o, "kind", 1, 16, true, &s, NULL, what, e) != 0)
		return DEVID_EINVAL;
	if (strcmp(s, "vendor") != 0 && strcmp(s, "oem") != 0)
		return devid_error_set(
		    e, DEVID_EINVAL, "%s: kind \"%s\" is not vendor or oem", what, s);
	k = json_object_get(o, "key");
	if (k == NULL || !(json_is_null(k) || json_is_string(k)))
		return devid_error_set(e, DEVID_EINVAL, "%s: key is not a string or null", what);
	if (json_is_string(k) && json_string_length(k) > MAX_CUSTODY_KEY_B64)
		return devid_error_set(e, DEVID_EINVAL, "%s: key is too long", what);
	k = json_object_get(o, "keySource");
	if (k == NULL || !(json_is_null(k) || json_is_string(k)))
		return devid_error_set(
		    e, DEVID_EINVAL, "%s: keySource is not a string or null", what);
	return 0;
}

static const char *
party_kind(const json_t *o)
{
	return json_string_value(json_object_get(o, "kind"));
}

/* Whether event may follow (or, first, start) a chain with these parties. */
static int
event_check(const char *ev, size_t i, const json_t *prev, const json_t *next, struct devid_error *e)
{
	const char *pk = prev != NULL ? party_kind(prev) : NULL, *nk = party_kind(next);
	bool ok;

	if (strcmp(ev, "publish") == 0)
		ok = i == 1 && strcmp(nk, "vendor") == 0;
	else if (strcmp(ev, "import") == 0)
		ok = i == 1 && strcmp(nk, "oem") == 0;
	else if (strcmp(ev, "claim") == 0)
		ok = i > 1 && strcmp(pk, "vendor") == 0 && strcmp(nk, "oem") == 0;
	else if (strcmp(ev, "transfer") == 0)
		ok = i > 1 && strcmp(pk, "oem") == 0 && strcmp(nk, "oem") == 0;
	else if (strcmp(ev, "release") == 0)
		ok = i > 1 && strcmp(pk, "oem") == 0 && strcmp(nk, "vendor") == 0;
	else
		return devid_error_set(e, DEVID_EINVAL, "event \"%s\" is unknown", ev);
	if (!ok)
		return devid_error_set(e, DEVID_EINVAL,
		    "event \"%s\" cannot be record %zu from a %s to a %s", ev, i,
		    pk != NULL ? pk : "nobody", nk);
	return 0;
}

/* The signatures of a record over pay_b64: devid's by one of roots, the owner's by owner. */
static int
signatures_check(const json_t *sigs, const char *pay_b64, size_t pay_len, EVP_PKEY *const *roots,
    size_t nroots, EVP_PKEY *owner, bool owner_signed, struct devid_error *e)
{
	static const char *const sig_keys[] = {"protected", "signature", NULL};
	static const char *const hdr_keys[] = {"alg", "typ", "kid", NULL};
	size_t ndevid = 0, nowner = 0;
	json_t *hdr = NULL;
	int rc = DEVID_EINVAL;

	if (!json_is_array(sigs) || json_array_size(sigs) < 1 || json_array_size(sigs) > 2)
		return devid_error_set(e, rc, "signatures is not an array of 1 or 2");
	for (size_t i = 0; i < json_array_size(sigs); i++) {
		const json_t *s = json_array_get(sigs, i);
		const char *prot, *sig, *v;
		uint8_t *raw = NULL;
		size_t plen, slen, rawlen;
		bool verified = false;

		json_decref(hdr);
		hdr = NULL;
		if (!json_is_object(s) || json_only_keys(s, sig_keys, "signature", e) != 0 ||
		    json_get_str(s, "protected", 1, MAX_PROTECTED_SIZE, true, &prot, &plen,
			"signature", e) != 0 ||
		    json_get_str(s, "signature", 1, 128, true, &sig, &slen, "signature", e) != 0) {
			rc = devid_error_set(e, DEVID_EINVAL, "signature %zu is malformed", i + 1);
			goto out;
		}
		if (b64url_decode(prot, plen, &raw, &rawlen) != 0) {
			rc = devid_error_set(
			    e, DEVID_EINVAL, "signature %zu: protected is not base64url", i + 1);
			goto out;
		}
		hdr = json_parse(raw, rawlen, "protected header", e);
		free(raw);
		if (hdr == NULL || !json_is_object(hdr) ||
		    json_only_keys(hdr, hdr_keys, "protected header", e) != 0 ||
		    json_get_str(hdr, "alg", 1, 16, true, &v, NULL, "protected header", e) != 0 ||
		    strcmp(v, "ES256") != 0 ||
		    json_get_str(hdr, "typ", 1, 32, true, &v, NULL, "protected header", e) != 0 ||
		    strcmp(v, CUSTODY_TYP) != 0 ||
		    json_get_str(hdr, "kid", 1, 64, true, &v, NULL, "protected header", e) != 0) {
			rc = devid_error_set(e, DEVID_EINVAL,
			    "signature %zu: the protected header is not {alg ES256, typ %s, kid}",
			    i + 1, CUSTODY_TYP);
			goto out;
		}
		if (strncmp(v, "devid:", 6) == 0) {
			ndevid++;
			for (size_t r = 0; r < nroots && !verified; r++)
				verified = jws_verify(roots[r], prot, plen, pay_b64, pay_len, sig,
					       slen, NULL) == 0;
			if (!verified) {
				rc = devid_error_set(e, DEVID_ECRYPTO,
				    "devid's signature does not verify with any --root key");
				goto out;
			}
		} else if (strncmp(v, "owner:", 6) == 0) {
			nowner++;
			if (owner == NULL ||
			    jws_verify(owner, prot, plen, pay_b64, pay_len, sig, slen, NULL) != 0) {
				rc = devid_error_set(e, DEVID_ECRYPTO,
				    "the owner signature does not verify with the previous owner's "
				    "key");
				goto out;
			}
		} else {
			rc = devid_error_set(e, DEVID_EINVAL,
			    "signature %zu: kid \"%s\" is not devid: or owner:", i + 1, v);
			goto out;
		}
	}
	if (ndevid != 1) {
		rc =
		    devid_error_set(e, DEVID_ECRYPTO, "%zu signatures by devid, must be 1", ndevid);
		goto out;
	}
	if (nowner != (owner_signed ? 1u : 0u)) {
		rc = devid_error_set(e, DEVID_ECRYPTO, "ownerSigned is %s but %zu owner signatures",
		    owner_signed ? "true" : "false", nowner);
		goto out;
	}
	rc = 0;
out:
	json_decref(hdr);
	return rc;
}

/* Record i (1-based) against the link of the one before (updated to this one's). */
static int
record_check(const json_t *rec, size_t i, const char *vendor, const char *batch,
    EVP_PKEY *const *roots, size_t nroots, struct link *l, struct devid_error *e)
{
	static const char *const rec_keys[] = {"payload", "signatures", NULL};
	static const char *const pay_keys[] = {"version", "seq", "event", "vendor", "batch",
	    "count", "manifestSha256", "descriptorSha256", "prev", "previousOwner", "newOwner",
	    "ownerSigned", "at", NULL};
	const char *pay_b64, *s, *ev;
	uint8_t *raw = NULL, md[SHA256_DIGEST_LENGTH];
	size_t pay_len, rawlen;
	json_t *pay = NULL, *prev_owner, *new_owner, *v;
	json_int_t n;
	EVP_PKEY *owner = NULL;
	bool owner_signed;
	int rc = DEVID_EINVAL;

	if (!json_is_object(rec)) {
		devid_error_set(e, rc, "not a JSON object");
		goto out;
	}
	if (json_only_keys(rec, rec_keys, "record", e) != 0 ||
	    json_get_str(rec, "payload", 1, MAX_DESCRIPTOR_SIZE * 2, true, &pay_b64, &pay_len,
		"record", e) != 0)
		goto out;
	if (b64url_decode(pay_b64, pay_len, &raw, &rawlen) != 0) {
		devid_error_set(e, rc, "payload is not base64url");
		goto out;
	}
	if ((pay = json_parse(raw, rawlen, "payload", e)) == NULL)
		goto out;
	if (!json_is_object(pay)) {
		devid_error_set(e, rc, "payload is not a JSON object");
		goto out;
	}
	if (json_only_keys(pay, pay_keys, "payload", e) != 0 ||
	    json_get_int(pay, "version", CUSTODY_VERSION, CUSTODY_VERSION, &n, "payload", e) != 0 ||
	    json_get_int(pay, "seq", 1, MAX_CUSTODY_RECORDS, &n, "payload", e) != 0)
		goto out;
	if ((size_t)n != i) {
		devid_error_set(
		    e, rc, "seq is %lld, not its place in the chain (%zu)", (long long)n, i);
		goto out;
	}
	if (json_get_int(pay, "count", 0, INT64_MAX, &n, "payload", e) != 0 ||
	    json_get_str(pay, "event", 1, 16, true, &ev, NULL, "payload", e) != 0 ||
	    json_get_str(pay, "vendor", 1, MAX_NAME_LEN, true, &s, NULL, "payload", e) != 0)
		goto out;
	if (strcmp(s, vendor) != 0) {
		devid_error_set(e, rc, "vendor \"%s\" is not the chain's \"%s\"", s, vendor);
		goto out;
	}
	if (json_get_str(pay, "batch", 1, MAX_NAME_LEN, true, &s, NULL, "payload", e) != 0)
		goto out;
	if (strcmp(s, batch) != 0) {
		devid_error_set(e, rc, "batch \"%s\" is not the chain's \"%s\"", s, batch);
		goto out;
	}
	if (json_get_str(pay, "at", 1, MAX_TIMESTAMP_LEN, true, &s, NULL, "payload", e) != 0)
		goto out;
	v = json_object_get(pay, "descriptorSha256");
	if (v == NULL ||
	    !(json_is_null(v) || (json_is_string(v) && is_hex64(json_string_value(v))))) {
		devid_error_set(e, rc, "descriptorSha256 is not 64 hex digits or null");
		goto out;
	}
	if (json_get_str(pay, "manifestSha256", 64, 64, true, &s, NULL, "payload", e) != 0)
		goto out;
	if (!is_hex64(s) || (i > 1 && strcmp(s, l->manifest) != 0)) {
		devid_error_set(e, rc, "manifestSha256 is not the chain's");
		goto out;
	}
	snprintf(l->manifest, sizeof(l->manifest), "%s", s);
	if (json_get_str(pay, "prev", 64, 64, true, &s, NULL, "payload", e) != 0)
		goto out;
	if (strcmp(s, i == 1 ? ZERO_HASH : l->hash) != 0) {
		rc = devid_error_set(e, DEVID_ECRYPTO,
		    "prev does not match the SHA-256 of record %zu's payload: a record is missing "
		    "or out of order",
		    i - 1);
		goto out;
	}
	prev_owner = json_object_get(pay, "previousOwner");
	new_owner = json_object_get(pay, "newOwner");
	if (prev_owner == NULL || new_owner == NULL) {
		devid_error_set(e, rc, "previousOwner or newOwner is missing");
		goto out;
	}
	if (i == 1 ? !json_is_null(prev_owner) : !json_equal(prev_owner, l->new_owner)) {
		rc = devid_error_set(e, DEVID_ECRYPTO,
		    i == 1 ? "the first record has a previousOwner"
			   : "previousOwner is not the new owner of the record before");
		goto out;
	}
	if (party_check(new_owner, "newOwner", e) != 0)
		goto out;
	if ((rc = event_check(ev, i, i == 1 ? NULL : prev_owner, new_owner, e)) != 0)
		goto out;
	rc = DEVID_EINVAL;
	v = json_object_get(pay, "ownerSigned");
	if (!json_is_boolean(v)) {
		devid_error_set(e, rc, "ownerSigned is not a boolean");
		goto out;
	}
	owner_signed = json_is_true(v);
	if (owner_signed) {
		v = json_object_get(prev_owner, "key");
		if (!json_is_string(v) ||
		    (owner = key_from_b64(json_string_value(v), json_string_length(v))) == NULL) {
			devid_error_set(
			    e, rc, "ownerSigned, but previousOwner's key does not read");
			goto out;
		}
	}
	if ((rc = signatures_check(json_object_get(rec, "signatures"), pay_b64, pay_len, roots,
		 nroots, owner, owner_signed, e)) != 0)
		goto out;
	SHA256(raw, rawlen, md);
	hex_encode(md, sizeof(md), l->hash);
	json_decref(l->new_owner);
	l->new_owner = json_incref(new_owner);
	rc = 0;
out:
	EVP_PKEY_free(owner);
	json_decref(pay);
	free(raw);
	return rc;
}

int
custody_verify(const uint8_t *buf, size_t len, EVP_PKEY *const *roots, size_t nroots,
    struct custody_summary *s, struct devid_error *e)
{
	static const char *const doc_keys[] = {"vendor", "batch", "records", NULL};
	struct link l = {.new_owner = NULL};
	const char *vendor, *batch;
	json_t *root = NULL, *recs;
	int rc = DEVID_EINVAL;

	memset(s, 0, sizeof(*s));
	if (len > MAX_CUSTODY_SIZE) {
		devid_error_set(e, rc, "custody chain: %zu bytes, limit %d", len, MAX_CUSTODY_SIZE);
		goto out;
	}
	if ((root = json_parse(buf, len, "custody chain", e)) == NULL)
		goto out;
	if (!json_is_object(root)) {
		devid_error_set(e, rc, "custody chain: not a JSON object");
		goto out;
	}
	if (json_only_keys(root, doc_keys, "custody chain", e) != 0 ||
	    json_get_str(
		root, "vendor", 1, MAX_NAME_LEN, true, &vendor, NULL, "custody chain", e) != 0 ||
	    json_get_str(root, "batch", 1, MAX_NAME_LEN, true, &batch, NULL, "custody chain", e) !=
		0 ||
	    json_get_arr(root, "records", MAX_CUSTODY_RECORDS, &recs, "custody chain", e) != 0)
		goto out;
	if (json_array_size(recs) == 0) {
		devid_error_set(e, rc, "custody chain: no records");
		goto out;
	}
	for (size_t i = 0; i < json_array_size(recs); i++) {
		if ((rc = record_check(json_array_get(recs, i), i + 1, vendor, batch, roots, nroots,
			 &l, e)) != 0) {
			devid_error_prefix(e, "record %zu", i + 1);
			goto out;
		}
	}
	s->records = json_array_size(recs);
	snprintf(s->vendor, sizeof(s->vendor), "%s", vendor);
	snprintf(s->batch, sizeof(s->batch), "%s", batch);
	snprintf(s->owner, sizeof(s->owner), "%s",
	    json_string_value(json_object_get(l.new_owner, "tenant")));
	rc = 0;
out:
	json_decref(l.new_owner);
	json_decref(root);
	return rc;
}
