/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ecfixed.c - ecfixed_verify(), the fixed-key ECDSA P-256 verification of a batch's
 * signatures (src/lib/ecfixed.h), over Wycheproof's ECDSA P-256/SHA-256 vectors: raw r||s
 * (IEEE P1363, as a JWS carries it) and DER (as a certificate does, decoded the way OpenSSL's
 * verification decodes it: d2i, and refused unless it encodes back to the same bytes).
 *
 * ecfixed only ever says "valid" or "don't know", and a "valid" that is wrong would admit a
 * forged entry: every case it calls valid must be "valid" in Wycheproof, and, so that it is
 * of any use, it must call every "valid" case valid. Also: two lookups of one key share its
 * tables, a key that is not P-256 has none, and signatures made with chosen s (below) are
 * called valid. Usage: test_ecfixed (the keys and chosen s), test_ecfixed <vectors folder>
 * (Wycheproof).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/ecfixed.h"
#include "test.h"
#include "lib/banned.h"

struct counts {
	int cases, valid, accepted;
};

static uint8_t *
hex(const char *s, size_t *n)
{
	size_t len = s != NULL ? strlen(s) : 1;
	uint8_t *b;

	if (len % 2 != 0 || (b = malloc(len / 2 + 1)) == NULL)
		return NULL;
	for (size_t i = 0; i < len / 2; i++) {
		unsigned v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1) {
			free(b);
			return NULL;
		}
		b[i] = (uint8_t)v;
	}
	*n = len / 2;
	return b;
}

/* The signature of a case as r and s: P1363 r||s, or DER as OpenSSL decodes it strictly. */
static ECDSA_SIG *
case_sig(const uint8_t *sig, size_t n, bool der)
{
	const unsigned char *q = sig;
	unsigned char *again = NULL;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	int len;

	if (der) {
		if ((es = d2i_ECDSA_SIG(NULL, &q, (long)n)) == NULL)
			return NULL;
		len = i2d_ECDSA_SIG(es, &again);
		if (len < 0 || (size_t)len != n || memcmp(again, sig, n) != 0) {
			ECDSA_SIG_free(es);
			es = NULL;
		}
		OPENSSL_free(again);
		return es;
	}
	if (n != 64 || (es = ECDSA_SIG_new()) == NULL || (r = BN_bin2bn(sig, 32, NULL)) == NULL ||
	    (s = BN_bin2bn(sig + 32, 32, NULL)) == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return NULL;
	}
	return es;
}

