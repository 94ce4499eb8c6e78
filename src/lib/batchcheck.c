/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The fast paths of a manifest's per-entry checks. Why each "yes" implies the original
 * check's "yes" is argued in docs/formats.md ("How a batch is checked fast") and next to the
 * code below.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "base64.h"
#include "batchcheck.h"
#include "ecfixed.h"
#include "error.h"
#include "jws.h"
#include "limits.h"
#include "x509.h"
#include "banned.h"

/* Accepted leaves kept as models, and how often learning may fail before it stops. */
#define MAX_MODELS 16
#define MAX_LEARN_FAILS 16
/* Verification contexts a thread keeps (signers and issuers of one batch). */
#define WORKER_VERIFIERS 8
/* The DER SubjectPublicKeyInfo of an EC key is far smaller. */
#define MAX_SPKI_DER 1024
/* x509_chain_verify's security level for device chains. */
#define AUTH_LEVEL 2

static bool
sig_is_ecdsa_sha2(int nid)
{
	return nid == NID_ecdsa_with_SHA256 || nid == NID_ecdsa_with_SHA384 ||
	    nid == NID_ecdsa_with_SHA512;
}

/*
 * The same steps as x509_from_der(). d2i_X509 decodes the key "opportunistically": a key that
 * does not decode fails neither the decoding nor the extension cache, so success, trailing
 * bytes and EXFLAG_INVALID come out as with the key. Only the signature information (cached
 * with the extensions) may look at the key, for signature algorithms without a digest
 * (RSA-PSS, EdDSA); those are left to x509_from_der().
 */
X509 *
batchcheck_decode_nokey(const uint8_t *p, size_t n)
{
	OSSL_LIB_CTX *nokey = x509_nokey_libctx();
	const unsigned char *q = p;
	X509 *x = NULL;

	if (n > MAX_CERT_DER || nokey == NULL)
		return NULL;
	x = (X509 *)ASN1_item_d2i_ex(NULL, &q, (long)n, ASN1_ITEM_rptr(X509), nokey, NULL);
	if (x == NULL || q != p + n)
		goto fail;
	X509_check_purpose(x, -1, 0);
	if ((X509_get_extension_flags(x) & EXFLAG_INVALID) != 0 ||
	    !sig_is_ecdsa_sha2(X509_get_signature_nid(x)))
		goto fail;
	ERR_clear_error();
	return x;
fail:
	X509_free(x);
	ERR_clear_error();
	return NULL;
}

int
batchcheck_key_xy(EVP_PKEY *key, uint8_t *out, size_t *len)
{
	uint8_t pt[1 + 2 * 48];
	size_t n = 0;

	if (key == NULL ||
	    EVP_PKEY_get_octet_string_param(
		key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt), &n) != 1 ||
	    n < 3 || pt[0] != 0x04)
		return DEVID_ECRYPTO;
	memcpy(out, pt + 1, n - 1);
	*len = n - 1;
	return 0;
}

/* An accepted leaf, and the chain X509_verify_cert built for it. */
struct model {
	X509 *leaf; /* decoded in full */
	STACK_OF(X509) *x5c; /* the x5c[1..] it came with */
	STACK_OF(X509) *chain; /* leaf, its issuer, ..., the trust anchor */
	/* its SubjectPublicKeyInfo up to the point, which is uncompressed, point_len bytes */
	uint8_t spki_prefix[MAX_SPKI_DER];
	size_t prefix_len, point_len;
	int curve; /* NID of the named curve */
};

struct batchcheck {
	X509_STORE *roots;
	EVP_MD *sha256, *sha384, *sha512; /* fetched once: a fetch per use takes locks */
	pthread_mutex_t lock; /* serializes learning */
	struct model models[MAX_MODELS]; /* models[0..nmodels) never change once counted */
	atomic_int nmodels;
	atomic_int learn_fails;
};

