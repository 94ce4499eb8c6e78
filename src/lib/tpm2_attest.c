// SPDX-License-Identifier: Apache-2.0
/*
 * tpm2_attest.c - credential activation and TPM2_Certify checks in software (tpm2_attest.h).
 * The references are TPM 2.0 Library Part 1 (sections 11.4.9 KDFa/KDFe, 24 credential
 * protection, 25.6 Certify) and Part 2 (the structures).
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include <tss2/tss2_mu.h>
#include <tss2/tss2_tpm2_types.h>

#include "tpm2_attest.h"
#include "limits.h"
#include "xmalloc.h"
#include "banned.h"

struct tpm2_public {
	TPMT_PUBLIC pub;
	uint8_t name[TPM2_NAME_MAX];
	size_t name_len;
	EVP_PKEY *pkey;
};

/* the label of credential protection, its terminating zero octet included (Part 1 24.4) */
static const uint8_t identity_label[] = "IDENTITY";

void
tpm2_public_free(struct tpm2_public *pub)
{
	if (pub == NULL)
		return;
	EVP_PKEY_free(pub->pkey);
	free(pub);
}

const uint8_t *
tpm2_public_name(const struct tpm2_public *pub, size_t *len)
{
	*len = pub->name_len;
	return pub->name;
}

EVP_PKEY *
tpm2_public_get0_pkey(const struct tpm2_public *pub)
{
	return pub->pkey;
}

static void
put16(uint8_t *p, size_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* An EC public key of the named group from the TPM's coordinates (each at most field bytes). */
static EVP_PKEY *
ec_pkey(const char *group, size_t field, const TPMS_ECC_POINT *pt, struct devid_error *e)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	uint8_t oct[1 + 2 * 48];

	if (pt->x.size == 0 || pt->x.size > field || pt->y.size == 0 || pt->y.size > field) {
		devid_error_set(e, DEVID_EINVAL, "ECC point: coordinates of %u and %u bytes",
		    pt->x.size, pt->y.size);
		goto out;
	}
	memset(oct, 0, sizeof(oct));
	oct[0] = POINT_CONVERSION_UNCOMPRESSED;
	memcpy(oct + 1 + field - pt->x.size, pt->x.buffer, pt->x.size);
	memcpy(oct + 1 + 2 * field - pt->y.size, pt->y.buffer, pt->y.size);
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, oct, 1 + 2 * field) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		devid_error_ssl(e, DEVID_EINVAL, "ECC point: not a point of %s", group);
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return pkey;
}

static EVP_PKEY *
rsa_pkey(const TPMS_RSA_PARMS *parms, const TPM2B_PUBLIC_KEY_RSA *n, struct devid_error *e)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	BIGNUM *bn = NULL, *be = NULL;

	if (parms->keyBits != 2048 || n->size != 256 || (n->buffer[0] & 0x80) == 0) {
		devid_error_set(e, DEVID_EINVAL,
		    "RSA key: %u bits with a modulus of %u bytes, want 2048", parms->keyBits,
		    n->size);
		goto out;
	}
	if ((bn = BN_bin2bn(n->buffer, n->size, NULL)) == NULL || (be = BN_new()) == NULL ||
	    !BN_set_word(be, parms->exponent == 0 ? 65537 : parms->exponent)) {
		devid_error_ssl(e, DEVID_ENOMEM, "RSA key");
		goto out;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be) ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		devid_error_ssl(e, DEVID_EINVAL, "RSA key: refused");
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
out:
	BN_free(bn);
	BN_free(be);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return pkey;
}

