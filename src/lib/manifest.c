#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include "base64.h"
#include "claim.h"
#include "json.h"
#include "manifest.h"
#include "banned.h"

struct trusted_signer {
	X509 *cert;
	EVP_PKEY *pub; /* borrowed from cert */
	uint8_t x5t[32];
};

struct vendor_trust {
	X509_STORE *roots;
	struct trusted_signer *signers;
	int nsigners;
};

void
vendor_trust_free(struct vendor_trust *t)
{
	if (t == NULL)
		return;
	X509_STORE_free(t->roots);
	for (int i = 0; i < t->nsigners; i++)
		X509_free(t->signers[i].cert);
	free(t->signers);
	free(t);
}

struct vendor_trust *
vendor_trust_new(STACK_OF(X509) *roots, STACK_OF(X509) *signers, struct devid_error *e)
{
	struct x509_verify_opts opts = {.purpose = X509_PURPOSE_ANY};
	struct vendor_trust *t;
	char curve[32];

	if ((t = calloc(1, sizeof(*t))) == NULL ||
	    (t->signers = calloc((size_t)sk_X509_num(signers) + 1, sizeof(*t->signers))) == NULL) {
		devid_error_set(e, DEVID_ENOMEM, "trust: out of memory");
		goto fail;
	}
	if ((t->roots = x509_store_new(roots, e)) == NULL)
		goto fail;
	for (int i = 0; i < sk_X509_num(signers); i++) {
		struct trusted_signer *s = &t->signers[i];
		X509 *x = sk_X509_value(signers, i);

		s->pub = X509_get0_pubkey(x);
		if (s->pub == NULL || EVP_PKEY_get_base_id(s->pub) != EVP_PKEY_EC ||
		    EVP_PKEY_get_group_name(s->pub, curve, sizeof(curve), NULL) != 1 ||
		    strcmp(curve, "prime256v1") != 0) {
			devid_error_set(
			    e, DEVID_EINVAL, "manifest signer %d: key is not P-256 (ES256)", i);
			goto fail;
		}
		if (x509_chain_verify(t->roots, x, NULL, &opts, e) != 0) {
			devid_error_prefix(
			    e, "manifest signer %d does not chain to the vendor root", i);
			goto fail;
		}
		if (x509_sha256(x, s->x5t) != 0) {
			devid_error_set(e, DEVID_ECRYPTO, "manifest signer %d: cannot hash", i);
			goto fail;
		}
		X509_up_ref(x);
		s->cert = x;
		t->nsigners++;
	}
	return t;
fail:
	vendor_trust_free(t);
	return NULL;
}

/* Names the signer that is not trusted by its x5t#S256, as the JWS header carries it. */
static int
signer_untrusted(const char *what, const uint8_t x5t[32], struct devid_error *e)
{
	char *b64 = b64url_encode(x5t, 32);

	devid_error_set(e, DEVID_ECRYPTO, "%s not trusted (x5t#S256 %s matches no trusted signer)",
	    what, b64 != NULL ? b64 : "?");
	free(b64);
	return DEVID_ECRYPTO;
}

X509 *
vendor_trust_get0_signer(const struct vendor_trust *t, const uint8_t x5t[32])
{
	for (int i = 0; i < t->nsigners; i++)
		if (CRYPTO_memcmp(t->signers[i].x5t, x5t, 32) == 0)
			return t->signers[i].cert;
	return NULL;
}

void
manifest_entry_free(struct manifest_entry *m)
{
	if (m == NULL)
		return;
	X509_free(m->cert);
	sk_X509_pop_free(m->chain, X509_free);
	free(m->prot_b64);
	free(m->payload_b64);
	free(m->sig_b64);
	free(m->json);
	free(m);
}

/* Copies a JWS member (a base64url string) out of obj. */
static int
get_b64_member(const json_t *obj, const char *key, size_t max, char **out, size_t *len,
    const char *what, struct devid_error *e)
{
	const char *s;

	if (json_get_str(obj, key, 1, max, true, &s, len, what, e) != 0)
		return DEVID_EINVAL;
	if ((*out = strdup(s)) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "%s: out of memory", what);
	return 0;
}

