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

/* Limbs of the numbers the inverse modulo n works on (limbs_almost_inverse). */
#define LIMBS 5
/* An uncompressed P-256 point: 04 || x || y. */
#define P256_POINT_LEN 65

struct ecfixed {
	uint8_t point[P256_POINT_LEN]; /* the key, the cache's index */
	uint64_t order[LIMBS]; /* n, the group order, as limbs */
	BIGNUM *inv_2_512; /* 2^-512 mod n */
	BIGNUM *p; /* the field prime */
	EC_GROUP *g; /* P-256 with its own generator G (OpenSSL's built-in table) */
	EC_GROUP *gq; /* P-256 with the key's point Q as generator, and its table */
	int refs; /* the cache's and the users', under cache_lock */
};

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
/* held while tables are made (tens of milliseconds), so threads that miss one key together
 * make it once: the others wait and find it */
static pthread_mutex_t make_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ecfixed *cache[ECFIXED_CACHE];

/*
 * Numbers below 2^320 as five 64-bit limbs, least significant first, for the inverse of s
 * modulo the group order n: Kaliski's almost Montgomery inverse ("The Montgomery inverse and
 * its applications", IEEE Trans. Computers 44(8), 1995, phase 1) gives x = s^-1 2^k mod n with
 * shifts, subtractions and additions only, k between 256 and 512; x 2^(512-k) 2^-512 mod n is
 * then s^-1. In variable time, as everything here is public; BN_mod_inverse takes three times
 * as long.
 */
typedef unsigned __int128 u128;

static bool
limbs_zero(const uint64_t a[LIMBS])
{
	uint64_t x = 0;

	for (int i = 0; i < LIMBS; i++)
		x |= a[i];
	return x == 0;
}

static bool
limbs_one(const uint64_t a[LIMBS])
{
	uint64_t x = a[0] ^ 1;

	for (int i = 1; i < LIMBS; i++)
		x |= a[i];
	return x == 0;
}

static int
limbs_cmp(const uint64_t a[LIMBS], const uint64_t b[LIMBS])
{
	for (int i = LIMBS - 1; i >= 0; i--)
		if (a[i] != b[i])
			return a[i] < b[i] ? -1 : 1;
	return 0;
}

/* a += b (no carry out: the callers' sums fit) */
static void
limbs_add(uint64_t a[LIMBS], const uint64_t b[LIMBS])
{
	uint64_t c = 0;

	for (int i = 0; i < LIMBS; i++) {
		u128 t = (u128)a[i] + b[i] + c;

		a[i] = (uint64_t)t;
		c = (uint64_t)(t >> 64);
	}
}

/* a -= b, for a >= b */
static void
limbs_sub(uint64_t a[LIMBS], const uint64_t b[LIMBS])
{
	uint64_t borrow = 0;

	for (int i = 0; i < LIMBS; i++) {
		u128 t = (u128)a[i] - b[i] - borrow;

		a[i] = (uint64_t)t;
		borrow = (uint64_t)(t >> 64) != 0;
	}
}

/* a >>= t and a <<= t, 1 <= t <= 63 */
static void
limbs_shr(uint64_t a[LIMBS], int t)
{
	for (int i = 0; i < LIMBS - 1; i++)
		a[i] = a[i] >> t | a[i + 1] << (64 - t);
	a[LIMBS - 1] >>= t;
}

static void
limbs_shl(uint64_t a[LIMBS], int t)
{
	for (int i = LIMBS - 1; i > 0; i--)
		a[i] = a[i] << t | a[i - 1] >> (64 - t);
	a[0] <<= t;
}

/* The trailing zero bits of an even a, 1 to 63 at once. */
static int
limbs_twos(const uint64_t a[LIMBS])
{
	return a[0] != 0 ? __builtin_ctzll(a[0]) : 63;
}

/*
 * Phase 1 of the almost Montgomery inverse of a (0 < a < n, n odd): x = a^-1 2^k mod n; k, or
 * -1 when a has no inverse (or the loop ran past its bound: a was not below n).
 */
static int
limbs_almost_inverse(const uint64_t a[LIMBS], const uint64_t n[LIMBS], uint64_t x[LIMBS])
{
	uint64_t u[LIMBS], v[LIMBS], r[LIMBS] = {0}, s[LIMBS] = {1};
	int k = 0, t;

	memcpy(u, n, sizeof(u));
	memcpy(v, a, sizeof(v));
	while (!limbs_zero(v) && k <= 512) {
		if ((u[0] & 1) == 0) {
			t = limbs_twos(u);
			limbs_shr(u, t);
			limbs_shl(s, t);
			k += t;
		} else if ((v[0] & 1) == 0) {
			t = limbs_twos(v);
			limbs_shr(v, t);
			limbs_shl(r, t);
			k += t;
		} else if (limbs_cmp(u, v) > 0) {
			limbs_sub(u, v);
			limbs_shr(u, 1);
			limbs_add(r, s);
			limbs_shl(s, 1);
			k++;
		} else {
			limbs_sub(v, u);
			limbs_shr(v, 1);
			limbs_add(s, r);
			limbs_shl(r, 1);
			k++;
		}
	}
	if (!limbs_zero(v) || !limbs_one(u) || k > 512)
		return -1;
	if (limbs_cmp(r, n) >= 0)
		limbs_sub(r, n);
	memcpy(x, n, sizeof(u));
	limbs_sub(x, r);
	return k;
}

static bool
limbs_from_bn(const BIGNUM *b, uint64_t l[LIMBS])
{
	uint8_t be[32];

	if (BN_bn2binpad(b, be, sizeof(be)) != (int)sizeof(be))
		return false;
	memset(l, 0, LIMBS * sizeof(uint64_t));
	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 8; j++)
			l[i] = l[i] << 8 | be[(3 - i) * 8 + j];
	return true;
}