int
tpm2_public_parse(const uint8_t *p, size_t len, struct tpm2_public **out, struct devid_error *e)
{
	struct tpm2_public *pub = NULL;
	const EVP_MD *md;
	uint8_t again[MAX_TPM2_PUBLIC];
	size_t off = 0, size, n = 0;
	unsigned int dlen;
	int rc = DEVID_EINVAL;

	*out = NULL;
	if (len > MAX_TPM2_PUBLIC) {
		rc = devid_error_set(
		    e, DEVID_ELIMIT, "TPM2B_PUBLIC: %zu bytes, limit %d", len, MAX_TPM2_PUBLIC);
		goto out;
	}
	if (len < 2 || (size = (size_t)p[0] << 8 | p[1]) != len - 2) {
		devid_error_set(e, DEVID_EINVAL,
		    "TPM2B_PUBLIC: size field does not match the %zu bytes received", len);
		goto out;
	}
	pub = xcalloc(1, sizeof(*pub));
	if (Tss2_MU_TPMT_PUBLIC_Unmarshal(p + 2, size, &off, &pub->pub) != TSS2_RC_SUCCESS ||
	    off != size) {
		devid_error_set(
		    e, DEVID_EINVAL, "TPM2B_PUBLIC: not a TPMT_PUBLIC (TPM 2.0 Part 2 12.2.4)");
		goto out;
	}
	if (Tss2_MU_TPMT_PUBLIC_Marshal(&pub->pub, again, sizeof(again), &n) != TSS2_RC_SUCCESS ||
	    n != size || memcmp(again, p + 2, size) != 0) {
		devid_error_set(e, DEVID_EINVAL, "TPM2B_PUBLIC: not the canonical encoding");
		goto out;
	}
	if (pub->pub.nameAlg == TPM2_ALG_SHA256)
		md = EVP_sha256();
	else if (pub->pub.nameAlg == TPM2_ALG_SHA384)
		md = EVP_sha384();
	else {
		devid_error_set(e, DEVID_EINVAL,
		    "TPM2B_PUBLIC: nameAlg 0x%04x, want SHA-256 or SHA-384", pub->pub.nameAlg);
		goto out;
	}
	put16(pub->name, pub->pub.nameAlg);
	if (!EVP_Digest(p + 2, size, pub->name + 2, &dlen, md, NULL)) {
		rc = devid_error_ssl(e, DEVID_EINTERNAL, "TPM2B_PUBLIC: name");
		goto out;
	}
	pub->name_len = 2 + dlen;
	switch (pub->pub.type) {
	case TPM2_ALG_RSA:
		pub->pkey = rsa_pkey(&pub->pub.parameters.rsaDetail, &pub->pub.unique.rsa, e);
		break;
	case TPM2_ALG_ECC:
		if (pub->pub.parameters.eccDetail.curveID == TPM2_ECC_NIST_P256)
			pub->pkey = ec_pkey("P-256", 32, &pub->pub.unique.ecc, e);
		else if (pub->pub.parameters.eccDetail.curveID == TPM2_ECC_NIST_P384)
			pub->pkey = ec_pkey("P-384", 48, &pub->pub.unique.ecc, e);
		else
			devid_error_set(e, DEVID_EINVAL,
			    "TPM2B_PUBLIC: ECC curve 0x%04x, want NIST P-256 or P-384",
			    pub->pub.parameters.eccDetail.curveID);
		break;
	default:
		devid_error_set(e, DEVID_EINVAL, "TPM2B_PUBLIC: key type 0x%04x, want RSA or ECC",
		    pub->pub.type);
		break;
	}
	if (pub->pkey == NULL) {
		devid_error_prefix(e, "TPM2B_PUBLIC");
		goto out;
	}
	*out = pub;
	pub = NULL;
	rc = 0;
out:
	tpm2_public_free(pub);
	return rc;
}

/* The attributes every key of a device identity has: born in this TPM, never leaves it. */
static int
check_resident(TPMA_OBJECT a, const char *what, struct devid_error *e)
{
	if ((a & TPMA_OBJECT_FIXEDTPM) == 0)
		return devid_error_set(e, DEVID_EINVAL,
		    "%s: fixedTPM clear (the key may be duplicated out of its TPM)", what);
	if ((a & TPMA_OBJECT_FIXEDPARENT) == 0)
		return devid_error_set(e, DEVID_EINVAL, "%s: fixedParent clear", what);
	if ((a & TPMA_OBJECT_SENSITIVEDATAORIGIN) == 0)
		return devid_error_set(e, DEVID_EINVAL,
		    "%s: sensitiveDataOrigin clear (the key was imported, not made by the TPM)",
		    what);
	if ((a & TPMA_OBJECT_SIGN_ENCRYPT) == 0)
		return devid_error_set(e, DEVID_EINVAL, "%s: sign clear", what);
	if ((a & TPMA_OBJECT_DECRYPT) != 0)
		return devid_error_set(e, DEVID_EINVAL, "%s: decrypt set", what);
	return 0;
}

