/* SPDX-License-Identifier: Apache-2.0 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "base64.h"
#include "batchcheck.h"
#include "claim.h"
#include "json.h"
#include "manifest.h"
#include "banned.h"

/* Threads of one parse or check, and entries a parse thread is worth starting for. */
#define MAX_THREADS 64
#define PARSE_ENTRIES_PER_THREAD 32
/* Distinct x5c[1..] certificates of one manifest decoded once and shared. */
#define X5C_CACHE_SIZE 64
/* Entries from which a manifest is freed by several threads, and entries per grab. */
#define FREE_PARALLEL_MIN 4096
#define FREE_CHUNK 64
/* Nesting of a manifest element that is parsed on its own (jansson allows 2048 in all). */
#define SPLIT_MAX_DEPTH 1024

/* Starts nthreads - 1 threads running fn(arg), runs it here too, and waits for them. */
static void
run_threads(int nthreads, void *(*fn)(void *), void *arg)
{
	pthread_t tid[MAX_THREADS];
	int started = 0;

	if (nthreads > MAX_THREADS)
		nthreads = MAX_THREADS;
	for (int i = 1; i < nthreads; i++)
		if (pthread_create(&tid[started], NULL, fn, arg) == 0)
			started++;
	fn(arg);
	for (int i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
}

static int
online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : (int)n;
}

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
	free(m->cert_der);
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

static struct x5c_cache *
x5c_cache_new(void)
{
	struct x5c_cache *c = calloc(1, sizeof(*c));

	if (c != NULL && pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c);
		c = NULL;
	}
	return c;
}

static void
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

/* Reads the identity JWK (the one carrying x5c) of publicKeySet. */
static int
entry_parse_keys(struct manifest_entry *m, const json_t *payload, struct x5c_cache *cache,
    const char *what, struct devid_error *e)
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
	rc = entry_parse_x5c(m, ident, cache, what, e);
out:
	free(dx);
	free(dy);
	return rc;
}

/*
 * A reader for the plain JSON vendors write, giving exactly the value jansson's
 * json_loadb(p, n, JSON_REJECT_DUPLICATES [| JSON_DECODE_ANY]) gives, for the inputs it takes:
 * strings of printable ASCII without escapes, integers of up to 18 digits, the literals,
 * objects (without duplicate keys) and arrays nested at most FASTJSON_MAX_DEPTH deep, JSON
 * whitespace. For anything else it returns NULL and jansson reads the input (and words any
 * error). jansson reads strings a byte at a time through a UTF-8-checking stream, several
 * times slower than an entry takes to verify.
 */
#define FASTJSON_MAX_DEPTH 32
#define FASTJSON_MAX_DIGITS 18

struct fastjson {
	const uint8_t *p;
	size_t n, i;
	int depth;
};

static json_t *fastjson_value(struct fastjson *f);

static void
fastjson_ws(struct fastjson *f)
{
	while (f->i < f->n &&
	    (f->p[f->i] == ' ' || f->p[f->i] == '\t' || f->p[f->i] == '\n' || f->p[f->i] == '\r'))
		f->i++;
}

static bool
fastjson_string(struct fastjson *f, const char **s, size_t *len)
{
	size_t start;

	if (f->i >= f->n || f->p[f->i] != '"')
		return false;
	start = ++f->i;
	for (; f->i < f->n; f->i++) {
		uint8_t c = f->p[f->i];

		if (c == '"') {
			*s = (const char *)f->p + start;
			*len = f->i++ - start;
			return true;
		}
		if (c < 0x20 || c > 0x7e || c == '\\')
			return false;
	}
	return false;
}

static json_t *
fastjson_number(struct fastjson *f)
{
	json_int_t v = 0;
	bool neg = false;
	int digits = 0;

	if (f->p[f->i] == '-') {
		neg = true;
		f->i++;
	}
	if (f->i >= f->n || f->p[f->i] < '0' || f->p[f->i] > '9' ||
	    (f->p[f->i] == '0' && f->i + 1 < f->n && f->p[f->i + 1] >= '0' &&
		f->p[f->i + 1] <= '9'))
		return NULL;
	for (; f->i < f->n && f->p[f->i] >= '0' && f->p[f->i] <= '9'; f->i++)
		if (++digits > FASTJSON_MAX_DIGITS)
			return NULL;
		else
			v = v * 10 + (f->p[f->i] - '0');
	if (f->i < f->n && (f->p[f->i] == '.' || f->p[f->i] == 'e' || f->p[f->i] == 'E'))
		return NULL;
	return json_integer(neg ? -v : v);
}