static bool
limbs_to_bn(const uint64_t l[LIMBS], BIGNUM *b)
{
	uint8_t be[32];

	for (int i = 0; i < 4; i++)
		for (int j = 0; j < 8; j++)
			be[(3 - i) * 8 + j] = (uint8_t)(l[i] >> (56 - 8 * j));
	return l[4] == 0 && BN_bin2bn(be, sizeof(be), b) != NULL;
}

static void
ecfixed_free(struct ecfixed *f)
{
	if (f == NULL)
		return;
	EC_GROUP_free(f->g);
	EC_GROUP_free(f->gq);
	BN_free(f->inv_2_512);
	BN_free(f->p);
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
	    !limbs_from_bn(EC_GROUP_get0_order(f->g), f->order) ||
	    (f->inv_2_512 = BN_new()) == NULL || BN_set_bit(f->inv_2_512, 512) != 1 ||
	    BN_nnmod(f->inv_2_512, f->inv_2_512, EC_GROUP_get0_order(f->g), ctx) != 1 ||
	    BN_mod_inverse(f->inv_2_512, f->inv_2_512, EC_GROUP_get0_order(f->g), ctx) == NULL ||
	    (f->p = BN_new()) == NULL || EC_GROUP_get_curve(f->g, f->p, NULL, NULL, ctx) != 1)
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

/* The cached tables of point, a new reference; NULL if none. Under cache_lock. */
static struct ecfixed *
cache_find(const uint8_t *point)
{
	for (int i = 0; i < ECFIXED_CACHE; i++)
		if (cache[i] != NULL && memcmp(cache[i]->point, point, P256_POINT_LEN) == 0) {
			cache[i]->refs++;
			return cache[i];
		}
	return NULL;
}

/* Keeps f in a free slot, or one nobody uses now; else f stays its caller's alone. */
static void
cache_keep(struct ecfixed *f)
{
	struct ecfixed *old = NULL;

	pthread_mutex_lock(&cache_lock);
	for (int i = 0; i < ECFIXED_CACHE; i++)
		if (cache[i] == NULL || cache[i]->refs == 1) {
			old = cache[i];
			cache[i] = f;
			f->refs++;
			break;
		}
	pthread_mutex_unlock(&cache_lock);
	/* the cache's reference was the last */
	ecfixed_free(old);
}

struct ecfixed *
ecfixed_get(EVP_PKEY *key)
{
	uint8_t point[P256_POINT_LEN];
	char curve[32];
	size_t n = 0;
	struct ecfixed *f;

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
	f = cache_find(point);
	pthread_mutex_unlock(&cache_lock);
	if (f != NULL)
		return f;
	pthread_mutex_lock(&make_lock);
	pthread_mutex_lock(&cache_lock);
	f = cache_find(point);
	pthread_mutex_unlock(&cache_lock);
	if (f == NULL && (f = ecfixed_make(point)) != NULL) {
		f->refs = 1;
		cache_keep(f);
	}
	pthread_mutex_unlock(&make_lock);
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
	const BIGNUM *n = EC_GROUP_get0_order(f->g);
	uint64_t sl[LIMBS], xl[LIMBS];
	int k;

	return limbs_from_bn(s, sl) && (k = limbs_almost_inverse(sl, f->order, xl)) >= 0 &&
	    limbs_to_bn(xl, w) && BN_lshift(w, w, 512 - k) == 1 &&
	    BN_mod_mul(w, w, f->inv_2_512, n, ctx) == 1 && BN_mod_mul(check, w, s, n, ctx) == 1 &&
	    BN_is_one(check);
}

bool
ecfixed_verify(
    const struct ecfixed *f, BN_CTX *ctx, const uint8_t dgst[32], const BIGNUM *r, const BIGNUM *s)
{
	const BIGNUM *n = EC_GROUP_get0_order(f->g);
	EC_POINT *p1 = NULL, *p2 = NULL;
	BIGNUM *e, *w, *u1, *u2, *x, *z, *t;
	bool ok = false;

	BN_CTX_start(ctx);
	e = BN_CTX_get(ctx);
	w = BN_CTX_get(ctx);
	u1 = BN_CTX_get(ctx);
	u2 = BN_CTX_get(ctx);
	x = BN_CTX_get(ctx);
	z = BN_CTX_get(ctx);
	if ((t = BN_CTX_get(ctx)) == NULL)
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
	    EC_POINT_get_Jprojective_coordinates_GFp(f->g, p1, x, NULL, z, ctx) != 1 ||
	    BN_mod_sqr(z, z, f->p, ctx) != 1)
		goto out;
	/*
	 * valid if and only if R.x mod n = r, R.x = X / Z^2 in Jacobian coordinates: R.x < p < 2n,
	 * so R.x is r or r + n (if below p), that is X = r Z^2 or X = (r + n) Z^2 mod p, which
	 * spares the inversion of Z that affine coordinates cost
	 */
	if (BN_mod_mul(t, r, z, f->p, ctx) != 1)
		goto out;
	ok = BN_cmp(t, x) == 0;
	if (!ok && BN_add(t, r, n) == 1 && BN_cmp(t, f->p) < 0 &&
	    BN_mod_mul(t, t, z, f->p, ctx) == 1)
		ok = BN_cmp(t, x) == 0;
out:
	EC_POINT_free(p1);
	EC_POINT_free(p2);
	BN_CTX_end(ctx);
	ERR_clear_error();
	return ok;
}