/* Reads x5c (standard base64 DER certificates) into the entry. */
static int
entry_parse_x5c(
    struct manifest_entry *m, const json_t *jwk, const char *what, struct devid_error *e)
{
	json_t *x5c, *v;
	uint8_t *der = NULL;
	size_t derlen, i;
	char name[32];
	X509 *x;
	int rc = DEVID_EINVAL;

	if (json_get_arr(jwk, "x5c", MAX_X5C_CERTS, &x5c, what, e) != 0)
		return rc;
	if ((m->chain = sk_X509_new_null()) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "%s: out of memory", what);
	json_array_foreach(x5c, i, v)
	{
		snprintf(name, sizeof(name), "x5c[%zu]", i);
		if (!json_is_string(v) || json_string_length(v) > MAX_CERT_DER * 4 / 3 + 4)
			return devid_error_set(
			    e, rc, "%s: %s is not a string of base64 DER", what, name);
		if (b64_decode(json_string_value(v), json_string_length(v), 0, &der, &derlen) != 0)
			return devid_error_set(e, rc, "%s: %s is not standard base64", what, name);
		x = x509_from_der(der, derlen, name, e);
		free(der);
		if (x == NULL) {
			devid_error_prefix(e, "%s", what);
			return rc;
		}
		if (i == 0)
			m->cert = x;
		else if (!sk_X509_push(m->chain, x)) {
			X509_free(x);
			return devid_error_set(e, DEVID_ENOMEM, "%s: out of memory", what);
		}
	}
	return 0;
}

/* Reads the identity JWK (the one carrying x5c) of publicKeySet. */
static int
entry_parse_keys(
    struct manifest_entry *m, const json_t *payload, const char *what, struct devid_error *e)
{
	json_t *pks, *keys, *k, *ident = NULL;
	const char *kty, *crv, *x, *y;
	size_t i, xl, yl, coord, dl;
	uint8_t *dx = NULL, *dy = NULL;
	int rc = DEVID_EINVAL;

	if (json_get_obj(payload, "publicKeySet", true, &pks, what, e) != 0 ||
	    json_get_arr(pks, "keys", MAX_JWKS, &keys, what, e) != 0)
		return rc;
	json_array_foreach(keys, i, k)
	{
		if (!json_is_object(k))
			return devid_error_set(
			    e, rc, "%s: publicKeySet.keys[%zu] is not an object", what, i);
		if (json_object_get(k, "x5c") != NULL) {
			if (ident != NULL)
				return devid_error_set(e, rc,
				    "%s: more than one key in publicKeySet carries x5c", what);
			ident = k;
		}
	}
	if (ident == NULL)
		return devid_error_set(e, rc, "%s: no key in publicKeySet carries x5c", what);
	if (json_get_str(ident, "kty", 1, 8, true, &kty, NULL, what, e) != 0 ||
	    json_get_str(ident, "crv", 1, 8, true, &crv, NULL, what, e) != 0 ||
	    json_get_str(ident, "x", 1, 64, true, &x, &xl, what, e) != 0 ||
	    json_get_str(ident, "y", 1, 64, true, &y, &yl, what, e) != 0)
		return rc;
	if (strcmp(kty, "EC") != 0)
		return devid_error_set(e, rc, "%s: JWK kty \"%s\" is not EC", what, kty);
	if (strcmp(crv, "P-256") == 0)
		coord = 32;
	else if (strcmp(crv, "P-384") == 0)
		coord = 48;
	else
		return devid_error_set(
		    e, rc, "%s: JWK crv \"%s\" is not P-256 or P-384", what, crv);
	if (b64url_decode(x, xl, &dx, &dl) != 0 || dl != coord) {
		devid_error_set(e, rc, "%s: JWK x is not %zu bytes of base64url", what, coord);
		goto out;
	}
	if (b64url_decode(y, yl, &dy, &dl) != 0 || dl != coord) {
		devid_error_set(e, rc, "%s: JWK y is not %zu bytes of base64url", what, coord);
		goto out;
	}
	memcpy(m->jwk_xy, dx, coord);
	memcpy(m->jwk_xy + coord, dy, coord);
	m->jwk_xy_len = 2 * coord;
	rc = entry_parse_x5c(m, ident, what, e);
out:
	free(dx);
	free(dy);
	return rc;
}