static json_t *
fastjson_container(struct fastjson *f, bool object)
{
	json_t *c = object ? json_object() : json_array(), *v = NULL;
	const char *key = NULL;
	size_t keylen = 0;

	if (c == NULL || ++f->depth > FASTJSON_MAX_DEPTH)
		goto fail;
	f->i++;
	fastjson_ws(f);
	if (f->i < f->n && f->p[f->i] == (object ? '}' : ']')) {
		f->i++;
		f->depth--;
		return c;
	}
	for (;;) {
		fastjson_ws(f);
		if (object) {
			if (!fastjson_string(f, &key, &keylen))
				goto fail;
			fastjson_ws(f);
			if (f->i >= f->n || f->p[f->i++] != ':')
				goto fail;
		}
		if ((v = fastjson_value(f)) == NULL)
			goto fail;
		if (object && json_object_getn(c, key, keylen) != NULL) {
			/* a duplicate key: jansson reads the input and words the error */
			json_decref(v);
			goto fail;
		}
		/* the _new functions take v, also when they fail (and then release it) */
		if (object ? json_object_setn_new_nocheck(c, key, keylen, v) != 0
			   : json_array_append_new(c, v) != 0)
			goto fail;
		fastjson_ws(f);
		if (f->i >= f->n)
			goto fail;
		if (f->p[f->i] == ',') {
			f->i++;
			continue;
		}
		if (f->p[f->i++] != (object ? '}' : ']'))
			goto fail;
		f->depth--;
		return c;
	}
fail:
	json_decref(c);
	return NULL;
}

static json_t *
fastjson_value(struct fastjson *f)
{
	static const struct {
		const char *text;
		json_t *(*make)(void);
	} lit[] = {{"true", json_true}, {"false", json_false}, {"null", json_null}};
	const char *s;
	size_t len;

	fastjson_ws(f);
	if (f->i >= f->n)
		return NULL;
	switch (f->p[f->i]) {
	case '{':
		return fastjson_container(f, true);
	case '[':
		return fastjson_container(f, false);
	case '"':
		return fastjson_string(f, &s, &len) ? json_stringn_nocheck(s, len) : NULL;
	default:
		break;
	}
	for (size_t k = 0; k < sizeof(lit) / sizeof(lit[0]); k++) {
		len = strlen(lit[k].text);
		if (f->n - f->i >= len && memcmp(f->p + f->i, lit[k].text, len) == 0) {
			f->i += len;
			return lit[k].make();
		}
	}
	return f->p[f->i] == '-' || (f->p[f->i] >= '0' && f->p[f->i] <= '9') ? fastjson_number(f)
									     : NULL;
}

/* jansson's value of p[0..n), or NULL: then jansson must read it. */
static json_t *
fastjson_parse(const uint8_t *p, size_t n, bool any)
{
	struct fastjson f = {.p = p, .n = n};
	json_t *v;

	fastjson_ws(&f);
	if (f.i >= n || (!any && p[f.i] != '{' && p[f.i] != '['))
		return NULL;
	if ((v = fastjson_value(&f)) == NULL)
		return NULL;
	fastjson_ws(&f);
	if (f.i != n) {
		json_decref(v);
		return NULL;
	}
	return v;
}

/*
 * Whether jansson's compact dump (json_dump_compact) of the JSON value in p[0..n) is p[0..n)
 * itself: no whitespace, strings of printable ASCII without escapes, integers in their
 * shortest form (no "-0", fraction or exponent), the literals, and nothing else. Objects keep
 * their keys in the order read, and duplicates were refused while parsing.
 */