int
tpm2_ak_check(const struct tpm2_public *ak, struct devid_error *e)
{
	const TPMT_PUBLIC *t = &ak->pub;
	int rc;

	if ((rc = check_resident(t->objectAttributes, "AK", e)) != 0)
		return rc;
	if ((t->objectAttributes & TPMA_OBJECT_RESTRICTED) == 0)
		return devid_error_set(e, DEVID_EINVAL,
		    "AK: restricted clear (the key would sign a forged TPMS_ATTEST)");
	if (t->type == TPM2_ALG_ECC) {
		const TPMS_ECC_PARMS *d = &t->parameters.eccDetail;

		if (d->curveID != TPM2_ECC_NIST_P256)
			return devid_error_set(
			    e, DEVID_EINVAL, "AK: ECC curve 0x%04x, want P-256", d->curveID);
		if (d->scheme.scheme != TPM2_ALG_ECDSA ||
		    d->scheme.details.ecdsa.hashAlg != TPM2_ALG_SHA256)
			return devid_error_set(e, DEVID_EINVAL,
			    "AK: scheme 0x%04x, want ECDSA with SHA-256", d->scheme.scheme);
		if (d->kdf.scheme != TPM2_ALG_NULL || d->symmetric.algorithm != TPM2_ALG_NULL)
			return devid_error_set(
			    e, DEVID_EINVAL, "AK: a KDF or symmetric algorithm is set");
		return 0;
	}
	if (t->parameters.rsaDetail.scheme.scheme != TPM2_ALG_RSASSA ||
	    t->parameters.rsaDetail.scheme.details.rsassa.hashAlg != TPM2_ALG_SHA256)
		return devid_error_set(e, DEVID_EINVAL,
		    "AK: scheme 0x%04x, want RSASSA with SHA-256",
		    t->parameters.rsaDetail.scheme.scheme);
	if (t->parameters.rsaDetail.symmetric.algorithm != TPM2_ALG_NULL)
		return devid_error_set(e, DEVID_EINVAL, "AK: a symmetric algorithm is set");
	return 0;
}

int
tpm2_signing_key_check(const struct tpm2_public *key, struct devid_error *e)
{
	const TPMT_PUBLIC *t = &key->pub;
	const TPMS_ECC_PARMS *d = &t->parameters.eccDetail;
	int rc;

	if ((rc = check_resident(t->objectAttributes, "signing key", e)) != 0)
		return rc;
	if ((t->objectAttributes & TPMA_OBJECT_RESTRICTED) != 0)
		return devid_error_set(e, DEVID_EINVAL,
		    "signing key: restricted set (a restricted key signs only TPM-made digests)");
	if (t->type != TPM2_ALG_ECC || d->curveID != TPM2_ECC_NIST_P256)
		return devid_error_set(e, DEVID_EINVAL, "signing key: not an ECC P-256 key");
	if (d->scheme.scheme != TPM2_ALG_NULL &&
	    (d->scheme.scheme != TPM2_ALG_ECDSA ||
		d->scheme.details.ecdsa.hashAlg != TPM2_ALG_SHA256))
		return devid_error_set(e, DEVID_EINVAL,
		    "signing key: scheme 0x%04x, want ECDSA with SHA-256 or none",
		    d->scheme.scheme);
	if (d->kdf.scheme != TPM2_ALG_NULL || d->symmetric.algorithm != TPM2_ALG_NULL)
		return devid_error_set(
		    e, DEVID_EINVAL, "signing key: a KDF or symmetric algorithm is set");
	return 0;
}

/* KDFa (Part 1 11.4.10.2): SP 800-108 counter mode with HMAC, the label's zero included. */
static int
kdfa(const char *md, const uint8_t *key, size_t key_len, const char *label, const uint8_t *ctx_u,
    size_t ctx_u_len, uint8_t *out, size_t out_len)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "KBKDF", NULL);
	EVP_KDF_CTX *kctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[7], *q = params;
	int ok;

	*q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MODE, "counter", 0);
	*q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, "HMAC", 0);
	*q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md, 0);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, key_len);
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)label, strlen(label));
	*q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)ctx_u, ctx_u_len);
	*q = OSSL_PARAM_construct_end();
	ok = kctx != NULL && EVP_KDF_derive(kctx, out, out_len, params) > 0;
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return ok ? 0 : DEVID_ECRYPTO;
}