struct verifier {
	EVP_PKEY *key; /* borrowed from a certificate the batch outlives */
	const EVP_MD *md;
	EVP_PKEY_CTX *ctx; /* EVP_PKEY_verify_init'ed for key, over md digests */
	bool p256;
};

struct batchcheck_worker {
	struct batchcheck *b;
	EVP_MD_CTX *md;
	struct verifier v[WORKER_VERIFIERS];
	int nv, next;
	BN_CTX *bn;
	/* the keys met, with their tables (f NULL: none to be had; ecfixed.h) */
	struct {
		EVP_PKEY *key; /* borrowed from a certificate the batch outlives */
		struct ecfixed *f;
	} fixed[WORKER_VERIFIERS];
	int nfixed;
	struct {
		int curve; /* NID */
		EC_GROUP *group;
		EC_POINT *point;
	} ec[2];
};

struct batchcheck *
batchcheck_new(X509_STORE *roots)
{
	struct batchcheck *b;

	if ((b = calloc(1, sizeof(*b))) == NULL)
		return NULL;
	b->roots = roots;
	atomic_init(&b->nmodels, 0);
	atomic_init(&b->learn_fails, 0);
	if (pthread_mutex_init(&b->lock, NULL) != 0) {
		free(b);
		return NULL;
	}
	if ((b->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	    (b->sha384 = EVP_MD_fetch(NULL, "SHA384", NULL)) == NULL ||
	    (b->sha512 = EVP_MD_fetch(NULL, "SHA512", NULL)) == NULL) {
		batchcheck_free(b);
		return NULL;
	}
	return b;
}

void
batchcheck_free(struct batchcheck *b)
{
	if (b == NULL)
		return;
	for (int i = 0; i < atomic_load(&b->nmodels); i++) {
		X509_free(b->models[i].leaf);
		sk_X509_pop_free(b->models[i].x5c, X509_free);
		sk_X509_pop_free(b->models[i].chain, X509_free);
	}
	EVP_MD_free(b->sha256);
	EVP_MD_free(b->sha384);
	EVP_MD_free(b->sha512);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

struct batchcheck_worker *
batchcheck_worker_new(struct batchcheck *b)
{
	struct batchcheck_worker *w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		return NULL;
	w->b = b;
	if ((w->md = EVP_MD_CTX_new()) == NULL || (w->bn = BN_CTX_new()) == NULL) {
		EVP_MD_CTX_free(w->md);
		free(w);
		return NULL;
	}
	return w;
}

void
batchcheck_worker_free(struct batchcheck_worker *w)
{
	if (w == NULL)
		return;
	for (int i = 0; i < w->nv; i++)
		EVP_PKEY_CTX_free(w->v[i].ctx);
	for (int i = 0; i < 2; i++) {
		EC_POINT_free(w->ec[i].point);
		EC_GROUP_free(w->ec[i].group);
	}
	for (int i = 0; i < w->nfixed; i++)
		ecfixed_release(w->fixed[i].f);
	BN_CTX_free(w->bn);
	EVP_MD_CTX_free(w->md);
	free(w);
}

/* ES256 is ECDSA on P-256 only (as jws.c's is_p256). */
static bool
is_p256(EVP_PKEY *k)
{
	char curve[32];

	return k != NULL && EVP_PKEY_get_base_id(k) == EVP_PKEY_EC &&
	    EVP_PKEY_get_group_name(k, curve, sizeof(curve), NULL) == 1 &&
	    strcmp(curve, "prime256v1") == 0;
}

/*
 * A context ready for EVP_PKEY_verify(key) over md digests. EVP_DigestVerify(md, key) is
 * EVP_PKEY_verify over the md digest of the message for ECDSA (the provider's digest-verify
 * hashes, then runs the same ecdsa_verify), so one context made per thread replaces a fetch
 * and a new context per signature.
 */
static struct verifier *
verifier(struct batchcheck_worker *w, EVP_PKEY *key, const EVP_MD *md)
{
	struct verifier *v;
	EVP_PKEY_CTX *c;

	for (int i = 0; i < w->nv; i++)
		if (w->v[i].key == key && w->v[i].md == md)
			return &w->v[i];
	if ((c = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL)) == NULL ||
	    EVP_PKEY_verify_init(c) != 1 || EVP_PKEY_CTX_set_signature_md(c, md) != 1) {
		EVP_PKEY_CTX_free(c);
		return NULL;
	}
	if (w->nv < WORKER_VERIFIERS)
		v = &w->v[w->nv++];
	else {
		v = &w->v[w->next];
		w->next = (w->next + 1) % WORKER_VERIFIERS;
		EVP_PKEY_CTX_free(v->ctx);
	}
	v->key = key;
	v->md = md;
	v->ctx = c;
	v->p256 = is_p256(key);
	return v;
}

/* The tables of key (NULL: none), looked up once per key and thread. */
static struct ecfixed *
fixed_for(struct batchcheck_worker *w, EVP_PKEY *key)
{
	for (int i = 0; i < w->nfixed; i++)
		if (w->fixed[i].key == key)
			return w->fixed[i].f;
	if (w->nfixed == WORKER_VERIFIERS)
		return NULL;
	w->fixed[w->nfixed].key = key;
	w->fixed[w->nfixed].f = ecfixed_get(key);
	return w->fixed[w->nfixed++].f;
}

/*
 * ECDSA_do_verify(dgst, es, key) by the key's tables, for a SHA-256 digest; false (don't know)
 * when the key has none.
 */
static bool
fixed_verify(struct batchcheck_worker *w, EVP_PKEY *key, const uint8_t *h, unsigned int hlen,
    const ECDSA_SIG *es)
{
	struct ecfixed *f;

	if (hlen != 32 || (f = fixed_for(w, key)) == NULL)
		return false;
	return ecfixed_verify(f, w->bn, h, ECDSA_SIG_get0_r(es), ECDSA_SIG_get0_s(es));
}

struct part {
	const void *p;
	size_t n;
};

static bool
digest(struct batchcheck_worker *w, const EVP_MD *md, const struct part *v, int nv, uint8_t *out,
    unsigned int *outlen)
{
	if (EVP_DigestInit_ex2(w->md, md, NULL) != 1)
		return false;
	for (int i = 0; i < nv; i++)
		if (EVP_DigestUpdate(w->md, v[i].p, v[i].n) != 1)
			return false;
	return EVP_DigestFinal_ex(w->md, out, outlen) == 1;
}

/*
 * jws_verify: the signature must be unpadded base64url of 64 bytes r || s; es256_verify: the
 * key must be P-256, and ECDSA with SHA-256 over prot "." payload must verify the DER
 * signature made from r and s (made here with the same OpenSSL calls).
 */
bool
batchcheck_jws(struct batchcheck_worker *w, X509 *signer, const char *prot, size_t prot_len,
    const char *payload, size_t payload_len, const char *sig, size_t sig_len)
{
	EVP_PKEY *pub = X509_get0_pubkey(signer);
	struct part in[3] = {{prot, prot_len}, {".", 1}, {payload, payload_len}};
	struct verifier *v;
	uint8_t *raw = NULL, h[EVP_MAX_MD_SIZE];
	unsigned char *der = NULL;
	unsigned int hlen = 0;
	size_t rawlen;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	int derlen;
	bool ok = false;

	if (pub == NULL || (v = verifier(w, pub, w->b->sha256)) == NULL || !v->p256)
		goto out;
	if (b64url_decode(sig, sig_len, &raw, &rawlen) != 0 || rawlen != ES256_SIG_LEN)
		goto out;
	if ((es = ECDSA_SIG_new()) == NULL || (r = BN_bin2bn(raw, 32, NULL)) == NULL ||
	    (s = BN_bin2bn(raw + 32, 32, NULL)) == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
		BN_free(r);
		BN_free(s);
		goto out;
	}
	if (!digest(w, w->b->sha256, in, 3, h, &hlen))
		goto out;
	if (fixed_verify(w, pub, h, hlen, es)) {
		ok = true;
		goto out;
	}
	if ((derlen = i2d_ECDSA_SIG(es, &der)) <= 0)
		goto out;
	ok = EVP_PKEY_verify(v->ctx, der, (size_t)derlen, h, hlen) == 1;
out:
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	free(raw);
	ERR_clear_error();
	return ok;
}

/* One DER TLV at p[0..n) with a low tag number and a definite length. */
static bool
der_tlv(const uint8_t *p, size_t n, uint8_t tag, size_t *hdr, size_t *len)
{
	size_t l = 0, nb;

	if (n < 2 || p[0] != tag)
		return false;
	if (p[1] < 0x80) {
		*hdr = 2;
		*len = p[1];
	} else {
		nb = p[1] & 0x7f;
		if (nb == 0 || nb > 4 || n < 2 + nb)
			return false;
		for (size_t i = 0; i < nb; i++)
			l = l << 8 | p[2 + i];
		*hdr = 2 + nb;
		*len = l;
	}
	return *len <= n - *hdr;
}

/*
 * Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }.
 * X509_verify hashes the TBSCertificate as received (OpenSSL keeps its encoding) and, for a
 * BIT STRING without unused bits, verifies the bytes after the unused-bits octet; one with
 * unused bits fails it, and here it is a "don't know".
 */
static bool
der_split_cert(const uint8_t *p, size_t n, struct part *tbs, struct part *sig)
{
	size_t h, l, off, th, tl, ah, al, bh, bl;

	if (!der_tlv(p, n, 0x30, &h, &l) || h + l != n)
		return false;
	off = h;
	if (!der_tlv(p + off, n - off, 0x30, &th, &tl))
		return false;
	tbs->p = p + off;
	tbs->n = th + tl;
	off += th + tl;
	if (!der_tlv(p + off, n - off, 0x30, &ah, &al))
		return false;
	off += ah + al;
	if (!der_tlv(p + off, n - off, 0x03, &bh, &bl) || off + bh + bl != n || bl < 1 ||
	    p[off + bh] != 0)
		return false;
	sig->p = p + off + bh + 1;
	sig->n = bl - 1;
	return true;
}

/*
 * The DER ECDSA-Sig-Value verified by key's tables: what OpenSSL's ECDSA verification does
 * with it (ossl_ecdsa_verify: decoded, refused unless it encodes back to the same bytes, then
 * ECDSA_do_verify).
 */
static bool
der_sig_ok(struct batchcheck_worker *w, EVP_PKEY *key, const uint8_t *h, unsigned int hlen,
    const uint8_t *sig, size_t n)
{
	const unsigned char *q = sig;
	unsigned char *der = NULL;
	ECDSA_SIG *es;
	int derlen;
	bool ok = false;

	if ((es = d2i_ECDSA_SIG(NULL, &q, (long)n)) == NULL)
		goto out;
	if ((derlen = i2d_ECDSA_SIG(es, &der)) <= 0 || (size_t)derlen != n ||
	    memcmp(der, sig, n) != 0)
		goto out;
	ok = fixed_verify(w, key, h, hlen, es);
out:
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	ERR_clear_error();
	return ok;
}

/* X509_verify(leaf, issuer_key), as ASN1_item_verify_ctx does it for ECDSA with SHA-2. */
static bool
leaf_signature_ok(struct batchcheck_worker *w, X509 *leaf, const uint8_t *der, size_t derlen,
    EVP_PKEY *issuer_key)
{
	struct part tbs, sig;
	const X509_ALGOR *outer;
	const EVP_MD *md;
	struct verifier *v;
	uint8_t h[EVP_MAX_MD_SIZE];
	unsigned int hlen = 0;
	int mdnid, pknid;

	X509_get0_signature(NULL, &outer, leaf);
	if (issuer_key == NULL || !der_split_cert(der, derlen, &tbs, &sig) ||
	    X509_ALGOR_cmp(outer, X509_get0_tbs_sigalg(leaf)) != 0 ||
	    !OBJ_find_sigid_algs(X509_get_signature_nid(leaf), &mdnid, &pknid) ||
	    !EVP_PKEY_is_a(issuer_key, OBJ_nid2sn(pknid)))
		return false;
	if (mdnid == NID_sha256)
		md = w->b->sha256;
	else if (mdnid == NID_sha384)
		md = w->b->sha384;
	else if (mdnid == NID_sha512)
		md = w->b->sha512;
	else
		return false;
	if ((v = verifier(w, issuer_key, md)) == NULL || !digest(w, md, &tbs, 1, h, &hlen))
		return false;
	if (md == w->b->sha256 && der_sig_ok(w, issuer_key, h, hlen, sig.p, sig.n))
		return true;
	return EVP_PKEY_verify(v->ctx, sig.p, sig.n, h, hlen) == 1;
}

/* OpenSSL's DER encoding of the certificate's SubjectPublicKeyInfo into buf; 0 on failure. */
static size_t
spki_der(X509 *cert, uint8_t buf[MAX_SPKI_DER])
{
	X509_PUBKEY *xpk = X509_get_X509_PUBKEY(cert);
	unsigned char *q = buf;
	int len;

	if (xpk == NULL || (len = i2d_X509_PUBKEY(xpk, NULL)) <= 0 || len > MAX_SPKI_DER ||
	    i2d_X509_PUBKEY(xpk, &q) != len)
		return 0;
	return (size_t)len;
}

/*
 * Whether the point decodes on the curve: what decoding the key does with it once the
 * algorithm and curve are known (the SubjectPublicKeyInfo decoder reaches EC_KEY_oct2key,
 * that is EC_POINT_oct2point on the curve's group).
 */
static bool
point_ok(struct batchcheck_worker *w, int curve, const uint8_t *p, size_t n)
{
	int i;

	for (i = 0; i < 2 && w->ec[i].group != NULL && w->ec[i].curve != curve; i++)
		;
	if (i == 2)
		return false;
	if (w->ec[i].group == NULL) {
		if ((w->ec[i].group = EC_GROUP_new_by_curve_name(curve)) == NULL ||
		    (w->ec[i].point = EC_POINT_new(w->ec[i].group)) == NULL) {
			EC_GROUP_free(w->ec[i].group);
			w->ec[i].group = NULL;
			return false;
		}
		w->ec[i].curve = curve;
	}
	return EC_POINT_oct2point(w->ec[i].group, w->ec[i].point, p, n, NULL) == 1;
}

/* check_cert_time of OpenSSL's chain verification, at the current time. */
static bool
time_ok(X509 *x)
{
	return X509_cmp_time(X509_get0_notBefore(x), NULL) < 0 &&
	    X509_cmp_time(X509_get0_notAfter(x), NULL) > 0;
}

static bool
same_x5c(STACK_OF(X509) *a, STACK_OF(X509) *b)
{
	if (sk_X509_num(a) != sk_X509_num(b))
		return false;
	for (int i = 0; i < sk_X509_num(a); i++)
		if (sk_X509_value(a, i) != sk_X509_value(b, i))
			return false;
	return true;
}

static bool
same_der_name(const X509_NAME *a, const X509_NAME *b)
{
	const unsigned char *da, *db;
	size_t la, lb;

	return X509_NAME_get0_der(a, &da, &la) == 1 && X509_NAME_get0_der(b, &db, &lb) == 1 &&
	    la == lb && memcmp(da, db, la) == 0;
}

/*
 * The leaf a equals the model leaf m in everything OpenSSL's chain verification and
 * x509_check_idevid read of a leaf, except what batchcheck_leaf() checks per leaf (serial,
 * validity, key, signature) and what neither reads when no certificate above carries name
 * constraints (subject, subjectKeyIdentifier value).
 */
static bool
same_profile(X509 *a, X509 *m)
{
	const ASN1_BIT_STRING *iuid, *suid;
	const X509_ALGOR *aa, *ma;
	X509_ALGOR *ak, *mk;
	int n;

	X509_get0_uids(a, &iuid, &suid);
	if (iuid != NULL || suid != NULL)
		return false;
	if (X509_get_version(a) != X509_get_version(m) ||
	    X509_get_extension_flags(a) != X509_get_extension_flags(m) ||
	    X509_get_key_usage(a) != X509_get_key_usage(m) ||
	    X509_get_extended_key_usage(a) != X509_get_extended_key_usage(m) ||
	    X509_get_pathlen(a) != X509_get_pathlen(m))
		return false;
	X509_get0_signature(NULL, &aa, a);
	X509_get0_signature(NULL, &ma, m);
	if (X509_ALGOR_cmp(aa, ma) != 0 ||
	    X509_ALGOR_cmp(X509_get0_tbs_sigalg(a), X509_get0_tbs_sigalg(m)) != 0)
		return false;
	if (!same_der_name(X509_get_issuer_name(a), X509_get_issuer_name(m)) ||
	    (X509_NAME_entry_count(X509_get_subject_name(a)) == 0) !=
		(X509_NAME_entry_count(X509_get_subject_name(m)) == 0) ||
	    X509_NAME_cmp(X509_get_subject_name(a), X509_get_issuer_name(a)) == 0)
		return false;
	if (!X509_PUBKEY_get0_param(NULL, NULL, NULL, &ak, X509_get_X509_PUBKEY(a)) ||
	    !X509_PUBKEY_get0_param(NULL, NULL, NULL, &mk, X509_get_X509_PUBKEY(m)) ||
	    X509_ALGOR_cmp(ak, mk) != 0)
		return false;
	if ((n = X509_get_ext_count(a)) != X509_get_ext_count(m))
		return false;
	for (int i = 0; i < n; i++) {
		X509_EXTENSION *ea = X509_get_ext(a, i), *em = X509_get_ext(m, i);
		ASN1_OBJECT *oa = X509_EXTENSION_get_object(ea);

		if (OBJ_cmp(oa, X509_EXTENSION_get_object(em)) != 0 ||
		    X509_EXTENSION_get_critical(ea) != X509_EXTENSION_get_critical(em))
			return false;
		if (OBJ_obj2nid(oa) != NID_subject_key_identifier &&
		    ASN1_STRING_cmp(X509_EXTENSION_get_data(ea), X509_EXTENSION_get_data(em)) != 0)
			return false;
	}
	return true;
}

static const struct model *
find_model(struct batchcheck *b, X509 *leaf, STACK_OF(X509) *x5c)
{
	int n = atomic_load(&b->nmodels);

	for (int i = 0; i < n; i++)
		if (same_x5c(b->models[i].x5c, x5c) && same_profile(leaf, b->models[i].leaf))
			return &b->models[i];
	return NULL;
}

/* x509_check_idevid's serial rule. */
static bool
serial_ok(X509 *x)
{
	const ASN1_INTEGER *serial = X509_get0_serialNumber(x);

	return serial != NULL && ASN1_STRING_type(serial) != V_ASN1_NEG_INTEGER &&
	    ASN1_STRING_length(serial) <= 20 && ASN1_STRING_length(serial) >= 1 &&
	    !(ASN1_STRING_length(serial) == 1 && ASN1_STRING_get0_data(serial)[0] == 0);
}

/*
 * The per-leaf part. The key: its SubjectPublicKeyInfo must equal the model's up to the point
 * (same algorithm and named curve, so the same type, curve, security bits and no explicit
 * parameters, which the model passed: x509_check_idevid's key rule, security level 2 and
 * X509_V_FLAG_X509_STRICT's explicit-curve rule), the point must be uncompressed and decode
 * on the curve (else the key would not decode), and then the key's encoded point, from which
 * the JWK comparison takes x || y, is these bytes. Then x509_check_idevid's serial rule, the
 * validity of every certificate of the chain and the leaf's signature by its issuer.
 */
static bool
leaf_ok(struct batchcheck_worker *w, const struct model *m, X509 *cert, const uint8_t *der,
    size_t derlen, const uint8_t *jwk_xy, size_t jwk_xy_len)
{
	uint8_t spki[MAX_SPKI_DER];
	const uint8_t *pt;
	size_t n;
	bool ok = false;

	if ((n = spki_der(cert, spki)) != m->prefix_len + m->point_len ||
	    memcmp(spki, m->spki_prefix, m->prefix_len) != 0)
		goto out;
	pt = spki + m->prefix_len;
	if (pt[0] != 0x04 || jwk_xy_len != m->point_len - 1 ||
	    CRYPTO_memcmp(pt + 1, jwk_xy, jwk_xy_len) != 0 ||
	    !point_ok(w, m->curve, pt, m->point_len))
		goto out;
	if (!serial_ok(cert) || !time_ok(cert))
		goto out;
	for (int i = 1; i < sk_X509_num(m->chain); i++)
		if (!time_ok(sk_X509_value(m->chain, i)))
			goto out;
	ok = leaf_signature_ok(w, cert, der, derlen, X509_get0_pubkey(sk_X509_value(m->chain, 1)));
out:
	ERR_clear_error();
	return ok;
}

bool
batchcheck_leaf(struct batchcheck_worker *w, X509 *cert, const uint8_t *cert_der,
    size_t cert_der_len, STACK_OF(X509) *chain, const uint8_t *jwk_xy, size_t jwk_xy_len)
{
	const struct model *m;

	if (cert == NULL || cert_der == NULL || (m = find_model(w->b, cert, chain)) == NULL)
		return false;
	return leaf_ok(w, m, cert, cert_der, cert_der_len, jwk_xy, jwk_xy_len);
}

/* Distinct certificates (by encoding) in certs whose subject is name. */
static int
count_subject(STACK_OF(X509) *certs, const X509_NAME *name, X509 **seen)
{
	int n = 0;

	for (int i = 0; i < sk_X509_num(certs); i++) {
		X509 *c = sk_X509_value(certs, i);

		if (X509_NAME_cmp(X509_get_subject_name(c), name) != 0)
			continue;
		if (*seen == NULL)
			*seen = c;
		else if (X509_cmp(*seen, c) != 0)
			n++;
	}
	return n;
}

/*
 * The conditions under which the chain OpenSSL built for the model is the chain it builds
 * for every twin, and checks nothing of the twin beyond batchcheck_leaf(): the leaf is not
 * self-issued, has no unique identifiers, is not a proxy; no certificate of the chain has name
 * constraints (so the subject and subjectAltName contents are not read); each issuer above the
 * leaf is the only certificate with its subject among x5c[1..] and the roots, so the search
 * for issuers has one candidate per step whichever the time.
 */
static bool
model_conditions(struct batchcheck *b, X509 *leaf, STACK_OF(X509) *chain, STACK_OF(X509) *x5c)
{
	const ASN1_BIT_STRING *iuid, *suid;
	STACK_OF(X509) *roots;
	bool ok = true;

	X509_get0_uids(leaf, &iuid, &suid);
	if (sk_X509_num(chain) < 2 || sk_X509_value(chain, 0) != leaf || iuid != NULL ||
	    suid != NULL ||
	    (X509_get_extension_flags(leaf) & (EXFLAG_SI | EXFLAG_SS | EXFLAG_PROXY)) != 0)
		return false;
	for (int i = 0; i < sk_X509_num(chain); i++)
		if (X509_get_ext_by_NID(sk_X509_value(chain, i), NID_name_constraints, -1) >= 0)
			return false;
	if ((roots = X509_STORE_get1_all_certs(b->roots)) == NULL)
		return false;
	for (int i = 1; i < sk_X509_num(chain) && ok; i++) {
		const X509_NAME *name = X509_get_subject_name(sk_X509_value(chain, i));
		X509 *seen = NULL;

		ok = count_subject(x5c, name, &seen) + count_subject(roots, name, &seen) == 0;
	}
	sk_X509_pop_free(roots, X509_free);
	return ok;
}

/*
 * The model's key: a named curve, an uncompressed point of the curve's size, and the
 * SubjectPublicKeyInfo ending in that point (BIT STRING without unused bits).
 */
static bool
model_key(struct model *m, X509 *leaf)
{
	EVP_PKEY *key = X509_get0_pubkey(leaf);
	uint8_t spki[MAX_SPKI_DER];
	char curve[32];
	size_t n, h, l, ah, al, bh, bl, coord;

	memset(m, 0, sizeof(*m));
	if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
	    EVP_PKEY_get_group_name(key, curve, sizeof(curve), NULL) != 1 ||
	    (m->curve = OBJ_sn2nid(curve)) == NID_undef)
		return false;
	if (m->curve == NID_X9_62_prime256v1)
		coord = 32;
	else if (m->curve == NID_secp384r1)
		coord = 48;
	else
		return false;
	if ((n = spki_der(leaf, spki)) == 0 || !der_tlv(spki, n, 0x30, &h, &l) || h + l != n ||
	    !der_tlv(spki + h, n - h, 0x30, &ah, &al) ||
	    !der_tlv(spki + h + ah + al, n - h - ah - al, 0x03, &bh, &bl) ||
	    h + ah + al + bh + bl != n || bl != 2 + 2 * coord || spki[h + ah + al + bh] != 0 ||
	    spki[h + ah + al + bh + 1] != 0x04)
		return false;
	m->prefix_len = h + ah + al + bh + 1;
	m->point_len = 1 + 2 * coord;
	memcpy(m->spki_prefix, spki, m->prefix_len);
	return true;
}