static bool
compact_as_jansson(const uint8_t *p, size_t n)
{
	static const char *const lit[] = {"true", "false", "null"};
	size_t i = 0, k;

	while (i < n) {
		uint8_t c = p[i];

		if (c == '"') {
			for (i++; i < n && p[i] != '"'; i++)
				if (p[i] == '\\' || p[i] < 0x20 || p[i] > 0x7e)
					return false;
			if (i++ >= n)
				return false;
		} else if (c == '{' || c == '}' || c == '[' || c == ']' || c == ',' || c == ':') {
			i++;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			if (c == '-')
				i++;
			if (i >= n || p[i] < '0' || p[i] > '9' || (p[i] == '0' && c == '-'))
				return false;
			if (p[i] == '0' && i + 1 < n && p[i + 1] >= '0' && p[i + 1] <= '9')
				return false;
			while (i < n && p[i] >= '0' && p[i] <= '9')
				i++;
			if (i < n && (p[i] == '.' || p[i] == 'e' || p[i] == 'E'))
				return false;
		} else {
			for (k = 0; k < 3; k++)
				if (n - i >= strlen(lit[k]) &&
				    memcmp(p + i, lit[k], strlen(lit[k])) == 0)
					break;
			if (k == 3)
				return false;
			i += strlen(lit[k]);
		}
	}
	return true;
}

/*
 * What one parsing thread reuses from entry to entry: the manifest's shared x5c[1..]
 * certificates, and the protected header it parsed last (entries of one signer share it;
 * jws_header_parse() is a function of the text).
 */
struct parse_ctx {
	struct x5c_cache *cache;
	char *prot;
	size_t prot_len;
	struct jws_header hdr;
};

static void
parse_ctx_release(struct parse_ctx *c)
{
	free(c->prot);
	c->prot = NULL;
}

static int
entry_parse_header(struct manifest_entry *m, struct parse_ctx *c, struct devid_error *e)
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
		parse_ctx_release(c);
		if ((c->prot = strdup(m->prot_b64)) != NULL) {
			c->prot_len = len;
			c->hdr = m->hdr;
		}
	}
	return 0;
}

/*
 * manifest_entry_parse with the reuse of c (NULL: none) and, when text (text_len bytes) is
 * the entry as received, keeping it as the compact copy when it is already exactly that.
 */