int
manifest_entry_parse(
    const json_t *obj, size_t index, struct manifest_entry **out, struct devid_error *e)
{
	struct manifest_entry *m = NULL;
	json_t *payload = NULL, *hdr;
	uint8_t *raw = NULL;
	size_t plen, rawlen, n;
	const char *uid, *huid, *gid;
	char what[48];
	json_int_t version;
	int rc = DEVID_EINVAL;

	*out = NULL;
	snprintf(what, sizeof(what), "entry %zu", index);
	if (!json_is_object(obj)) {
		devid_error_set(e, rc, "%s: not a JSON object", what);
		goto out;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "%s: out of memory", what);
		goto out;
	}
	if (get_b64_member(obj, "protected", MAX_PROTECTED_SIZE * 2, &m->prot_b64, &n, what, e) ||
	    get_b64_member(
		obj, "payload", MAX_PAYLOAD_SIZE * 4 / 3 + 4, &m->payload_b64, &plen, what, e) ||
	    get_b64_member(obj, "signature", 128, &m->sig_b64, &n, what, e))
		goto out;
	if (jws_header_parse(m->prot_b64, strlen(m->prot_b64), &m->hdr, e) != 0) {
		devid_error_prefix(e, "%s", what);
		goto out;
	}
	if (b64url_decode(m->payload_b64, plen, &raw, &rawlen) != 0) {
		devid_error_set(e, rc, "%s: payload is not unpadded base64url", what);
		goto out;
	}
	if ((payload = json_parse(raw, rawlen, what, e)) == NULL)
		goto out;
	if (!json_is_object(payload)) {
		devid_error_set(e, rc, "%s: payload is not a JSON object", what);
		goto out;
	}
	if (json_get_int(payload, "version", 1, 3, &version, what, e) != 0 ||
	    json_get_str(payload, "uniqueId", 1, MAX_SERIAL_LEN, true, &uid, &n, what, e) != 0)
		goto out;
	memcpy(m->unique_id, uid, n + 1);
	switch (json_get_str(payload, "groupId", 1, MAX_NAME_LEN, false, &gid, &n, what, e)) {
	case 0:
		memcpy(m->group_id, gid, n + 1);
		break;
	case DEVID_ENOTFOUND:
		break;
	default:
		goto out;
	}
	if (json_get_obj(obj, "header", true, &hdr, what, e) != 0 ||
	    json_get_str(hdr, "uniqueId", 1, MAX_SERIAL_LEN, true, &huid, NULL, what, e) != 0)
		goto out;
	if (strcmp(huid, m->unique_id) != 0) {
		devid_error_set(e, rc,
		    "%s: header.uniqueId \"%s\" differs from the payload's \"%s\"", what, huid,
		    m->unique_id);
		goto out;
	}
	if ((rc = entry_parse_keys(m, payload, what, e)) != 0)
		goto out;
	rc = DEVID_EINVAL;
	if (x509_udid(m->cert, m->udid) != 0) {
		devid_error_set(e, rc, "%s: cannot hash the certificate key", what);
		goto out;
	}
	if ((m->json = json_dump_compact(obj)) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "%s: out of memory", what);
		goto out;
	}
	*out = m;
	m = NULL;
	rc = 0;
out:
	free(raw);
	json_decref(payload);
	manifest_entry_free(m);
	return rc;
}

int
manifest_entry_parse_bytes(
    const uint8_t *p, size_t n, struct manifest_entry **out, struct devid_error *e)
{
	json_t *obj;
	int rc;

	*out = NULL;
	if (n > MAX_ENTRY_SIZE)
		return devid_error_set(
		    e, DEVID_EINVAL, "entry: %zu bytes, limit %d", n, MAX_ENTRY_SIZE);
	if ((obj = json_parse(p, n, "entry", e)) == NULL)
		return DEVID_EINVAL;
	rc = manifest_entry_parse(obj, 0, out, e);
	json_decref(obj);
	return rc;
}

