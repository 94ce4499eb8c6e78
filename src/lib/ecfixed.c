/* SPDX-License-Identifier: Apache-2.0 */
/*
 * EC_GROUP_precompute_mult is deprecated in OpenSSL 3.0 (with the other low-level EC calls
 * that providers replace) and is still how OpenSSL 3 builds the table of multiples that its
 * P-256 code uses for any generator (ecp_nistz256_mult_precompute). Asking for the 1.1.1 API
 * here, in this file only, keeps its declaration without deprecation warnings (-Werror).
 */
#define OPENSSL_API_COMPAT 10101

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

#include "ecfixed.h"
#include "banned.h"

/* An uncompressed P-256 point: 04 || x || y. */
#define P256_POINT_LEN 65

struct ecfixed {
	uint8_t point[P256_POINT_LEN]; /* the key, the cache's index */
	uint64_t order[4]; /* n, the group order, as limbs */
	EC_GROUP *g; /* P-256 with its own generator G (OpenSSL's built-in table) */
	EC_GROUP *gq; /* P-256 with the key's point Q as generator, and its table */
	int refs; /* the cache's and the users', under cache_lock */
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ecfixed *cache[ECFIXED_CACHE];

/*
 * Numbers below 2^256 as four 64-bit limbs, least significant first: the inverse modulo the
 * group order by the binary extended Euclidean algorithm (Hankerson, Menezes, Vanstone, "Guide
 * to Elliptic Curve Cryptography", algorithm 2.22), in variable time, as everything here is
 * public. BN_mod_inverse takes twice as long for the same.
 */
typedef unsigned __int128 u128;

static bool
limbs_even(const uint64_t a[4])
{
	return (a[0] & 1) == 0;
}

static bool
limbs_one(const uint64_t a[4])
{
	return a[0] == 1 && (a[1] | a[2] | a[3]) == 0;
}

static bool
limbs_zero(const uint64_t a[4])
{
	return (a[0] | a[1] | a[2] | a[3]) == 0;
}

static int
limbs_cmp(const uint64_t a[4], const uint64_t b[4])
{
	for (int i = 3; i >= 0; i--)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return 0;
}

/* a += b; the carry out. */
static uint64_t
limbs_add(uint64_t a[4], const uint64_t b[4])
{
	uint64_t c = 0;

	for (int i = 0; i < 4; i++) {
		u128 t = (u128)a[i] + b[i] + c;

		a[i] = (uint64_t)t;
		c = (uint64_t)(t >> 64);
	}
	return c;
}

/* a -= b; the borrow out. */
static uint64_t
limbs_sub(uint64_t a[4], const uint64_t b[4])
{
	uint64_t borrow = 0;

	for (int i = 0; i < 4; i++) {
		u128 t = (u128)a[i] - b[i] - borrow;

		a[i] = (uint64_t)t;
		borrow = (uint64_t)(t >> 64) != 0;
	}
	return borrow;
}

/* a = (top:a) / 2 */
static void
limbs_shr1(uint64_t a[4], uint64_t top)
{
	for (int i = 0; i < 3; i++)
		a[i] = a[i] >> 1 | a[i + 1] << 63;
	a[3] = a[3] >> 1 | top << 63;
}

/* x = x / 2 mod n (x < n, n odd) */
static void
limbs_half_mod(uint64_t x[4], const uint64_t n[4])
{
	if (limbs_even(x))
		limbs_shr1(x, 0);
	else
		limbs_shr1(x, limbs_add(x, n));
}

/* x = x - y mod n (x, y < n) */
static void
limbs_sub_mod(uint64_t x[4], const uint64_t y[4], const uint64_t n[4])
{
	if (limbs_sub(x, y))
		limbs_add(x, n);
}

/* out = a^-1 mod n, for 0 < a < n and n odd; false when a has no inverse. */
static bool
limbs_inverse(const uint64_t a[4], const uint64_t n[4], uint64_t out[4])
{
	uint64_t u[4], v[4], x1[4] = {1, 0, 0, 0}, x2[4] = {0, 0, 0, 0};

	memcpy(u, a, sizeof(u));
	memcpy(v, n, sizeof(v));
	if (limbs_zero(u))
		return false;
	while (!limbs_one(u) && !limbs_one(v)) {
		while (limbs_even(u)) {
			limbs_shr1(u, 0);
			limbs_half_mod(x1, n);
		}
		while (limbs_even(v)) {
			limbs_shr1(v, 0);
			limbs_half_mod(x2, n);
		}
		if (limbs_cmp(u, v) >= 0) {
			limbs_sub(u, v);
			limbs_sub_mod(x1, x2, n);
		} else {
			limbs_sub(v, u);
			limbs_sub_mod(x2, x1, n);
		}
		if (limbs_zero(u) || limbs_zero(v))
			return false;
	}
	memcpy(out, limbs_one(u) ? x1 : x2, 4 * sizeof(uint64_t));
	return true;
}

static bool
limbs_from_bn(const BIGNUM *b, uint64_t l[4])
{
	uint8_t be[32];

	if (BN_bn2binpad(b, be, sizeof(be)) != (int)sizeof(be))
		return false;
	for (int i = 0; i < 4; i++) {
		l[i] = 0;
		for (int j = 0; j < 8; j++)
			l[i] = l[i] << 8 | be[(3 - i) * 8 + j];
	}
	return true;
}

static bool
limbs_to_bn(const uint64_t l[4], BIGNUM *b)
{
	uint8_t be[32];

	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 8; j++)
			be[(3 - i) * 8 + j] = (uint8_t)(l[i] >> (56 - 8 * j));
	return BN_bin2bn(be, sizeof(be), b) != NULL;
}