/* The x-coordinate of an EC key, left-padded to the field size. */
static int
ec_x(EVP_PKEY *pkey, uint8_t *out, size_t field)
{
	BIGNUM *x = NULL;
	int ok;

	ok = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) &&
	    BN_bn2binpad(x, out, (int)field) == (int)field;
	BN_free(x);
	return ok ? 0 : DEVID_ECRYPTO;
}

/*
 * The seed and its TPM2B_ENCRYPTED_SECRET for an ECC EK (Part 1 C.6.4, 11.4.10.3): ECDH of
 * an ephemeral key with the EK gives Z, and KDFe(Z, "IDENTITY", ephemeral x, EK x) the seed.
 */
static int
seed_ecc(EVP_PKEY *ek, const char *group, size_t field, const char *md, uint8_t *seed,
    size_t seed_len, struct tpm2_credential *out, struct devid_error *e)
{
	EVP_PKEY *eph = NULL;
	EVP_PKEY_CTX *dctx = NULL;
	EVP_KDF *kdf = NULL;
	EVP_KDF_CTX *kctx = NULL;
	BIGNUM *y = NULL;
	OSSL_PARAM params[4];
	uint8_t z[48], info[sizeof(identity_label) + 2 * 48], *s = out->secret;
	size_t zlen = sizeof(z);
	int rc = DEVID_ECRYPTO;

	if ((eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group)) == NULL ||
	    (dctx = EVP_PKEY_CTX_new_from_pkey(NULL, eph, NULL)) == NULL ||
	    EVP_PKEY_derive_init(dctx) <= 0 || EVP_PKEY_derive_set_peer(dctx, ek) <= 0 ||
	    EVP_PKEY_derive(dctx, z, &zlen) <= 0 || zlen != field) {
		devid_error_ssl(e, DEVID_ECRYPTO, "MakeCredential: ECDH with the EK");
		goto out;
	}
	memcpy(info, identity_label, sizeof(identity_label));
	if (ec_x(eph, info + sizeof(identity_label), field) != 0 ||
	    ec_x(ek, info + sizeof(identity_label) + field, field) != 0 ||
	    !EVP_PKEY_get_bn_param(eph, OSSL_PKEY_PARAM_EC_PUB_Y, &y)) {
		devid_error_ssl(e, DEVID_ECRYPTO, "MakeCredential: EC coordinates");
		goto out;
	}
	kdf = EVP_KDF_fetch(NULL, "SSKDF", NULL);
	kctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, z, zlen);
	params[2] = OSSL_PARAM_construct_octet_string(
	    OSSL_KDF_PARAM_INFO, info, sizeof(identity_label) + 2 * field);
	params[3] = OSSL_PARAM_construct_end();
	if (kctx == NULL || EVP_KDF_derive(kctx, seed, seed_len, params) <= 0) {
		devid_error_ssl(e, DEVID_ECRYPTO, "MakeCredential: KDFe");
		goto out;
	}
	/* TPM2B_ENCRYPTED_SECRET holding a TPMS_ECC_POINT: the ephemeral public key */
	put16(s, 4 + 2 * field);
	put16(s + 2, field);
	memcpy(s + 4, info + sizeof(identity_label), field);
	put16(s + 4 + field, field);
	if (BN_bn2binpad(y, s + 6 + field, (int)field) != (int)field) {
		devid_error_set(e, DEVID_ECRYPTO, "MakeCredential: ephemeral y");
		goto out;
	}
	out->secret_len = 6 + 2 * field;
	rc = 0;
out:
	OPENSSL_cleanse(z, sizeof(z));
	BN_free(y);
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	EVP_PKEY_CTX_free(dctx);
	EVP_PKEY_free(eph);
	return rc;
}

