/* SPDX-License-Identifier: Apache-2.0 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "base64.h"
#include "ekcert.h"
#include "fastjson.h"
#include "json.h"
#include "manifest_entry.h"
#include "x509_path.h"
#include "banned.h"

/* Distinct x5c[1..] certificates of one manifest decoded once and shared. */
#define X5C_CACHE_SIZE 64

void
manifest_entry_free(struct manifest_entry *m)
{
	if (m == NULL)
		return;
	X509_free(m->cert);
	free(m->cert_der);
	sk_X509_pop_free(m->chain, X509_free);
	free(m->prot_b64);
	free(m->payload_b64);
	free(m->sig_b64);
	free(m->json);
	free(m);
}

/*
 * The x5c[1..] certificates of one manifest parse, decoded once each and shared, keyed by
 * their base64 text. x509_from_der() is a function of the bytes; only its messages name the
 * position, so only certificates that decoded are kept.
 */
struct x5c_cache {
	pthread_mutex_t lock;
	struct {
		char *b64;
		size_t len;
		X509 *x;
	} v[X5C_CACHE_SIZE];
	int n;
};

struct x5c_cache *
x5c_cache_new(void)
{
	struct x5c_cache *c = calloc(1, sizeof(*c));

	if (c != NULL && pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c);
		c = NULL;
	}
	return c;
}

void
x5c_cache_free(struct x5c_cache *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i < c->n; i++) {
		free(c->v[i].b64);
		X509_free(c->v[i].x);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/*
 * A new reference to the certificate in b64 (len characters), decoded or shared; NULL with
 * *bad_b64 set when b64 is not standard base64, else with e set by x509_from_der().
 */
static X509 *
x5c_decode(struct x5c_cache *c, const char *b64, size_t len, const char *name, bool *bad_b64,
    struct devid_error *e)
{
	uint8_t *der = NULL;
	size_t derlen;
	X509 *x = NULL;
	int i;

	*bad_b64 = false;
	if (c != NULL) {
		pthread_mutex_lock(&c->lock);
		for (i = 0; i < c->n; i++)
			if (c->v[i].len == len && memcmp(c->v[i].b64, b64, len) == 0)
				break;
		if (i < c->n) {
			x = c->v[i].x;
			X509_up_ref(x);
			pthread_mutex_unlock(&c->lock);
			return x;
		}
	}
	if (b64_decode(b64, len, 0, &der, &derlen) != 0)
		*bad_b64 = true;
	else if ((x = x509_from_der(der, derlen, name, e)) != NULL && c != NULL &&
	    c->n < X5C_CACHE_SIZE && (c->v[c->n].b64 = malloc(len + 1)) != NULL) {
		memcpy(c->v[c->n].b64, b64, len);
		c->v[c->n].b64[len] = '\0';
		c->v[c->n].len = len;
		c->v[c->n].x = x;
		X509_up_ref(x);
		c->n++;
	}
	if (c != NULL)
		pthread_mutex_unlock(&c->lock);
	free(der);
	return x;
}

/* Reads x5c (standard base64 DER certificates) into the entry. */
static int
entry_parse_x5c(struct manifest_entry *m, const json_t *jwk, struct x5c_cache *cache,
    const char *what, struct devid_error *e)
{
	json_t *x5c, *v;
	uint8_t *der = NULL;
	size_t derlen, i;
	char name[32];
	bool bad_b64;
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
		if (i > 0) {
			if ((x = x5c_decode(cache, json_string_value(v), json_string_length(v),
				 name, &bad_b64, e)) == NULL) {
				if (bad_b64)
					return devid_error_set(
					    e, rc, "%s: %s is not standard base64", what, name);
				devid_error_prefix(e, "%s", what);
				return rc;
			}
			if (!sk_X509_push(m->chain, x)) {
				X509_free(x);
				return devid_error_set(e, DEVID_ENOMEM, "%s: out of memory", what);
			}
			continue;
		}
		if (b64_decode(json_string_value(v), json_string_length(v), 0, &der, &derlen) != 0)
			return devid_error_set(e, rc, "%s: %s is not standard base64", what, name);
		/* the birth certificate without its key when that stands for x509_from_der */
		if ((x = batchcheck_decode_nokey(der, derlen)) == NULL &&
		    (x = x509_from_der(der, derlen, name, e)) == NULL) {
			free(der);
			devid_error_prefix(e, "%s", what);
			return rc;
		}
		m->cert = x;
		m->cert_der = der;
		m->cert_der_len = derlen;
		der = NULL;
	}
	return 0;
}