/* The certificate's public key as x || y. */
static int
cert_key_xy(X509 *x, uint8_t *out, size_t *len)
{
	uint8_t pt[1 + 2 * 48];
	size_t n = 0;
	EVP_PKEY *pk = X509_get0_pubkey(x);

	if (pk == NULL ||
	    EVP_PKEY_get_octet_string_param(
		pk, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt), &n) != 1 ||
	    n < 3 || pt[0] != 0x04)
		return DEVID_ECRYPTO;
	memcpy(out, pt + 1, n - 1);
	*len = n - 1;
	return 0;
}

int
manifest_entry_verify(
    const struct manifest_entry *m, const struct vendor_trust *t, struct devid_error *e)
{
	struct x509_verify_opts opts = {.purpose = X509_PURPOSE_SSL_CLIENT};
	uint8_t xy[2 * 48];
	size_t xylen;
	X509 *signer;

	if ((signer = vendor_trust_get0_signer(t, m->hdr.x5t_s256)) == NULL)
		return signer_untrusted("manifest signer", m->hdr.x5t_s256, e);
	if (jws_verify(X509_get0_pubkey(signer), m->prot_b64, strlen(m->prot_b64), m->payload_b64,
		strlen(m->payload_b64), m->sig_b64, strlen(m->sig_b64), e) != 0) {
		devid_error_prefix(e, "JWS (RFC 7515 5.2)");
		return DEVID_ECRYPTO;
	}
	if (x509_check_idevid(m->cert, e) != 0) {
		devid_error_prefix(e, "x5c[0] birth certificate");
		return DEVID_EINVAL;
	}
	if (x509_chain_verify(t->roots, m->cert, m->chain, &opts, e) != 0) {
		devid_error_prefix(e, "x5c does not reach a trusted vendor root");
		return DEVID_ECRYPTO;
	}
	if (cert_key_xy(m->cert, xy, &xylen) != 0 || xylen != m->jwk_xy_len ||
	    CRYPTO_memcmp(xy, m->jwk_xy, xylen) != 0)
		return devid_error_set(
		    e, DEVID_ECRYPTO, "JWK x/y differ from the key in the x5c[0] certificate");
	return 0;
}

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
	if (get_b64_member(
		root, "protected", MAX_PROTECTED_SIZE * 2, &d->prot_b64, &len, what, e) ||
	    get_b64_member(root, "payload", MAX_DESCRIPTOR_SIZE, &d->payload_b64, &len, what, e) ||
	    get_b64_member(root, "signature", 128, &d->sig_b64, &rawlen, what, e))
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
		return signer_untrusted("batch descriptor: signer", d->hdr.x5t_s256, e);
	if (jws_verify(X509_get0_pubkey(signer), d->prot_b64, strlen(d->prot_b64), d->payload_b64,
		strlen(d->payload_b64), d->sig_b64, strlen(d->sig_b64), e) != 0) {
		devid_error_prefix(e, "batch descriptor: JWS (RFC 7515 5.2)");
		return DEVID_ECRYPTO;
	}
	return 0;
}

void
manifest_report_release(struct manifest_report *r)
{
	free(r->rejects);
	memset(r, 0, sizeof(*r));
}

static void
report_reject(struct manifest_report *r, size_t index, const char *uid, const char *msg)
{
	struct manifest_reject *x;

	r->rejected++;
	if (r->nrejects >= MAX_REPORT_ERRORS)
		return;
	if (r->rejects == NULL &&
	    (r->rejects = calloc(MAX_REPORT_ERRORS, sizeof(*r->rejects))) == NULL)
		return;
	x = &r->rejects[r->nrejects++];
	x->index = index;
	/* an unchecked uniqueId that does not fit is left out rather than cut */
	if (uid != NULL && strlen(uid) < sizeof(x->unique_id))
		memcpy(x->unique_id, uid, strlen(uid) + 1);
	snprintf(x->message, sizeof(x->message), "%s", msg);
}

static int
reject_cmp(const void *a, const void *b)
{
	const struct manifest_reject *x = a, *y = b;

	return x->index < y->index ? -1 : x->index > y->index;
}