static void
ecfixed_free(struct ecfixed *f)
{
	if (f == NULL)
		return;
	EC_GROUP_free(f->g);
	EC_GROUP_free(f->gq);
	free(f);
}

/* The tables of point (P256_POINT_LEN bytes), or NULL. */
static struct ecfixed *
ecfixed_make(const uint8_t *point)
{
	struct ecfixed *f = calloc(1, sizeof(*f));
	EC_POINT *q = NULL;
	BN_CTX *ctx = BN_CTX_new();
	bool ok = false;

	if (f == NULL || ctx == NULL)
		goto out;
	memcpy(f->point, point, P256_POINT_LEN);
	if ((f->g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1)) == NULL ||
	    (f->gq = EC_GROUP_dup(f->g)) == NULL || (q = EC_POINT_new(f->g)) == NULL ||
	    EC_POINT_oct2point(f->g, q, point, P256_POINT_LEN, ctx) != 1 ||
	    EC_POINT_is_at_infinity(f->g, q) ||
	    EC_GROUP_set_generator(
		f->gq, q, EC_GROUP_get0_order(f->g), EC_GROUP_get0_cofactor(f->g)) != 1 ||
	    EC_GROUP_precompute_mult(f->gq, ctx) != 1 ||
	    !limbs_from_bn(EC_GROUP_get0_order(f->g), f->order))
		goto out;
	ok = true;
out:
	EC_POINT_free(q);
	BN_CTX_free(ctx);
	ERR_clear_error();
	if (!ok) {
		ecfixed_free(f);
		return NULL;
	}
	return f;
}

struct ecfixed *
ecfixed_get(EVP_PKEY *key)
{
	uint8_t point[P256_POINT_LEN];
	char curve[32];
	size_t n = 0;
	struct ecfixed *f = NULL;
	int i, slot = -1;

	if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
	    EVP_PKEY_get_group_name(key, curve, sizeof(curve), NULL) != 1 ||
	    strcmp(curve, "prime256v1") != 0 ||
	    EVP_PKEY_get_octet_string_param(
		key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point, sizeof(point), &n) != 1 ||
	    n != P256_POINT_LEN || point[0] != 0x04) {
		ERR_clear_error();
		return NULL;
	}
	pthread_mutex_lock(&cache_lock);
	for (i = 0; i < ECFIXED_CACHE; i++) {
		if (cache[i] != NULL && memcmp(cache[i]->point, point, P256_POINT_LEN) == 0) {
			f = cache[i];
			f->refs++;
			pthread_mutex_unlock(&cache_lock);
			return f;
		}
		/* a free slot, else one that nobody uses now */
		if (slot < 0 && (cache[i] == NULL || cache[i]->refs == 1))
			slot = i;
	}
	pthread_mutex_unlock(&cache_lock);
	/* made outside the lock (a millisecond or so); two threads may both make one */
	if ((f = ecfixed_make(point)) == NULL)
		return NULL;
	f->refs = 1;
	pthread_mutex_lock(&cache_lock);
	if (slot >= 0 && (cache[slot] == NULL || cache[slot]->refs == 1)) {
		if (cache[slot] != NULL && --cache[slot]->refs == 0)
			ecfixed_free(cache[slot]);
		cache[slot] = f;
		f->refs++;
	}
	pthread_mutex_unlock(&cache_lock);
	return f;
}