/* An unsigned big-endian integer of a JWK (RFC 7518 6.3.1), without its leading zeros. */
static int
jwk_uint(const json_t *jwk, const char *name, size_t max, uint8_t *out, size_t *len,
    const char *what, struct devid_error *e)
{
	const char *b64;
	uint8_t *d = NULL;
	size_t bl, dl, skip = 0;
	int rc = DEVID_EINVAL;

	if (json_get_str(jwk, name, 1, 4 * (max + 1) / 3 + 4, true, &b64, &bl, what, e) != 0)
		return rc;
	if (b64url_decode(b64, bl, &d, &dl) != 0) {
		devid_error_set(e, rc, "%s: JWK %s is not base64url", what, name);
		goto out;
	}
	while (skip < dl && d[skip] == 0)
		skip++;
	if (dl - skip == 0 || dl - skip > max) {
		devid_error_set(e, rc, "%s: JWK %s is not 1 to %zu bytes", what, name, max);
		goto out;
	}
	memcpy(out, d + skip, dl - skip);
	*len = dl - skip;
	rc = 0;
out:
	free(d);
	return rc;
}

/* An EC JWK: crv P-256 or P-384, x and y. */
static int
jwk_ec(struct manifest_entry *m, const json_t *ident, const char *what, struct devid_error *e)
{
	const char *crv, *x, *y;
	size_t xl, yl, coord, dl;
	uint8_t *dx = NULL, *dy = NULL;
	int rc = DEVID_EINVAL;

	if (json_get_str(ident, "crv", 1, 8, true, &crv, NULL, what, e) != 0 ||
	    json_get_str(ident, "x", 1, 64, true, &x, &xl, what, e) != 0 ||
	    json_get_str(ident, "y", 1, 64, true, &y, &yl, what, e) != 0)
		return rc;
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
	rc = 0;
out:
	free(dx);
	free(dy);
	return rc;
}

/* Reads the identity JWK (the one carrying x5c) of publicKeySet. */
static int
entry_parse_keys(struct manifest_entry *m, const json_t *payload, struct x5c_cache *cache,
    const char *what, struct devid_error *e)
{
	json_t *pks, *keys, *k, *ident = NULL;
	const char *kty;
	size_t i;
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
	if (json_get_str(ident, "kty", 1, 8, true, &kty, NULL, what, e) != 0)
		return rc;
	if (strcmp(kty, "EC") == 0)
		rc = jwk_ec(m, ident, what, e);
	else if (strcmp(kty, "RSA") == 0 && m->tpm)
		rc = jwk_uint(ident, "n", EK_RSA_BYTES, m->jwk_n, &m->jwk_n_len, what, e) ||
			jwk_uint(ident, "e", EK_RSA_E_BYTES, m->jwk_e, &m->jwk_e_len, what, e)
		    ? DEVID_EINVAL
		    : 0;
	else if (strcmp(kty, "RSA") == 0)
		return devid_error_set(e, rc,
		    "%s: JWK kty \"RSA\": only a TPM entry (\"kind\": \"tpm\") has an RSA key",
		    what);
	else
		return devid_error_set(
		    e, rc, "%s: JWK kty \"%s\" is not EC%s", what, kty, m->tpm ? " or RSA" : "");
	if (rc != 0)
		return rc;
	return entry_parse_x5c(m, ident, cache, what, e);
}

void
manifest_entry_ctx_release(struct manifest_entry_ctx *c)
{
	free(c->prot);
	c->prot = NULL;
}

static int
entry_parse_header(struct manifest_entry *m, struct manifest_entry_ctx *c, struct devid_error *e)
{
	size_t len = strlen(m->prot_b64);

	if (c != NULL && c->prot != NULL && c->prot_len == len &&
	    memcmp(c->prot, m->prot_b64, len) == 0) {
		m->hdr = c->hdr;
		return 0;
	}
	if (jws_header_parse(m->prot_b64, len, &m->hdr, e) != 0)
		return DEVID_EINVAL;
	if (c != NULL) {
		manifest_entry_ctx_release(c);
		if ((c->prot = strdup(m->prot_b64)) != NULL) {
			c->prot_len = len;
			c->hdr = m->hdr;
		}
	}
	return 0;
}