/* The seed and its TPM2B_ENCRYPTED_SECRET for an RSA EK: OAEP with the label "IDENTITY\0". */
static int
seed_rsa(EVP_PKEY *ek, const char *md, uint8_t *seed, size_t seed_len, struct tpm2_credential *out,
    struct devid_error *e)
{
	EVP_PKEY_CTX *ctx = NULL;
	OSSL_PARAM params[5];
	size_t n = sizeof(out->secret) - 2;
	int rc = DEVID_ECRYPTO;

	params[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_ASYM_CIPHER_PARAM_PAD_MODE, OSSL_PKEY_RSA_PAD_MODE_OAEP, 0);
	params[1] =
	    OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_OAEP_DIGEST, (char *)md, 0);
	params[2] =
	    OSSL_PARAM_construct_utf8_string(OSSL_ASYM_CIPHER_PARAM_MGF1_DIGEST, (char *)md, 0);
	params[3] = OSSL_PARAM_construct_octet_string(
	    OSSL_ASYM_CIPHER_PARAM_OAEP_LABEL, (void *)identity_label, sizeof(identity_label));
	params[4] = OSSL_PARAM_construct_end();
	if (RAND_bytes(seed, (int)seed_len) != 1 ||
	    (ctx = EVP_PKEY_CTX_new_from_pkey(NULL, ek, NULL)) == NULL ||
	    EVP_PKEY_encrypt_init_ex(ctx, params) <= 0 ||
	    EVP_PKEY_encrypt(ctx, out->secret + 2, &n, seed, seed_len) <= 0) {
		devid_error_ssl(e, DEVID_ECRYPTO, "MakeCredential: RSA-OAEP to the EK");
		goto out;
	}
	put16(out->secret, n);
	out->secret_len = 2 + n;
	rc = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

int
tpm2_make_credential(EVP_PKEY *ek, const uint8_t *name, size_t name_len, const uint8_t *cred,
    size_t cred_len, struct tpm2_credential *out, struct devid_error *e)
{
	const EVP_CIPHER *aes = EVP_aes_128_cfb128();
	const char *md = "SHA256", *group = NULL;
	char gname[32];
	uint8_t seed[48], sym[32], hmac_key[48], iv[16] = {0}, plain[2 + TPM2_CREDENTIAL_MAX];
	uint8_t *enc, *hmac;
	size_t dlen = 32, field = 0, hlen;
	EVP_CIPHER_CTX *c = NULL;
	EVP_MAC *mac = NULL;
	EVP_MAC_CTX *mctx = NULL;
	OSSL_PARAM mparams[2];
	int n, rc = DEVID_EINVAL;

	memset(out, 0, sizeof(*out));
	if (EVP_PKEY_get_base_id(ek) == EVP_PKEY_RSA) {
		if (EVP_PKEY_get_bits(ek) != 2048) {
			devid_error_set(
			    e, DEVID_EINVAL, "EK: RSA %d bits, want 2048", EVP_PKEY_get_bits(ek));
			goto out;
		}
	} else if (EVP_PKEY_get_base_id(ek) == EVP_PKEY_EC &&
	    EVP_PKEY_get_group_name(ek, gname, sizeof(gname), NULL)) {
		if (strcmp(gname, "prime256v1") == 0) {
			group = "P-256";
			field = 32;
		} else if (strcmp(gname, "secp384r1") == 0) {
			group = "P-384";
			field = 48;
			md = "SHA384";
			dlen = 48;
			aes = EVP_aes_256_cfb128();
		}
	}
	if (EVP_PKEY_get_base_id(ek) != EVP_PKEY_RSA && group == NULL) {
		devid_error_set(e, DEVID_EINVAL, "EK: not an RSA 2048, ECC P-256 or P-384 key");
		goto out;
	}
	if (name_len < 4 || name_len > TPM2_NAME_MAX) {
		devid_error_set(e, DEVID_EINVAL, "MakeCredential: a name of %zu bytes", name_len);
		goto out;
	}
	if (cred_len == 0 || cred_len > TPM2_CREDENTIAL_MAX) {
		devid_error_set(e, DEVID_EINVAL,
		    "MakeCredential: a credential of %zu bytes, want 1 to %d", cred_len,
		    TPM2_CREDENTIAL_MAX);
		goto out;
	}
	rc = group != NULL ? seed_ecc(ek, group, field, md, seed, dlen, out, e)
			   : seed_rsa(ek, md, seed, dlen, out, e);
	if (rc != 0)
		goto out;
	rc = DEVID_ECRYPTO;
	/* the TPM2B_ID_OBJECT: size, TPM2B_DIGEST outer HMAC, then encIdentity */
	hmac = out->id_object + 4;
	enc = hmac + dlen;
	put16(out->id_object, 2 + dlen + 2 + cred_len);
	put16(out->id_object + 2, dlen);
	put16(plain, cred_len);
	memcpy(plain + 2, cred, cred_len);
	if (kdfa(md, seed, dlen, "STORAGE", name, name_len, sym,
		(size_t)EVP_CIPHER_get_key_length(aes)) != 0 ||
	    kdfa(md, seed, dlen, "INTEGRITY", NULL, 0, hmac_key, dlen) != 0) {
		devid_error_ssl(e, DEVID_ECRYPTO, "MakeCredential: KDFa");
		goto out;
	}
	if ((c = EVP_CIPHER_CTX_new()) == NULL || !EVP_EncryptInit_ex(c, aes, NULL, sym, iv) ||
	    !EVP_EncryptUpdate(c, enc, &n, plain, (int)(2 + cred_len)) ||
	    (size_t)n != 2 + cred_len) {
		devid_error_ssl(e, DEVID_ECRYPTO, "MakeCredential: AES-CFB");
		goto out;
	}
	mparams[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)md, 0);
	mparams[1] = OSSL_PARAM_construct_end();
	if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL ||
	    (mctx = EVP_MAC_CTX_new(mac)) == NULL || !EVP_MAC_init(mctx, hmac_key, dlen, mparams) ||
	    !EVP_MAC_update(mctx, enc, 2 + cred_len) || !EVP_MAC_update(mctx, name, name_len) ||
	    !EVP_MAC_final(mctx, hmac, &hlen, dlen) || hlen != dlen) {
		devid_error_ssl(e, DEVID_ECRYPTO, "MakeCredential: HMAC");
		goto out;
	}
	out->id_object_len = 4 + dlen + 2 + cred_len;
	rc = 0;