void
batchcheck_learn(struct batchcheck_worker *w, X509 *leaf, STACK_OF(X509) *x5c)
{
	struct batchcheck *b = w->b;
	X509_STORE_CTX *ctx = NULL;
	X509_VERIFY_PARAM *param;
	STACK_OF(X509) *chain = NULL, *x5c_refs = NULL;
	struct model *m, key;
	bool ok = false;
	int n;

	if (atomic_load(&b->nmodels) >= MAX_MODELS ||
	    atomic_load(&b->learn_fails) >= MAX_LEARN_FAILS || find_model(b, leaf, x5c) != NULL)
		return;
	/* x509_chain_verify's verification for device chains, keeping the chain */
	if ((ctx = X509_STORE_CTX_new()) == NULL ||
	    X509_STORE_CTX_init(ctx, b->roots, leaf, x5c) != 1)
		goto out;
	param = X509_STORE_CTX_get0_param(ctx);
	X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
	X509_VERIFY_PARAM_clear_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
	if (X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) != 1)
		goto out;
	X509_VERIFY_PARAM_set_auth_level(param, AUTH_LEVEL);
	if (X509_verify_cert(ctx) != 1 || (chain = X509_STORE_CTX_get1_chain(ctx)) == NULL ||
	    !model_conditions(b, leaf, chain, x5c) || !model_key(&key, leaf) ||
	    (x5c_refs = X509_chain_up_ref(x5c)) == NULL)
		goto out;
	pthread_mutex_lock(&b->lock);
	n = atomic_load(&b->nmodels);
	if (n < MAX_MODELS && find_model(b, leaf, x5c) == NULL) {
		m = &b->models[n];
		*m = key;
		X509_up_ref(leaf);
		m->leaf = leaf;
		m->x5c = x5c_refs;
		m->chain = chain;
		x5c_refs = chain = NULL;
		atomic_store(&b->nmodels, n + 1);
	}
	pthread_mutex_unlock(&b->lock);
	ok = true;
out:
	if (!ok)
		atomic_fetch_add(&b->learn_fails, 1);
	sk_X509_pop_free(chain, X509_free);
	sk_X509_pop_free(x5c_refs, X509_free);
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
}