int
manifest_entry_parse_ctx(const json_t *obj, size_t index, struct manifest_entry_ctx *c,
    const uint8_t *text, size_t text_len, struct manifest_entry **out, struct devid_error *e)
{
	struct manifest_entry *m = NULL;
	json_t *payload = NULL, *hdr;
	uint8_t *raw = NULL;
	size_t plen, rawlen, n;
	const char *uid, *huid, *gid, *kind;
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
	if (json_get_strdup(obj, "protected", MAX_PROTECTED_SIZE * 2, &m->prot_b64, &n, what, e) ||
	    json_get_strdup(
		obj, "payload", MAX_PAYLOAD_SIZE * 4 / 3 + 4, &m->payload_b64, &plen, what, e) ||
	    json_get_strdup(obj, "signature", 128, &m->sig_b64, &n, what, e))
		goto out;
	if (entry_parse_header(m, c, e) != 0) {
		devid_error_prefix(e, "%s", what);
		goto out;
	}
	if (b64url_decode(m->payload_b64, plen, &raw, &rawlen) != 0) {
		devid_error_set(e, rc, "%s: payload is not unpadded base64url", what);
		goto out;
	}
	if ((payload = fastjson_parse(raw, rawlen, false)) == NULL &&
	    (payload = json_parse(raw, rawlen, what, e)) == NULL)
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
	switch (json_get_str(payload, "kind", 1, 8, false, &kind, NULL, what, e)) {
	case 0:
		if (strcmp(kind, "tpm") == 0)
			m->tpm = true;
		else if (strcmp(kind, "chip") != 0) {
			devid_error_set(
			    e, rc, "%s: kind \"%s\" is not \"chip\" or \"tpm\"", what, kind);
			goto out;
		}
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
	if ((rc = entry_parse_keys(m, payload, c != NULL ? c->cache : NULL, what, e)) != 0)
		goto out;
	rc = DEVID_EINVAL;
	if (x509_udid(m->cert, m->udid) != 0) {
		devid_error_set(e, rc, "%s: cannot hash the certificate key", what);
		goto out;
	}
	if (text != NULL && fastjson_is_compact(text, text_len)) {
		if ((m->json = malloc(text_len + 1)) != NULL) {
			memcpy(m->json, text, text_len);
			m->json[text_len] = '\0';
		}
	} else
		m->json = json_dump_compact(obj);
	if (m->json == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "%s: out of memory", what);
		goto out;
	}
	/* the limit of manifest_entry_parse_bytes(), on the bytes it will be given back */
	if ((n = strlen(m->json)) > MAX_ENTRY_SIZE) {
		devid_error_set(e, rc,
		    "%s: %zu bytes as stored (compact JSON), over the limit of %d bytes for one "
		    "entry",
		    what, n, MAX_ENTRY_SIZE);
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
manifest_entry_parse(
    const json_t *obj, size_t index, struct manifest_entry **out, struct devid_error *e)
{
	return manifest_entry_parse_ctx(obj, index, NULL, NULL, 0, out, e);
}

int
manifest_entry_parse_bytes(
    const uint8_t *p, size_t n, struct manifest_entry **out, struct devid_error *e)
{
	json_t *obj;
	int rc;

	*out = NULL;
	if (n > MAX_ENTRY_SIZE)
		return devid_error_set(e, DEVID_EINVAL,
		    "entry: %zu bytes, over the limit of %d bytes for one entry", n,
		    MAX_ENTRY_SIZE);
	if ((obj = json_parse(p, n, "entry", e)) == NULL)
		return DEVID_EINVAL;
	rc = manifest_entry_parse(obj, 0, out, e);
	json_decref(obj);
	return rc;
}

/*
 * x5c[0] with its public key (a new reference): m->cert when it has one, else decoded again,
 * in full, from the DER received.
 */
static X509 *
entry_full_cert(const struct manifest_entry *m, struct devid_error *e)
{
	EVP_PKEY *key;

	ERR_set_mark();
	key = X509_get0_pubkey(m->cert);
	ERR_pop_to_mark();
	if (key != NULL) {
		X509_up_ref(m->cert);
		return m->cert;
	}
	if (m->cert_der == NULL) {
		devid_error_set(e, DEVID_EINVAL, "x5c[0]: no public key");
		return NULL;
	}
	return x509_from_der(m->cert_der, m->cert_der_len, "x5c[0]", e);
}

/* Rule 4 (docs/formats.md): ES256 over the exact protected.payload bytes received. */
static int
entry_verify_jws(const struct manifest_entry *m, X509 *signer, struct devid_error *e)
{
	if (jws_verify(X509_get0_pubkey(signer), m->prot_b64, strlen(m->prot_b64), m->payload_b64,
		strlen(m->payload_b64), m->sig_b64, strlen(m->sig_b64), e) != 0) {
		devid_error_prefix(e, "JWS (RFC 7515 5.2)");
		return DEVID_ECRYPTO;
	}
	return 0;
}

/* Whether the JWK is the key of leaf (an RSA JWK: n and e; EC: x and y). */
static bool
entry_jwk_matches(const struct manifest_entry *m, X509 *leaf)
{
	EVP_PKEY *key = X509_get0_pubkey(leaf);
	BIGNUM *n = NULL, *ex = NULL;
	uint8_t buf[2 * 48 > EK_RSA_BYTES ? 2 * 48 : EK_RSA_BYTES];
	size_t len;
	bool ok = false;

	if (m->jwk_xy_len != 0)
		return batchcheck_key_xy(key, buf, &len) == 0 && len == m->jwk_xy_len &&
		    CRYPTO_memcmp(buf, m->jwk_xy, len) == 0;
	if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA ||
	    EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
	    EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &ex) != 1)
		goto out;
	ok = (size_t)BN_num_bytes(n) == m->jwk_n_len && BN_bn2bin(n, buf) == (int)m->jwk_n_len &&
	    CRYPTO_memcmp(buf, m->jwk_n, m->jwk_n_len) == 0 &&
	    (size_t)BN_num_bytes(ex) == m->jwk_e_len && BN_bn2bin(ex, buf) == (int)m->jwk_e_len &&
	    CRYPTO_memcmp(buf, m->jwk_e, m->jwk_e_len) == 0;
out:
	BN_free(n);
	BN_free(ex);
	ERR_clear_error();
	return ok;
}