json_t *
manifest_report_json(const struct manifest_report *r)
{
	json_t *errs = json_array(), *o;

	for (size_t i = 0; errs != NULL && i < r->nrejects; i++) {
		o = json_pack("{s:I, s:s, s:s}", "index", (json_int_t)r->rejects[i].index,
		    "uniqueId", r->rejects[i].unique_id, "message", r->rejects[i].message);
		if (o == NULL || json_array_append_new(errs, o) != 0) {
			json_decref(errs);
			return NULL;
		}
	}
	return json_pack("{s:I, s:I, s:I, s:s?, s:o}", "total", (json_int_t)r->total, "accepted",
	    (json_int_t)r->accepted, "rejected", (json_int_t)r->rejected, "batchError",
	    r->batch_error[0] ? r->batch_error : NULL, "errors", errs);
}

void
manifest_free(struct manifest *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++)
		manifest_entry_free(m->entries[i]);
	free(m->entries);
	free(m);
}

int
manifest_from_json(
    const json_t *root, struct manifest **out, struct manifest_report *r, struct devid_error *e)
{
	struct devid_error ee;
	struct manifest *m = NULL;
	json_t *v;
	size_t i;

	*out = NULL;
	if (!json_is_array(root) || json_array_size(root) == 0)
		return devid_error_set(
		    e, DEVID_EINVAL, "manifest: not a non-empty JSON array of entries");
	if (json_array_size(root) > MAX_BATCH_COUNT)
		return devid_error_set(e, DEVID_EINVAL, "manifest: %zu entries, limit %d",
		    json_array_size(root), MAX_BATCH_COUNT);
	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (m->entries = calloc(json_array_size(root), sizeof(*m->entries))) == NULL) {
		manifest_free(m);
		return devid_error_set(e, DEVID_ENOMEM, "manifest: out of memory");
	}
	m->n = json_array_size(root);
	r->total = m->n;
	json_array_foreach(root, i, v)
	{
		devid_error_clear(&ee);
		if (manifest_entry_parse(v, i, &m->entries[i], &ee) != 0) {
			const char *uid = NULL;
			json_t *h = json_object_get(v, "header");

			if (json_is_object(h) && json_is_string(json_object_get(h, "uniqueId")))
				uid = json_string_value(json_object_get(h, "uniqueId"));
			report_reject(r, i, uid, ee.msg);
		}
	}
	*out = m;
	return 0;
}

int
manifest_parse(const uint8_t *p, size_t n, struct manifest **out, struct manifest_report *r,
    struct devid_error *e)
{
	json_t *root;
	int rc;