static void
run_file(const char *dir, const char *name, bool der, BN_CTX *ctx)
{
	char path[4096];
	json_error_t jerr;
	json_t *root, *groups, *g, *tc;
	struct counts c = {0};
	size_t gi, ti;

	snprintf(path, sizeof(path), "%s/wycheproof/%s", dir, name);
	if ((root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
		CHECK(false, "%s: %s", path, jerr.text);
		return;
	}
	groups = json_object_get(root, "testGroups");
	json_array_foreach(groups, gi, g)
	{
		size_t klen = 0;
		uint8_t *kder = hex(json_string_value(json_object_get(g, "publicKeyDer")), &klen);
		const unsigned char *kp = kder;
		EVP_PKEY *pub = kder != NULL ? d2i_PUBKEY(NULL, &kp, (long)klen) : NULL;
		struct ecfixed *f = ecfixed_get(pub);

		CHECK(f != NULL, "%s group %zu: a P-256 key without tables", name, gi);
		json_array_foreach(json_object_get(g, "tests"), ti, tc)
		{
			const char *result = json_string_value(json_object_get(tc, "result"));
			size_t mlen = 0, slen = 0;
			uint8_t *msg = hex(json_string_value(json_object_get(tc, "msg")), &mlen);
			uint8_t *sig = hex(json_string_value(json_object_get(tc, "sig")), &slen);
			uint8_t dgst[32];
			unsigned int dlen = 0;
			ECDSA_SIG *es;
			bool ok = false, valid = result != NULL && strcmp(result, "valid") == 0;

			c.cases++;
			c.valid += valid;
			if (f != NULL && msg != NULL && sig != NULL &&
			    EVP_Digest(msg, mlen, dgst, &dlen, EVP_sha256(), NULL) == 1 &&
			    (es = case_sig(sig, slen, der)) != NULL) {
				ok = ecfixed_verify(
				    f, ctx, dgst, ECDSA_SIG_get0_r(es), ECDSA_SIG_get0_s(es));
				ECDSA_SIG_free(es);
			}
			c.accepted += ok;
			CHECK(!ok || valid, "%s tcId %lld (%s): \"%s\" called valid", name,
			    (long long)json_integer_value(json_object_get(tc, "tcId")),
			    json_string_value(json_object_get(tc, "comment")), result);
			CHECK(ok || !valid, "%s tcId %lld (%s): a valid signature not recognized",
			    name, (long long)json_integer_value(json_object_get(tc, "tcId")),
			    json_string_value(json_object_get(tc, "comment")));
			ERR_clear_error();
			free(msg);
			free(sig);
		}
		ecfixed_release(f);
		EVP_PKEY_free(pub);
		free(kder);
	}
	CHECK(c.cases == json_integer_value(json_object_get(root, "numberOfTests")),
	    "%s: ran %d cases of %lld", name, c.cases,
	    (long long)json_integer_value(json_object_get(root, "numberOfTests")));
	printf("wycheproof %s: %d cases, %d valid, %d called valid by ecfixed\n", name, c.cases,
	    c.valid, c.accepted);
	json_decref(root);
}

/* One key's tables are shared; a key of another curve has none. */
static void
keys(void)
{
	EVP_PKEY *p256 = EVP_EC_gen("P-256"), *p384 = EVP_EC_gen("P-384");
	struct ecfixed *a = ecfixed_get(p256), *b = ecfixed_get(p256);

	CHECK(a != NULL && a == b, "two lookups of one key share its tables");
	CHECK(ecfixed_get(p384) == NULL, "a P-384 key has no tables");
	CHECK(ecfixed_get(NULL) == NULL, "no key, no tables");
	ecfixed_release(a);
	ecfixed_release(b);
	/* more keys than the cache holds, each released before the next: all get tables */
	for (int i = 0; i < 2 * ECFIXED_CACHE; i++) {
		EVP_PKEY *k = EVP_EC_gen("P-256");
		struct ecfixed *f = ecfixed_get(k);

		CHECK(f != NULL, "key %d of %d has tables", i, 2 * ECFIXED_CACHE);
		ecfixed_release(f);
		EVP_PKEY_free(k);
	}
	EVP_PKEY_free(p256);
	EVP_PKEY_free(p384);
}

/*
 * Signatures made to order, with s at the edges of its range (1, 2, n - 1, the powers of two
 * and n minus them, s with long runs of ones and zeros) and at random: for a key d, a nonce k
 * and R = k G, r = R.x mod n, the digest e = k s - r d (mod n) makes (r, s) valid. The
 * inverse of s modulo n, which ecfixed computes its own way, meets every shape of s here,
 * vectors or not; each signature must be called valid, and the same with s + 1 must not.
 */
static void
chosen_s(BN_CTX *ctx)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	EC_GROUP *g = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
	const BIGNUM *n = EC_GROUP_get0_order(g);
	EC_POINT *R = EC_POINT_new(g);
	BIGNUM *d = NULL, *k = BN_new(), *r = BN_new(), *s = BN_new(), *e = BN_new(), *t = BN_new();
	struct ecfixed *f = ecfixed_get(key);
	uint8_t dgst[32];
	int made = 0, called = 0, wrong = 0;

	CHECK(f != NULL && R != NULL && t != NULL &&
		EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &d) == 1,
	    "a P-256 key, its private scalar and its tables");
	for (int i = 0; f != NULL && d != NULL && i < 3 * 256 + 2000; i++) {
		if (i < 256) { /* 2^i, and n - 2^i */
			BN_zero(s);
			BN_set_bit(s, i);
		} else if (i < 512) {
			BN_zero(t);
			BN_set_bit(t, i - 256);
			BN_sub(s, n, t);
		} else if (i < 768) { /* 2^j - 1: j ones */
			BN_zero(s);
			BN_set_bit(s, i - 512 + 1);
			BN_sub_word(s, 1);
		} else {
			BN_rand_range(s, n);
		}
		if (BN_is_zero(s) || BN_cmp(s, n) >= 0)
			continue;
		/* k random, r = (k G).x mod n, e = k s - r d mod n */
		if (BN_rand_range(k, n) != 1 || BN_is_zero(k) ||
		    EC_POINT_mul(g, R, k, NULL, NULL, ctx) != 1 ||
		    EC_POINT_get_affine_coordinates(g, R, r, NULL, ctx) != 1 ||
		    BN_nnmod(r, r, n, ctx) != 1 || BN_is_zero(r) ||
		    BN_mod_mul(e, k, s, n, ctx) != 1 || BN_mod_mul(t, r, d, n, ctx) != 1 ||
		    BN_mod_sub(e, e, t, n, ctx) != 1 ||
		    BN_bn2binpad(e, dgst, sizeof(dgst)) != (int)sizeof(dgst))
			continue;
		made++;
		called += ecfixed_verify(f, ctx, dgst, r, s);
		if (BN_add_word(s, 1) == 1 && BN_cmp(s, n) < 0)
			wrong += ecfixed_verify(f, ctx, dgst, r, s);
	}
	CHECK(made > 2700, "%d signatures made to order", made);
	CHECK(called == made, "%d of %d signatures with chosen s called valid", called, made);
	CHECK(wrong == 0, "%d signatures with s + 1 called valid", wrong);
	ecfixed_release(f);
	BN_free(d);
	BN_free(k);
	BN_free(r);
	BN_free(s);
	BN_free(e);
	BN_free(t);
	EC_POINT_free(R);
	EC_GROUP_free(g);
	EVP_PKEY_free(key);
	ERR_clear_error();
}

int
main(int argc, char **argv)
{
	struct stat st;
	BN_CTX *ctx = BN_CTX_new();

	if (argc > 2) {
		fprintf(stderr, "usage: test_ecfixed [vectors folder]\n");
		return 2;
	}
	if (argc == 1) {
		keys();
		chosen_s(ctx);
	} else {
		if (stat(argv[1], &st) != 0 || !S_ISDIR(st.st_mode))
			test_skip("test vector folder not present");
		run_file(argv[1], "ecdsa_secp256r1_sha256_p1363_test.json", false, ctx);
		run_file(argv[1], "ecdsa_secp256r1_sha256_test.json", true, ctx);
	}
	BN_CTX_free(ctx);
	return test_done();
}