/* Rules 5 to 7 with leaf, x5c[0] decoded in full. */
static int
entry_verify_leaf(
    const struct manifest_entry *m, X509 *leaf, const struct vendor_trust *t, struct devid_error *e)
{
	struct x509_verify_opts opts = {.purpose = X509_PURPOSE_SSL_CLIENT};
	int rc;

	if (m->tpm) {
		/* an EK is no TLS client: its usages are the TCG profile's */
		opts.purpose = X509_PURPOSE_ANY;
		if (ekcert_check(leaf, NULL, e) != 0) {
			devid_error_prefix(e, "x5c[0] EK certificate");
			return DEVID_EINVAL;
		}
		rc = x509_path_verify(vendor_trust_get0_roots(t), leaf, m->chain, &opts, e);
	} else {
		if (x509_check_idevid(leaf, e) != 0) {
			devid_error_prefix(e, "x5c[0] birth certificate");
			return DEVID_EINVAL;
		}
		rc = x509_chain_verify(vendor_trust_get0_roots(t), leaf, m->chain, &opts, e);
	}
	if (rc != 0) {
		devid_error_prefix(e, "x5c does not reach a trusted vendor root");
		return DEVID_ECRYPTO;
	}
	if (!entry_jwk_matches(m, leaf))
		return devid_error_set(e, DEVID_ECRYPTO,
		    "JWK %s differ from the key in the x5c[0] certificate",
		    m->jwk_xy_len != 0 ? "x/y" : "n/e");
	return 0;
}

int
manifest_entry_verify(
    const struct manifest_entry *m, const struct vendor_trust *t, struct devid_error *e)
{
	X509 *signer, *leaf;
	int rc;

	if ((signer = vendor_trust_get0_signer(t, m->hdr.x5t_s256)) == NULL)
		return vendor_trust_refuse("manifest signer", m->hdr.x5t_s256, e);
	if ((rc = entry_verify_jws(m, signer, e)) != 0)
		return rc;
	if ((leaf = entry_full_cert(m, e)) == NULL) {
		devid_error_prefix(e, "x5c[0] birth certificate");
		return DEVID_EINVAL;
	}
	rc = entry_verify_leaf(m, leaf, t, e);
	X509_free(leaf);
	return rc;
}

int
manifest_entry_check(const struct manifest_entry *m, const struct vendor_trust *t,
    struct batchcheck_worker *w, struct devid_error *e)
{
	X509 *signer, *leaf;
	int rc;

	if ((signer = vendor_trust_get0_signer(t, m->hdr.x5t_s256)) == NULL)
		return vendor_trust_refuse("manifest signer", m->hdr.x5t_s256, e);
	if ((w == NULL ||
		!batchcheck_jws(w, signer, m->prot_b64, strlen(m->prot_b64), m->payload_b64,
		    strlen(m->payload_b64), m->sig_b64, strlen(m->sig_b64))) &&
	    (rc = entry_verify_jws(m, signer, e)) != 0)
		return rc;
	if (w != NULL && !m->tpm &&
	    batchcheck_leaf(
		w, m->cert, m->cert_der, m->cert_der_len, m->chain, m->jwk_xy, m->jwk_xy_len))
		return 0;
	if ((leaf = entry_full_cert(m, e)) == NULL) {
		devid_error_prefix(e, "x5c[0] birth certificate");
		return DEVID_EINVAL;
	}
	if ((rc = entry_verify_leaf(m, leaf, t, e)) == 0 && w != NULL && !m->tpm)
		batchcheck_learn(w, leaf, m->chain);
	X509_free(leaf);
	return rc;
}