	*out = NULL;
	if (n > MAX_MANIFEST_SIZE)
		return devid_error_set(
		    e, DEVID_EINVAL, "manifest: %zu bytes, limit %zu", n, MAX_MANIFEST_SIZE);
	if ((root = json_parse(p, n, "manifest", e)) == NULL)
		return DEVID_EINVAL;
	rc = manifest_from_json(root, out, r, e);
	json_decref(root);
	return rc;
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

struct check_job {
	const struct manifest *m;
	const struct vendor_trust *t;
	const char *batch_id;
	bool require_group; /* a vendor batch: every entry names it */
	atomic_size_t next;
	char (*msgs)[DEVID_ERROR_MAX]; /* per entry, "" when accepted */
};

static void *
check_worker(void *arg)
{
	struct check_job *j = arg;
	struct devid_error e;
	size_t i;

	while ((i = atomic_fetch_add(&j->next, 1)) < j->m->n) {
		const struct manifest_entry *me = j->m->entries[i];

		if (me == NULL)
			continue;
		devid_error_clear(&e);
		if (manifest_entry_verify(me, j->t, &e) != 0)
			snprintf(j->msgs[i], DEVID_ERROR_MAX, "entry %zu: %s", i, e.msg);
		else if (j->batch_id != NULL && me->group_id[0] == '\0' && j->require_group)
			snprintf(j->msgs[i], DEVID_ERROR_MAX,
			    "entry %zu: groupId is missing; the batch id is \"%s\"", i,
			    j->batch_id);
		else if (j->batch_id != NULL && me->group_id[0] != '\0' &&
		    strcmp(me->group_id, j->batch_id) != 0)
			snprintf(j->msgs[i], DEVID_ERROR_MAX,
			    "entry %zu: groupId \"%s\" differs from the batch id \"%s\"", i,
			    me->group_id, j->batch_id);
	}
	return NULL;
}

static int
udid_cmp(const void *a, const void *b)
{
	const struct manifest_entry *const *x = a, *const *y = b;

	return strcmp((*x)->udid, (*y)->udid);
}

static int
uid_cmp(const void *a, const void *b)
{
	const struct manifest_entry *const *x = a, *const *y = b;

	return strcmp((*x)->unique_id, (*y)->unique_id);
}

/* Rejects every entry whose chip (by cmp) appeared earlier in the batch. */
static void
check_duplicates(const struct manifest *m, int (*cmp)(const void *, const void *), const char *what,
    char (*msgs)[DEVID_ERROR_MAX])
{
	const struct manifest_entry **v;
	size_t n = 0;

	if ((v = calloc(m->n + 1, sizeof(*v))) == NULL)
		return;
	for (size_t i = 0; i < m->n; i++)
		if (m->entries[i] != NULL)
			v[n++] = m->entries[i];
	qsort(v, n, sizeof(*v), cmp);
	for (size_t i = 1; i < n; i++) {
		if (cmp(&v[i - 1], &v[i]) == 0) {
			/* find the entry's index to report it */
			for (size_t k = 0; k < m->n; k++) {
				if (m->entries[k] == v[i] && msgs[k][0] == '\0')
					snprintf(msgs[k], DEVID_ERROR_MAX,
					    "entry %zu: %s appears more than once in the batch", k,
					    what);
			}
		}
	}
	free(v);
}

int
manifest_check_batch(const struct manifest *m, const struct batch_descriptor *d,
    const char *batch_id, const struct vendor_trust *t, int nthreads, struct manifest_report *r)
{
	struct check_job j = {.m = m,
	    .t = t,
	    .batch_id = d != NULL ? d->batch_id : batch_id,
	    .require_group = d != NULL};
	struct devid_error e;
	pthread_t tid[64];
	int started = 0, rc = DEVID_EINVAL;

	if (nthreads < 1)
		nthreads = 1;
	if (nthreads > 64)
		nthreads = 64;
	atomic_init(&j.next, 0);
	if ((j.msgs = calloc(m->n + 1, sizeof(*j.msgs))) == NULL) {
		snprintf(r->batch_error, sizeof(r->batch_error), "out of memory");
		return DEVID_ENOMEM;
	}
	r->total = m->n;
	devid_error_clear(&e);
	if (d != NULL && batch_descriptor_verify(d, t, &e) != 0)
		snprintf(r->batch_error, sizeof(r->batch_error), "%s", e.msg);
	for (int i = 1; i < nthreads; i++)
		if (pthread_create(&tid[started], NULL, check_worker, &j) == 0)
			started++;
	check_worker(&j);
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	check_duplicates(m, udid_cmp, "the chip key (UDID)", j.msgs);
	check_duplicates(m, uid_cmp, "the uniqueId", j.msgs);
	r->accepted = 0;
	for (size_t i = 0; i < m->n; i++) {
		if (m->entries[i] == NULL)
			continue;
		if (j.msgs[i][0] != '\0')
			report_reject(r, i, m->entries[i]->unique_id, j.msgs[i]);
		else
			r->accepted++;
	}
	if (r->rejects != NULL)
		qsort(r->rejects, r->nrejects, sizeof(*r->rejects), reject_cmp);
	if (d != NULL && r->batch_error[0] == '\0' && (size_t)d->count != m->n)
		snprintf(r->batch_error, sizeof(r->batch_error),
		    "batch descriptor: count is %lld but the manifest has %zu entries", d->count,
		    m->n);
	if (r->batch_error[0] == '\0' && r->rejected == 0 && r->accepted == m->n)
		rc = 0;
	free(j.msgs);
	return rc;
}