void
ecfixed_release(struct ecfixed *f)
{
	bool last;

	if (f == NULL)
		return;
	pthread_mutex_lock(&cache_lock);
	last = --f->refs == 0;
	pthread_mutex_unlock(&cache_lock);
	if (last)
		ecfixed_free(f);
}

/* w = s^-1 mod n, checked: a wrong answer here would only ever be a "don't know". */
static bool
inverse_mod_order(const struct ecfixed *f, const BIGNUM *s, BIGNUM *w, BIGNUM *check, BN_CTX *ctx)
{
	uint64_t sl[4], wl[4];

	return limbs_from_bn(s, sl) && limbs_inverse(sl, f->order, wl) && limbs_to_bn(wl, w) &&
	    BN_mod_mul(check, w, s, EC_GROUP_get0_order(f->g), ctx) == 1 && BN_is_one(check);
}

bool
ecfixed_verify(
    const struct ecfixed *f, BN_CTX *ctx, const uint8_t dgst[32], const BIGNUM *r, const BIGNUM *s)
{
	const BIGNUM *n = EC_GROUP_get0_order(f->g);
	EC_POINT *p1 = NULL, *p2 = NULL;
	BIGNUM *e, *w, *u1, *u2, *x;
	bool ok = false;

	BN_CTX_start(ctx);
	e = BN_CTX_get(ctx);
	w = BN_CTX_get(ctx);
	u1 = BN_CTX_get(ctx);
	u2 = BN_CTX_get(ctx);
	if ((x = BN_CTX_get(ctx)) == NULL)
		goto out;
	/* SEC 1 v2, 4.1.4: r and s in [1, n - 1] */
	if (BN_is_zero(r) || BN_is_negative(r) || BN_cmp(r, n) >= 0 || BN_is_zero(s) ||
	    BN_is_negative(s) || BN_cmp(s, n) >= 0)
		goto out;
	/* e: the digest as an integer; 256 bits, the length of n, so nothing is cut */
	if (BN_bin2bn(dgst, 32, e) == NULL || !inverse_mod_order(f, s, w, x, ctx) ||
	    BN_mod_mul(u1, e, w, n, ctx) != 1 || BN_mod_mul(u2, r, w, n, ctx) != 1)
		goto out;
	/* R = u1 G + u2 Q, each half from its own table */
	if ((p1 = EC_POINT_new(f->g)) == NULL || (p2 = EC_POINT_new(f->gq)) == NULL ||
	    EC_POINT_mul(f->g, p1, u1, NULL, NULL, ctx) != 1 ||
	    EC_POINT_mul(f->gq, p2, u2, NULL, NULL, ctx) != 1 ||
	    EC_POINT_add(f->g, p1, p1, p2, ctx) != 1 || EC_POINT_is_at_infinity(f->g, p1) ||
	    EC_POINT_get_affine_coordinates(f->g, p1, x, NULL, ctx) != 1)
		goto out;
	/* valid if and only if R.x mod n = r */
	ok = BN_nnmod(x, x, n, ctx) == 1 && BN_cmp(x, r) == 0;
out:
	EC_POINT_free(p1);
	EC_POINT_free(p2);
	BN_CTX_end(ctx);
	ERR_clear_error();
	return ok;
}
