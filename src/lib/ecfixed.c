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

/*
 * The inverse of s modulo the group order n by Bernstein and Yang's division steps ("Fast
 * constant-time gcd computation and modular inversion", TCHES 2019, section 8), in variable
 * time, as everything here is public: each round takes 62 steps from the low bits of f and g
 * alone into a matrix, then applies the matrix to the whole numbers. Numbers are signed, in
 * five limbs of 62 bits, least significant first: limbs 0 to 3 in [0, 2^62), limb 4 carries
 * the sign. Here it takes 1.6 us, against 5.6 us for Kaliski's binary inverse that it replaced
 * and 13 us for BN_mod_inverse.
 */
#define LIMBS 5
#define LIMB_BITS 62
#define LIMB_MASK ((UINT64_C(1) << LIMB_BITS) - 1)
/*
 * Rounds before g reaches 0: the paper bounds the division steps of d-bit inputs (d >= 46) by
 * (49 d + 80) / 17, under 744 for 256 bits: 12 rounds of 62. An input that took more would
 * only be a "don't know".
 */
#define MAX_ROUNDS 12

typedef __int128 i128;

struct s62 {
	int64_t v[LIMBS];
};

/* The matrix of one round: 2^62 f' = u f + v g, 2^62 g' = q f + r g. */
struct trans {
	int64_t u, v, q, r;
};

/* s62 from a 256-bit big-endian number. */
static void
s62_from_be(const uint8_t be[32], struct s62 *a)
{
	uint64_t w[4] = {0};

	for (int i = 0; i < 32; i++)
		w[(31 - i) / 8] |= (uint64_t)be[i] << (8 * ((31 - i) % 8));
	for (int i = 0; i < LIMBS; i++) {
		int bit = LIMB_BITS * i, word = bit / 64, off = bit % 64;
		uint64_t x = w[word] >> off;

		if (off > 64 - LIMB_BITS && word + 1 < 4)
			x |= w[word + 1] << (64 - off);
		a->v[i] = (int64_t)(x & LIMB_MASK);
	}
}

/* a (0 <= a < 2^256) as a 256-bit big-endian number. */
static void
s62_to_be(const struct s62 *a, uint8_t be[32])
{
	uint64_t w[4] = {0};

	for (int i = 0; i < LIMBS; i++) {
		int bit = LIMB_BITS * i, word = bit / 64, off = bit % 64;

		w[word] |= (uint64_t)a->v[i] << off;
		if (off > 64 - LIMB_BITS && word + 1 < 4)
			w[word + 1] |= (uint64_t)a->v[i] >> (64 - off);
	}
	for (int i = 0; i < 32; i++)
		be[i] = (uint8_t)(w[(31 - i) / 8] >> (8 * ((31 - i) % 8)));
}

/* a += m b, m = 1 or -1 */
static void
s62_add(struct s62 *a, const struct s62 *b, int64_t m)
{
	int64_t c = 0;

	for (int i = 0; i < LIMBS - 1; i++) {
		c += a->v[i] + m * b->v[i];
		a->v[i] = (int64_t)((uint64_t)c & LIMB_MASK);
		c >>= LIMB_BITS;
	}
	a->v[LIMBS - 1] += m * b->v[LIMBS - 1] + c;
}

static bool
s62_zero(const struct s62 *a)
{
	int64_t x = 0;

	for (int i = 0; i < LIMBS; i++)
		x |= a->v[i];
	return x == 0;
}

/* a = 1 or a = -1: the sign, or 0 for anything else */
static int
s62_unit(const struct s62 *a)
{
	bool one = a->v[0] == 1, minus = a->v[0] == (int64_t)LIMB_MASK;

	for (int i = 1; i < LIMBS - 1; i++) {
		one = one && a->v[i] == 0;
		minus = minus && a->v[i] == (int64_t)LIMB_MASK;
	}
	return one && a->v[LIMBS - 1] == 0 ? 1 : minus && a->v[LIMBS - 1] == -1 ? -1 : 0;
}

/*
 * One round of 62 division steps on the low 62 bits of f (odd) and g, which decide them; the
 * matrix into t, and the new delta.
 */
static int64_t
divsteps(int64_t delta, uint64_t f, uint64_t g, struct trans *t)
{
	uint64_t u = 1, v = 0, q = 0, r = 1, x, y;
	int i = LIMB_BITS, z;

	for (;;) {
		/* g even: halved, as many times at once as it ends in zeros */
		z = __builtin_ctzll(g | UINT64_MAX << i);
		g >>= z;
		u <<= z;
		v <<= z;
		delta += z;
		if ((i -= z) == 0)
			break;
		if (delta > 0) {
			/* (f, g) = (g, (g - f) / 2) */
			delta = 1 - delta;
			x = f;
			f = g;
			g = (g - x) >> 1;
			x = u;
			y = v;
			u = q << 1;
			v = r << 1;
			q -= x;
			r -= y;
		} else {
			/* g = (g + f) / 2 */
			delta = 1 + delta;
			g = (g + f) >> 1;
			q += u;
			r += v;
			u <<= 1;
			v <<= 1;
		}
		i--;
	}
	t->u = (int64_t)u;
	t->v = (int64_t)v;
	t->q = (int64_t)q;
	t->r = (int64_t)r;
	return delta;
}