out:
	if (rc != 0)
		memset(out, 0, sizeof(*out));
	OPENSSL_cleanse(seed, sizeof(seed));
	OPENSSL_cleanse(sym, sizeof(sym));
	OPENSSL_cleanse(hmac_key, sizeof(hmac_key));
	OPENSSL_cleanse(plain, sizeof(plain));
	EVP_MAC_CTX_free(mctx);
	EVP_MAC_free(mac);
	EVP_CIPHER_CTX_free(c);
	return rc;
}

/* ak's TPMT_SIGNATURE as the DER or raw signature OpenSSL verifies; *der is OPENSSL_free'd. */
static int
signature_der(const struct tpm2_public *ak, const TPMT_SIGNATURE *s, uint8_t **der, size_t *len,
    struct devid_error *e)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *bs = NULL;
	int n;

	*der = NULL;
	if (ak->pub.type == TPM2_ALG_RSA) {
		if (s->sigAlg != TPM2_ALG_RSASSA || s->signature.rsassa.hash != TPM2_ALG_SHA256)
			return devid_error_set(e, DEVID_EINVAL,
			    "Certify: signature algorithm 0x%04x, the AK signs RSASSA with SHA-256",
			    s->sigAlg);
		*der = OPENSSL_memdup(s->signature.rsassa.sig.buffer, s->signature.rsassa.sig.size);
		*len = s->signature.rsassa.sig.size;
		return *der != NULL || *len == 0 ? 0 : DEVID_ENOMEM;
	}
	if (s->sigAlg != TPM2_ALG_ECDSA || s->signature.ecdsa.hash != TPM2_ALG_SHA256)
		return devid_error_set(e, DEVID_EINVAL,
		    "Certify: signature algorithm 0x%04x, the AK signs ECDSA with SHA-256",
		    s->sigAlg);
	if ((r = BN_bin2bn(s->signature.ecdsa.signatureR.buffer, s->signature.ecdsa.signatureR.size,
		 NULL)) == NULL ||
	    (bs = BN_bin2bn(s->signature.ecdsa.signatureS.buffer,
		 s->signature.ecdsa.signatureS.size, NULL)) == NULL ||
	    (es = ECDSA_SIG_new()) == NULL || !ECDSA_SIG_set0(es, r, bs)) {
		BN_free(r);
		BN_free(bs);
		ECDSA_SIG_free(es);
		return devid_error_ssl(e, DEVID_ENOMEM, "Certify: ECDSA signature");
	}
	n = i2d_ECDSA_SIG(es, der);
	ECDSA_SIG_free(es);
	if (n <= 0)
		return devid_error_ssl(e, DEVID_EINVAL, "Certify: ECDSA signature");
	*len = (size_t)n;
	return 0;
}