static int
entry_parse(const json_t *obj, size_t index, struct parse_ctx *c, const uint8_t *text,
    size_t text_len, struct manifest_entry **out, struct devid_error *e)
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
	if (text != NULL && compact_as_jansson(text, text_len)) {
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
	return entry_parse(obj, index, NULL, NULL, 0, out, e);
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

/* Rules 5 to 7 with leaf, x5c[0] decoded in full. */
static int
entry_verify_leaf(
    const struct manifest_entry *m, X509 *leaf, const struct vendor_trust *t, struct devid_error *e)
{
	struct x509_verify_opts opts = {.purpose = X509_PURPOSE_SSL_CLIENT};
	uint8_t xy[2 * 48];
	size_t xylen;

	if (x509_check_idevid(leaf, e) != 0) {
		devid_error_prefix(e, "x5c[0] birth certificate");
		return DEVID_EINVAL;
	}
	if (x509_chain_verify(t->roots, leaf, m->chain, &opts, e) != 0) {
		devid_error_prefix(e, "x5c does not reach a trusted vendor root");
		return DEVID_ECRYPTO;
	}
	if (batchcheck_key_xy(X509_get0_pubkey(leaf), xy, &xylen) != 0 || xylen != m->jwk_xy_len ||
	    CRYPTO_memcmp(xy, m->jwk_xy, xylen) != 0)
		return devid_error_set(
		    e, DEVID_ECRYPTO, "JWK x/y differ from the key in the x5c[0] certificate");
	return 0;
}

int
manifest_entry_verify(
    const struct manifest_entry *m, const struct vendor_trust *t, struct devid_error *e)
{
	X509 *signer, *leaf;
	int rc;

	if ((signer = vendor_trust_get0_signer(t, m->hdr.x5t_s256)) == NULL)
		return signer_untrusted("manifest signer", m->hdr.x5t_s256, e);
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

/*
 * manifest_entry_verify with the fast paths of w (NULL: none). A fast path only ever says
 * "accepted"; anything else runs the original check, which decides and words the rejection.
 * An entry accepted the original way is offered to w as a model for its twins.
 */
static int
entry_check(const struct manifest_entry *m, const struct vendor_trust *t,
    struct batchcheck_worker *w, struct devid_error *e)
{
	X509 *signer, *leaf;
	int rc;

	if ((signer = vendor_trust_get0_signer(t, m->hdr.x5t_s256)) == NULL)
		return signer_untrusted("manifest signer", m->hdr.x5t_s256, e);
	if ((w == NULL ||
		!batchcheck_jws(w, signer, m->prot_b64, strlen(m->prot_b64), m->payload_b64,
		    strlen(m->payload_b64), m->sig_b64, strlen(m->sig_b64))) &&
	    (rc = entry_verify_jws(m, signer, e)) != 0)
		return rc;
	if (w != NULL &&
	    batchcheck_leaf(
		w, m->cert, m->cert_der, m->cert_der_len, m->chain, m->jwk_xy, m->jwk_xy_len))
		return 0;
	if ((leaf = entry_full_cert(m, e)) == NULL) {
		devid_error_prefix(e, "x5c[0] birth certificate");
		return DEVID_EINVAL;
	}
	if ((rc = entry_verify_leaf(m, leaf, t, e)) == 0 && w != NULL)
		batchcheck_learn(w, leaf, m->chain);
	X509_free(leaf);
	return rc;
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

struct free_job {
	struct manifest *m;
	atomic_size_t next;
};

static void *
manifest_free_worker(void *arg)
{
	struct free_job *j = arg;
	size_t i;

	while ((i = atomic_fetch_add(&j->next, FREE_CHUNK)) < j->m->n)
		for (size_t k = i; k < i + FREE_CHUNK && k < j->m->n; k++)
			manifest_entry_free(j->m->entries[k]);
	return NULL;
}

void
manifest_free(struct manifest *m)
{
	struct free_job j = {.m = m};

	if (m == NULL)
		return;
	/* a certificate is dozens of small allocations: a large manifest is freed by all CPUs */
	atomic_init(&j.next, 0);
	run_threads(m->n >= FREE_PARALLEL_MIN ? online_cpus() : 1, manifest_free_worker, &j);
	free(m->entries);
	free(m);
}

/* An entry that did not parse: what report_reject() gets for it. */
struct parse_fail {
	bool has_uid;
	char uid[MAX_SERIAL_LEN + 1];
	char msg[DEVID_ERROR_MAX];
};

/* A byte range of the manifest text. */
struct span {
	size_t off, len;
};

struct parse_job {
	struct manifest *m;
	const json_t *root; /* the elements, already parsed; or */
	const uint8_t *text; /* the text, whose elements are at spans */
	const struct span *spans;
	struct x5c_cache *cache;
	struct parse_fail **fails; /* per entry, NULL when it parsed */
	atomic_size_t next;
	atomic_bool not_json; /* an element is not JSON: the whole document decides */
	atomic_bool oom;
};

/* Records what the original sequential loop passed to report_reject() for entry v. */
static struct parse_fail *
parse_fail_new(const json_t *v, const char *msg)
{
	struct parse_fail *f = calloc(1, sizeof(*f));
	json_t *h = json_object_get(v, "header");
	const char *uid = NULL;

	if (f == NULL)
		return NULL;
	if (json_is_object(h) && json_is_string(json_object_get(h, "uniqueId")))
		uid = json_string_value(json_object_get(h, "uniqueId"));
	if (uid != NULL && strlen(uid) < sizeof(f->uid)) {
		f->has_uid = true;
		memcpy(f->uid, uid, strlen(uid) + 1);
	}
	snprintf(f->msg, sizeof(f->msg), "%s", msg);
	return f;
}

static void *
parse_worker(void *arg)
{
	struct parse_job *j = arg;
	struct parse_ctx c = {.cache = j->cache};
	struct devid_error ee;
	json_t *own;
	const json_t *v;
	size_t i;

	while ((i = atomic_fetch_add(&j->next, 1)) < j->m->n && !atomic_load(&j->not_json)) {
		own = NULL;
		if (j->spans != NULL) {
			own = fastjson_parse(j->text + j->spans[i].off, j->spans[i].len, true);
			if (own == NULL)
				own = json_loadb((const char *)j->text + j->spans[i].off,
				    j->spans[i].len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
				    NULL);
			if (own == NULL) {
				atomic_store(&j->not_json, true);
				break;
			}
			v = own;
		} else
			v = json_array_get(j->root, i);
		devid_error_clear(&ee);
		if (entry_parse(v, i, &c, j->spans != NULL ? j->text + j->spans[i].off : NULL,
			j->spans != NULL ? j->spans[i].len : 0, &j->m->entries[i], &ee) != 0 &&
		    (j->fails[i] = parse_fail_new(v, ee.msg)) == NULL)
			atomic_store(&j->oom, true);
		json_decref(own);
	}
	parse_ctx_release(&c);
	return NULL;
}

/*
 * Parses the n entries of m, given as root's elements or as text at spans, with up to
 * nthreads threads, and reports those that do not parse in index order, as one thread going
 * through them in order would. Returns 1 when an element of text is not JSON (the caller then
 * parses the whole document, whose error decides), else 0 or DEVID_ENOMEM.
 */
static int
parse_entries(struct manifest *m, const json_t *root, const uint8_t *text, const struct span *spans,
    int nthreads, struct manifest_report *r)
{
	struct parse_job j = {.m = m, .root = root, .text = text, .spans = spans};
	int rc = DEVID_ENOMEM;

	atomic_init(&j.next, 0);
	atomic_init(&j.not_json, false);
	atomic_init(&j.oom, false);
	if ((j.fails = calloc(m->n, sizeof(*j.fails))) == NULL ||
	    (j.cache = x5c_cache_new()) == NULL)
		goto out;
	if ((size_t)nthreads > m->n / PARSE_ENTRIES_PER_THREAD)
		nthreads = (int)(m->n / PARSE_ENTRIES_PER_THREAD);
	run_threads(nthreads < 1 ? 1 : nthreads, parse_worker, &j);
	if (atomic_load(&j.not_json)) {
		rc = 1;
		goto out;
	}
	if (atomic_load(&j.oom))
		goto out;
	r->total = m->n;
	for (size_t i = 0; i < m->n; i++)
		if (j.fails[i] != NULL)
			report_reject(
			    r, i, j.fails[i]->has_uid ? j.fails[i]->uid : NULL, j.fails[i]->msg);
	rc = 0;
out:
	for (size_t i = 0; j.fails != NULL && i < m->n; i++)
		free(j.fails[i]);
	free(j.fails);
	x5c_cache_free(j.cache);
	return rc;
}

static struct manifest *
manifest_new(size_t n)
{
	struct manifest *m;

	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (m->entries = calloc(n, sizeof(*m->entries))) == NULL) {
		free(m);
		return NULL;
	}
	m->n = n;
	return m;
}

int
manifest_from_json_mt(const json_t *root, int nthreads, struct manifest **out,
    struct manifest_report *r, struct devid_error *e)
{
	struct manifest *m;

	*out = NULL;
	if (!json_is_array(root) || json_array_size(root) == 0)
		return devid_error_set(
		    e, DEVID_EINVAL, "manifest: not a non-empty JSON array of entries");
	if (json_array_size(root) > MAX_BATCH_COUNT)
		return devid_error_set(e, DEVID_EINVAL, "manifest: %zu entries, limit %d",
		    json_array_size(root), MAX_BATCH_COUNT);
	if ((m = manifest_new(json_array_size(root))) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "manifest: out of memory");
	if (parse_entries(m, root, NULL, NULL, nthreads, r) != 0) {
		manifest_free(m);
		return devid_error_set(e, DEVID_ENOMEM, "manifest: out of memory");
	}
	*out = m;
	return 0;
}

int
manifest_from_json(
    const json_t *root, struct manifest **out, struct manifest_report *r, struct devid_error *e)
{
	return manifest_from_json_mt(root, online_cpus(), out, r, e);
}

static size_t
skip_ws(const uint8_t *p, size_t n, size_t i)
{
	/* JSON's whitespace, as jansson reads it */
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
		i++;
	return i;
}

/* The closing quote of the string opening at p[i] (n if none), skipping escaped quotes. */
static size_t
string_end(const uint8_t *p, size_t n, size_t i)
{
	const uint8_t *q;
	size_t k, bs;

	for (;;) {
		if ((q = memchr(p + i + 1, '"', n - i - 1)) == NULL)
			return n;
		k = (size_t)(q - p);
		for (bs = 0; k - bs - 1 > i && p[k - bs - 1] == '\\'; bs++)
			;
		if (bs % 2 == 0)
			return k;
		i = k;
	}
}

/*
 * Finds the elements of a document that reads '[' element (',' element)* ']' with JSON
 * whitespace around the tokens, following strings (and their escapes) and nesting only. It
 * does not check the elements: each is parsed on its own, and if every one is a JSON value,
 * the document is exactly the array of them. False when the document does not have that
 * shape (or nests deeper than SPLIT_MAX_DEPTH, or has more than MAX_BATCH_COUNT elements):
 * the whole document is then parsed at once, as before.
 */
static bool
split_array(const uint8_t *p, size_t n, struct span **out, size_t *count)
{
	struct span *v = NULL, *nv;
	size_t i, start, end, nel = 0, cap = 0;
	int depth;

	*out = NULL;
	*count = 0;
	i = skip_ws(p, n, 0);
	if (i >= n || p[i] != '[')
		return false;
	i = skip_ws(p, n, i + 1);
	for (;;) {
		start = i;
		depth = 0;
		for (; i < n; i++) {
			if (p[i] == '"') {
				if ((i = string_end(p, n, i)) >= n)
					goto fail;
			} else if (p[i] == '{' || p[i] == '[') {
				if (++depth > SPLIT_MAX_DEPTH)
					goto fail;
			} else if (p[i] == '}' || p[i] == ']') {
				if (depth == 0)
					break;
				depth--;
			} else if (p[i] == ',' && depth == 0)
				break;
		}
		if (i >= n || (p[i] != ',' && p[i] != ']'))
			goto fail;
		for (end = i; end > start &&
		     (p[end - 1] == ' ' || p[end - 1] == '\t' || p[end - 1] == '\n' ||
			 p[end - 1] == '\r');)
			end--;
		if (end == start || nel >= MAX_BATCH_COUNT)
			goto fail;
		if (nel == cap) {
			cap = cap ? cap * 2 : 1024;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL)
				goto fail;
			v = nv;
		}
		v[nel].off = start;
		v[nel++].len = end - start;
		if (p[i] == ']')
			break;
		i = skip_ws(p, n, i + 1);
	}
	if (skip_ws(p, n, i + 1) != n)
		goto fail;
	*out = v;
	*count = nel;
	return true;
fail:
	free(v);
	return false;
}

int
manifest_parse_mt(const uint8_t *p, size_t n, int nthreads, struct manifest **out,
    struct manifest_report *r, struct devid_error *e)
{
	struct manifest *m = NULL;
	struct span *spans = NULL;
	json_t *root;
	size_t count;
	int rc;

	*out = NULL;
	if (n > MAX_MANIFEST_SIZE)
		return devid_error_set(
		    e, DEVID_EINVAL, "manifest: %zu bytes, limit %zu", n, MAX_MANIFEST_SIZE);
	/* each element parsed on its own, in parallel, with no tree of the whole document */
	if (split_array(p, n, &spans, &count)) {
		if ((m = manifest_new(count)) == NULL) {
			free(spans);
			return devid_error_set(e, DEVID_ENOMEM, "manifest: out of memory");
		}
		rc = parse_entries(m, NULL, p, spans, nthreads, r);
		free(spans);
		if (rc == 0) {
			*out = m;
			return 0;
		}
		manifest_free(m);
		if (rc < 0)
			return devid_error_set(e, DEVID_ENOMEM, "manifest: out of memory");
		/* an element is not JSON: nothing was reported, the document's error decides */
	}
	if ((root = json_parse(p, n, "manifest", e)) == NULL)
		return DEVID_EINVAL;
	rc = manifest_from_json_mt(root, nthreads, out, r, e);
	json_decref(root);
	return rc;
}

int
manifest_parse(const uint8_t *p, size_t n, struct manifest **out, struct manifest_report *r,
    struct devid_error *e)
{
	return manifest_parse_mt(p, n, online_cpus(), out, r, e);
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
	struct batchcheck *fast; /* NULL: every entry takes the original checks */
	atomic_size_t next;
	char **msgs; /* per entry, NULL when accepted */
	atomic_bool oom;
};

static void
set_msg(struct check_job *j, size_t i, const char *msg)
{
	if ((j->msgs[i] = strdup(msg)) == NULL)
		atomic_store(&j->oom, true);
}

static void *
check_worker(void *arg)
{
	struct check_job *j = arg;
	struct batchcheck_worker *w = j->fast != NULL ? batchcheck_worker_new(j->fast) : NULL;
	struct devid_error e;
	char msg[DEVID_ERROR_MAX];
	size_t i;

	while ((i = atomic_fetch_add(&j->next, 1)) < j->m->n) {
		const struct manifest_entry *me = j->m->entries[i];

		if (me == NULL)
			continue;
		msg[0] = '\0';
		devid_error_clear(&e);
		if (entry_check(me, j->t, w, &e) != 0)
			snprintf(msg, sizeof(msg), "entry %zu: %s", i, e.msg);
		else if (j->batch_id != NULL && me->group_id[0] == '\0' && j->require_group)
			snprintf(msg, sizeof(msg),
			    "entry %zu: groupId is missing; the batch id is \"%s\"", i,
			    j->batch_id);
		else if (j->batch_id != NULL && me->group_id[0] != '\0' &&
		    strcmp(me->group_id, j->batch_id) != 0)
			snprintf(msg, sizeof(msg),
			    "entry %zu: groupId \"%s\" differs from the batch id \"%s\"", i,
			    me->group_id, j->batch_id);
		if (msg[0] != '\0')
			set_msg(j, i, msg);
	}
	batchcheck_worker_free(w);
	return NULL;
}

/* An entry's chip identifier for the duplicate checks. */
struct chip_ref {
	const char *key;
	size_t index;
};

/* By key, then by position: the first of equal keys is the one in the manifest first. */
static int
chip_ref_cmp(const void *a, const void *b)
{
	const struct chip_ref *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c != 0)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Rejects every entry whose chip (udid or uniqueId) appeared earlier in the batch. */
static void
check_duplicates(struct check_job *j, bool by_udid, const char *what)
{
	const struct manifest *m = j->m;
	struct chip_ref *v;
	char msg[DEVID_ERROR_MAX];
	size_t n = 0;

	if ((v = calloc(m->n + 1, sizeof(*v))) == NULL) {
		atomic_store(&j->oom, true);
		return;
	}
	for (size_t i = 0; i < m->n; i++)
		if (m->entries[i] != NULL) {
			v[n].key = by_udid ? m->entries[i]->udid : m->entries[i]->unique_id;
			v[n++].index = i;
		}
	qsort(v, n, sizeof(*v), chip_ref_cmp);
	for (size_t i = 1; i < n; i++) {
		size_t k = v[i].index;

		if (strcmp(v[i - 1].key, v[i].key) == 0 && j->msgs[k] == NULL) {
			snprintf(msg, sizeof(msg),
			    "entry %zu: %s appears more than once in the batch", k, what);
			set_msg(j, k, msg);
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
	int rc = DEVID_EINVAL;

	if (nthreads < 1)
		nthreads = 1;
	atomic_init(&j.next, 0);
	atomic_init(&j.oom, false);
	if ((j.msgs = calloc(m->n + 1, sizeof(*j.msgs))) == NULL) {
		snprintf(r->batch_error, sizeof(r->batch_error), "out of memory");
		return DEVID_ENOMEM;
	}
	/* without it every entry is checked the original way, only slower */
	j.fast = batchcheck_new(t->roots);
	r->total = m->n;
	devid_error_clear(&e);
	if (d != NULL && batch_descriptor_verify(d, t, &e) != 0)
		snprintf(r->batch_error, sizeof(r->batch_error), "%s", e.msg);
	run_threads(nthreads, check_worker, &j);
	check_duplicates(&j, true, "the chip key (UDID)");
	check_duplicates(&j, false, "the uniqueId");
	if (atomic_load(&j.oom)) {
		snprintf(r->batch_error, sizeof(r->batch_error), "out of memory");
		rc = DEVID_ENOMEM;
		goto out;
	}
	r->accepted = 0;
	for (size_t i = 0; i < m->n; i++) {
		if (m->entries[i] == NULL)
			continue;
		if (j.msgs[i] != NULL)
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
out:
	for (size_t i = 0; i < m->n; i++)
		free(j.msgs[i]);
	free(j.msgs);
	batchcheck_free(j.fast);
	return rc;
}