/*
 * (a, b) = t (a, b) / 2^62: exact for f and g, whose low 62 bits the round made zero (n the
 * zero number); modulo n for d and e, a multiple of n added to each first making its low 62
 * bits zero. Each round adds less than n to the larger magnitude of d and e, so 12 rounds stay
 * far inside 310 bits.
 */
static void
round_apply(
    struct s62 *a, struct s62 *b, const struct trans *t, const struct s62 *n, uint64_t n_inv)
{
	i128 ca = (i128)t->u * a->v[0] + (i128)t->v * b->v[0];
	i128 cb = (i128)t->q * a->v[0] + (i128)t->r * b->v[0];
	int64_t ma = (int64_t)((-(uint64_t)ca * n_inv) & LIMB_MASK);
	int64_t mb = (int64_t)((-(uint64_t)cb * n_inv) & LIMB_MASK);

	ca = (ca + (i128)ma * n->v[0]) >> LIMB_BITS;
	cb = (cb + (i128)mb * n->v[0]) >> LIMB_BITS;
	for (int i = 1; i < LIMBS; i++) {
		ca += (i128)t->u * a->v[i] + (i128)t->v * b->v[i] + (i128)ma * n->v[i];
		cb += (i128)t->q * a->v[i] + (i128)t->r * b->v[i] + (i128)mb * n->v[i];
		a->v[i - 1] = (int64_t)((uint64_t)ca & LIMB_MASK);
		b->v[i - 1] = (int64_t)((uint64_t)cb & LIMB_MASK);
		ca >>= LIMB_BITS;
		cb >>= LIMB_BITS;
	}
	a->v[LIMBS - 1] = (int64_t)ca;
	b->v[LIMBS - 1] = (int64_t)cb;
}

/*
 * s^-1 mod n for 0 < s < n (n odd, n_inv = n^-1 mod 2^62), both 32 big-endian bytes; false if
 * s has none. f starts as n and g as s, and f = d s, g = e s (mod n) hold throughout; when g
 * reaches 0, f is +-1.
 */
static bool
order_inverse(const struct s62 *n, uint64_t n_inv, const uint8_t s_be[32], uint8_t out[32])
{
	const struct s62 zero = {{0}};
	struct s62 f = *n, g, d = {{0}}, e = {{1}}, t;
	struct trans m;
	int64_t delta = 1;
	int sign;

	s62_from_be(s_be, &g);
	for (int i = 0; i < MAX_ROUNDS && !s62_zero(&g); i++) {
		delta = divsteps(delta, (uint64_t)f.v[0], (uint64_t)g.v[0], &m);
		round_apply(&d, &e, &m, n, n_inv);
		round_apply(&f, &g, &m, &zero, 0);
	}
	if (!s62_zero(&g) || (sign = s62_unit(&f)) == 0)
		return false;
	if (sign < 0) {
		t = zero;
		s62_add(&t, &d, -1);
		d = t;
	}
	while (d.v[LIMBS - 1] < 0)
		s62_add(&d, n, 1);
	for (;;) {
		t = d;
		s62_add(&t, n, -1);
		if (t.v[LIMBS - 1] < 0)
			break;
		d = t;
	}
	s62_to_be(&d, out);
	return true;
}

struct ecfixed {
	uint8_t point[P256_POINT_LEN]; /* the key, the cache's index */
	struct s62 order; /* n, the group order */
	uint64_t order_inv; /* n^-1 mod 2^62 */
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

/* f's order and order_inv from n (odd, 256 bits): Newton's iteration doubles the bits of
 * n^-1 mod 2^64 that are right each time, from the three that n itself gets right. */
static bool
order_limbs(const BIGNUM *n, struct ecfixed *f)
{
	uint8_t be[32];
	uint64_t x;

	if (BN_bn2binpad(n, be, sizeof(be)) != (int)sizeof(be) || !BN_is_odd(n))
		return false;
	s62_from_be(be, &f->order);
	x = (uint64_t)f->order.v[0];
	for (int i = 0; i < 5; i++)
		x *= 2 - (uint64_t)f->order.v[0] * x;
	f->order_inv = x & LIMB_MASK;
	return true;
}

static void
ecfixed_free(struct ecfixed *f)
{
	if (f == NULL)
		return;
	EC_GROUP_free(f->g);
	EC_GROUP_free(f->gq);
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
	    !order_limbs(EC_GROUP_get0_order(f->g), f) || (f->p = BN_new()) == NULL ||
	    EC_GROUP_get_curve(f->g, f->p, NULL, NULL, ctx) != 1)
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
	uint8_t sb[32], wb[32];

	return BN_bn2binpad(s, sb, sizeof(sb)) == (int)sizeof(sb) &&
	    order_inverse(&f->order, f->order_inv, sb, wb) &&
	    BN_bin2bn(wb, sizeof(wb), w) != NULL &&
	    BN_mod_mul(check, w, s, EC_GROUP_get0_order(f->g), ctx) == 1 && BN_is_one(check);
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