int
tpm2_certify_check(const struct tpm2_public *ak, const struct tpm2_public *key,
    const uint8_t *attest, size_t attest_len, const uint8_t *sig, size_t sig_len,
    const uint8_t *qualifying, size_t qualifying_len, struct devid_error *e)
{
	TPMS_ATTEST a;
	TPMT_SIGNATURE s;
	EVP_MD_CTX *mctx = NULL;
	uint8_t *der = NULL;
	size_t off = 0, der_len = 0;
	int rc = DEVID_EINVAL;

	if (attest_len > MAX_TPM2_ATTEST || sig_len > MAX_TPM2_SIGNATURE) {
		rc = devid_error_set(e, DEVID_ELIMIT,
		    "Certify: attest of %zu bytes or signature of %zu bytes, limits %d and %d",
		    attest_len, sig_len, MAX_TPM2_ATTEST, MAX_TPM2_SIGNATURE);
		goto out;
	}
	memset(&a, 0, sizeof(a));
	if (Tss2_MU_TPMS_ATTEST_Unmarshal(attest, attest_len, &off, &a) != TSS2_RC_SUCCESS ||
	    off != attest_len) {
		devid_error_set(
		    e, DEVID_EINVAL, "Certify: not a TPMS_ATTEST (TPM 2.0 Part 2 10.12.12)");
		goto out;
	}
	if (a.magic != TPM2_GENERATED_VALUE) {
		devid_error_set(e, DEVID_EINVAL,
		    "Certify: magic 0x%08x is not TPM_GENERATED_VALUE (the AK signed data the TPM "
		    "did not make)",
		    a.magic);
		goto out;
	}
	if (a.type != TPM2_ST_ATTEST_CERTIFY) {
		devid_error_set(e, DEVID_EINVAL,
		    "Certify: attestation type 0x%04x, want TPM_ST_ATTEST_CERTIFY", a.type);
		goto out;
	}
	if (qualifying != NULL &&
	    (a.extraData.size != qualifying_len ||
		CRYPTO_memcmp(a.extraData.buffer, qualifying, qualifying_len) != 0)) {
		devid_error_set(e, DEVID_EINVAL, "Certify: qualifyingData is not the one expected");
		goto out;
	}
	if (a.attested.certify.name.size != key->name_len ||
	    memcmp(a.attested.certify.name.name, key->name, key->name_len) != 0) {
		devid_error_set(
		    e, DEVID_EINVAL, "Certify: the certified name is not the signing key's");
		goto out;
	}
	off = 0;
	memset(&s, 0, sizeof(s));
	if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(sig, sig_len, &off, &s) != TSS2_RC_SUCCESS ||
	    off != sig_len) {
		devid_error_set(
		    e, DEVID_EINVAL, "Certify: not a TPMT_SIGNATURE (TPM 2.0 Part 2 11.3.4)");
		goto out;
	}
	if ((rc = signature_der(ak, &s, &der, &der_len, e)) != 0)
		goto out;
	if ((mctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit_ex(mctx, NULL, "SHA256", NULL, NULL, ak->pkey, NULL) <= 0) {
		rc = devid_error_ssl(e, DEVID_EINTERNAL, "Certify: verifier");
		goto out;
	}
	if (EVP_DigestVerify(mctx, der, der_len, attest, attest_len) != 1) {
		rc = devid_error_ssl(
		    e, DEVID_ECRYPTO, "Certify: the AK's signature does not verify");
		goto out;
	}
	rc = 0;
out:
	OPENSSL_free(der);
	EVP_MD_CTX_free(mctx);
	return rc;
}
