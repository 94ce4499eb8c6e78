/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tpm_enroll.c - a TPM 2.0 device enrolls by credential activation (tpm_enroll.h): the TPM
 * through tpm2-tss's ESAPI, the server through est.c.
 *
 * swtpm, like the TPM 2.0 specification's minimum, holds three transient objects: the
 * signing key is made first (its SRK parent flushed once it is loaded), then the EK and the
 * AK, so that the three stay loaded from TPM2_Certify to TPM2_ActivateCredential.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "tpm_enroll.h"
#include "internal.h"
#include "lib/limits.h"
#include "lib/tpm2_ekpub.h"
#include "lib/x509.h"
#include "lib/banned.h"

/* bytes of NV read per TPM2_NV_Read: below every TPM's TPM_PT_NV_BUFFER_MAX */
#define NV_CHUNK 512
/* a marshalled TPM2B_PUBLIC, TPMT_SIGNATURE: sizeof the structures bounds them */
#define PUBLIC_MAX sizeof(TPM2B_PUBLIC)
#define SIGNATURE_MAX sizeof(TPMT_SIGNATURE)
/* an ECC P-256 coordinate */
#define P256_LEN 32

/* sign|fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth: the signing key and the AK */
#define KEY_ATTRS                                                                                  \
	(TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |               \
	    TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH)

struct tpm {
	const struct agent_tpm_enroll_opts *o;
	struct devid_est_result *r;
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
	ESYS_TR session; /* the EK's policy session */
	ESYS_TR key, ek, ak; /* transient objects */
	ESYS_TR persistent; /* the signing key at o->key_handle, once it is there */
	char where[160]; /* how messages name the TPM */
	bool sent; /* something went to the server */
};

/* The outcome of a local failure: nothing sent yet, or a failure in the middle. */
static enum devid_est_outcome
local_outcome(const struct tpm *t)
{
	return t->sent ? DEVID_EST_FAILED : DEVID_EST_ERROR;
}

static int fail(struct tpm *t, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets the outcome and the reason in one go; returns the code. */
static int
fail(struct tpm *t, int code, const char *fmt, ...)
{
	va_list ap;

	t->r->outcome = local_outcome(t);
	t->r->error.code = code;
	va_start(ap, fmt);
	vsnprintf(t->r->error.msg, sizeof(t->r->error.msg), fmt, ap);
	va_end(ap);
	return code;
}

/* A TPM command that failed: what it was for, and tpm2-tss's decoding of its code. */
static int
tpm_fail(struct tpm *t, const char *what, TSS2_RC rc)
{
	return fail(t, DEVID_EIO, "TPM (%s): %s: %s (0x%x)", t->where, what, Tss2_RC_Decode(rc),
	    (unsigned)rc);
}

/* OpenSSL failed at what: its first reason. */
static int
ssl_fail(struct tpm *t, const char *what)
{
	int rc = devid_error_ssl(&t->r->error, DEVID_ECRYPTO, "%s", what);

	t->r->outcome = local_outcome(t);
	return rc;
}

static void
flush(struct tpm *t, ESYS_TR *h)
{
	if (*h != ESYS_TR_NONE)
		(void)Esys_FlushContext(t->esys, *h);
	*h = ESYS_TR_NONE;
}

static int
tpm_open(struct tpm *t)
{
	TSS2_RC rc;

	if (t->o->tcti != NULL) {
		char p[120];

		agent_printable((const uint8_t *)t->o->tcti, strlen(t->o->tcti), 100, p, sizeof(p));
		snprintf(t->where, sizeof(t->where), "TCTI \"%s\"", p);
	} else {
		snprintf(t->where, sizeof(t->where), "tpm2-tss's default TCTI");
	}
	if ((rc = Tss2_TctiLdr_Initialize(t->o->tcti, &t->tcti)) != TSS2_RC_SUCCESS)
		return tpm_fail(t, "the TPM is unreachable", rc);
	if ((rc = Esys_Initialize(&t->esys, t->tcti, NULL)) != TSS2_RC_SUCCESS)
		return tpm_fail(t, "Esys_Initialize", rc);
	return 0;
}

static void
tpm_close(struct tpm *t)
{
	if (t->esys != NULL) {
		flush(t, &t->key);
		flush(t, &t->ak);
		flush(t, &t->ek);
		flush(t, &t->session);
		Esys_Finalize(&t->esys);
	}
	if (t->tcti != NULL)
		Tss2_TctiLdr_Finalize(&t->tcti);
}

/* The key handle must be empty: a key there is someone's, and EvictControl would fail. */
static int
handle_free(struct tpm *t)
{
	ESYS_TR h = ESYS_TR_NONE;

	if (Esys_TR_FromTPMPublic(t->esys, t->o->key_handle, ESYS_TR_NONE, ESYS_TR_NONE,
		ESYS_TR_NONE, &h) != TSS2_RC_SUCCESS)
		return 0;
	(void)Esys_TR_Close(t->esys, &h);
	return fail(t, DEVID_ECONFLICT,
	    "TPM (%s): persistent handle 0x%08x holds a key already; choose another "
	    "--key-handle, or evict it (tpm2_evictcontrol -C o -c 0x%08x) if it is no longer "
	    "used",
	    t->where, (unsigned)t->o->key_handle, (unsigned)t->o->key_handle);
}

/* The EK certificate in NV index idx: *der (free()) and its X509. */
static int
ek_cert_read(struct tpm *t, uint32_t idx, uint8_t **der, size_t *len, X509 **cert)
{
	TPM2B_NV_PUBLIC *pub = NULL;
	TPM2B_MAX_NV_BUFFER *data = NULL;
	ESYS_TR nv = ESYS_TR_NONE;
	const unsigned char *q;
	uint8_t *buf = NULL;
	size_t size = 0, used;
	char what[80];
	TSS2_RC trc;
	int rc;

	*der = NULL;
	*cert = NULL;
	if ((trc = Esys_TR_FromTPMPublic(
		 t->esys, idx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv)) != TSS2_RC_SUCCESS) {
		snprintf(what, sizeof(what), "no EK certificate at NV index 0x%08x", (unsigned)idx);
		rc = tpm_fail(t, what, trc);
		goto out;
	}
	if ((trc = Esys_NV_ReadPublic(t->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub,
		 NULL)) != TSS2_RC_SUCCESS) {
		rc = tpm_fail(t, "TPM2_NV_ReadPublic of the EK certificate", trc);
		goto out;
	}
	size = pub->nvPublic.dataSize;
	if (size == 0 || size > MAX_CERT_DER) {
		rc = fail(t, DEVID_EINVAL,
		    "TPM (%s): NV index 0x%08x holds %zu bytes, not an EK certificate of at most "
		    "%d",
		    t->where, (unsigned)idx, size, MAX_CERT_DER);
		goto out;
	}
	if ((buf = malloc(size)) == NULL) {
		rc = fail(t, DEVID_ENOMEM, "EK certificate: out of memory");
		goto out;
	}
	for (size_t off = 0; off < size;) {
		UINT16 n = (UINT16)(size - off < NV_CHUNK ? size - off : NV_CHUNK);

		/* the index authorizes its own reading (TPMA_NV_AUTHREAD, empty authValue) */
		if ((trc = Esys_NV_Read(t->esys, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE,
			 ESYS_TR_NONE, n, (UINT16)off, &data)) != TSS2_RC_SUCCESS) {
			snprintf(
			    what, sizeof(what), "TPM2_NV_Read of NV index 0x%08x", (unsigned)idx);
			rc = tpm_fail(t, what, trc);
			goto out;
		}
		if (data->size != n) {
			rc = fail(t, DEVID_EIO, "TPM (%s): TPM2_NV_Read gave %u bytes, not %u",
			    t->where, (unsigned)data->size, (unsigned)n);
			goto out;
		}
		memcpy(buf + off, data->buffer, n);
		off += n;
		Esys_Free(data);
		data = NULL;
	}
	/* the index may be larger than the certificate: zeros may follow it, nothing else */
	q = buf;
	ERR_clear_error();
	if ((*cert = d2i_X509(NULL, &q, (long)size)) == NULL) {
		snprintf(
		    what, sizeof(what), "NV index 0x%08x: not a DER certificate", (unsigned)idx);
		rc = ssl_fail(t, what);
		goto out;
	}
	used = (size_t)(q - buf);
	for (size_t i = used; i < size; i++)
		if (buf[i] != 0) {
			rc = fail(t, DEVID_EINVAL,
			    "NV index 0x%08x: bytes other than zeros after the certificate",
			    (unsigned)idx);
			goto out;
		}
	*der = buf;
	*len = used;
	buf = NULL;
	rc = 0;
out:
	if (rc != 0) {
		X509_free(*cert);
		*cert = NULL;
	}
	ERR_clear_error();
	Esys_Free(data);
	Esys_Free(pub);
	if (nv != ESYS_TR_NONE)
		(void)Esys_TR_Close(t->esys, &nv);
	free(buf);
	return rc;
}

/* The marshalled TPM2B_PUBLIC of pub into out[0..*len). */
static int
public_marshal(struct tpm *t, const TPM2B_PUBLIC *pub, uint8_t *out, size_t max, size_t *len)
{
	size_t off = 0;

	if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, out, max, &off) != TSS2_RC_SUCCESS)
		return fail(t, DEVID_EINTERNAL, "a TPM2B_PUBLIC does not marshal");
	*len = off;
	return 0;
}

/*
 * The EK: the TCG template of the certificate's key (its unique field zeroed, as the
 * template says) in the endorsement hierarchy; the TPM's public area must be exactly the one
 * the certificate's key gives, or the certificate is not this TPM's EK.
 */
static int
ek_create(struct tpm *t, X509 *cert)
{
	uint8_t want[TPM2_EK_PUBLIC_MAX], got[PUBLIC_MAX];
	size_t wlen = 0, glen = 0, off = 0;
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPML_PCR_SELECTION pcrs = {0};
	TPM2B_DATA outside = {0};
	TPM2B_PUBLIC tmpl = {0}, *out = NULL;
	EVP_PKEY *key = X509_get0_pubkey(cert);
	TPMT_PUBLIC *a = &tmpl.publicArea;
	TSS2_RC trc;
	int rc;

	if (key == NULL)
		return ssl_fail(t, "EK certificate: its key");
	if (t->o->ek == AGENT_TPM_EK_RSA
		? EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA
		: !EVP_PKEY_is_a(key, "EC") || EVP_PKEY_get_bits(key) != 256)
		return fail(t, DEVID_EINVAL, "EK certificate at NV 0x%08x: not an %s key",
		    t->o->ek == AGENT_TPM_EK_RSA ? AGENT_TPM_EK_CERT_NV_RSA
						 : AGENT_TPM_EK_CERT_NV_ECC,
		    t->o->ek == AGENT_TPM_EK_RSA ? "RSA 2048" : "ECC P-256");
	if ((rc = tpm2_ek_public(key, want, &wlen, &t->r->error)) != 0) {
		t->r->outcome = local_outcome(t);
		return rc;
	}
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(want, wlen, &off, &tmpl) != TSS2_RC_SUCCESS)
		return fail(t, DEVID_EINTERNAL, "the EK template does not unmarshal");
	if (a->type == TPM2_ALG_RSA) {
		memset(a->unique.rsa.buffer, 0, a->unique.rsa.size);
	} else {
		memset(a->unique.ecc.x.buffer, 0, a->unique.ecc.x.size);
		memset(a->unique.ecc.y.buffer, 0, a->unique.ecc.y.size);
	}
	if ((trc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD,
		 ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl, &outside, &pcrs, &t->ek, &out, NULL,
		 NULL, NULL)) != TSS2_RC_SUCCESS)
		return tpm_fail(t, "TPM2_CreatePrimary of the EK (endorsement hierarchy)", trc);
	rc = public_marshal(t, out, got, sizeof(got), &glen);
	Esys_Free(out);
	if (rc != 0)
		return rc;
	if (glen != wlen || memcmp(got, want, wlen) != 0)
		return fail(t, DEVID_ECRYPTO,
		    "TPM (%s): the EK made from TCG template %s is not the key of the EK "
		    "certificate: the certificate is not this TPM's",
		    t->where, t->o->ek == AGENT_TPM_EK_RSA ? "L-1" : "L-2");
	return 0;
}

/* The EK's policy session, ready for one authorization: PolicySecret(TPM_RH_ENDORSEMENT). */
static int
ek_policy(struct tpm *t)
{
	TPMT_SYM_DEF sym = {.algorithm = TPM2_ALG_NULL};
	TPM2B_NONCE nonce = {0}, ref = {0};
	TPM2B_DIGEST cphash = {0};
	TSS2_RC trc;

	if (t->session == ESYS_TR_NONE) {
		if ((trc = Esys_StartAuthSession(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
			 ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &sym, TPM2_ALG_SHA256,
			 &t->session)) != TSS2_RC_SUCCESS)
			return tpm_fail(t, "TPM2_StartAuthSession (the EK's policy)", trc);
		if ((trc = Esys_TRSess_SetAttributes(t->esys, t->session,
			 TPMA_SESSION_CONTINUESESSION, TPMA_SESSION_CONTINUESESSION)) !=
		    TSS2_RC_SUCCESS)
			return tpm_fail(t, "the EK's policy session", trc);
	} else if ((trc = Esys_PolicyRestart(t->esys, t->session, ESYS_TR_NONE, ESYS_TR_NONE,
			ESYS_TR_NONE)) != TSS2_RC_SUCCESS) {
		return tpm_fail(t, "TPM2_PolicyRestart (the EK's policy)", trc);
	}
	if ((trc = Esys_PolicySecret(t->esys, ESYS_TR_RH_ENDORSEMENT, t->session, ESYS_TR_PASSWORD,
		 ESYS_TR_NONE, ESYS_TR_NONE, &nonce, &cphash, &ref, 0, NULL, NULL)) !=
	    TSS2_RC_SUCCESS)
		return tpm_fail(t, "TPM2_PolicySecret(endorsement) for the EK", trc);
	return 0;
}

/* An ECC P-256 template: ECDSA-SHA256 for the AK (restricted), no scheme for the key. */
static void
p256_template(TPM2B_PUBLIC *p, bool restricted)
{
	TPMT_PUBLIC *a = &p->publicArea;

	memset(p, 0, sizeof(*p));
	a->type = TPM2_ALG_ECC;
	a->nameAlg = TPM2_ALG_SHA256;
	a->objectAttributes = KEY_ATTRS | (restricted ? TPMA_OBJECT_RESTRICTED : 0);
	a->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
	a->parameters.eccDetail.scheme.scheme = restricted ? TPM2_ALG_ECDSA : TPM2_ALG_NULL;
	if (restricted)
		a->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	a->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	a->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
}

/*
 * The signing key under the owner's SRK (TCG ECC P-256 SRK template: restricted decrypt,
 * AES-128-CFB, noDA, unique zeros), loaded; the SRK is flushed. *pub (Esys_Free) is its
 * public area.
 */
static int
key_create(struct tpm *t, TPM2B_PUBLIC **pub)
{
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPML_PCR_SELECTION pcrs = {0};
	TPM2B_DATA outside = {0};
	TPM2B_PUBLIC srk_tmpl = {0}, key_tmpl;
	TPM2B_PRIVATE *priv = NULL;
	TPMT_PUBLIC *s = &srk_tmpl.publicArea;
	ESYS_TR srk = ESYS_TR_NONE;
	TSS2_RC trc;
	int rc;

	*pub = NULL;
	s->type = TPM2_ALG_ECC;
	s->nameAlg = TPM2_ALG_SHA256;
	s->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
	    TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_NODA |
	    TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
	s->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
	s->parameters.eccDetail.symmetric.keyBits.aes = 128;
	s->parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	s->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
	s->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	s->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	s->unique.ecc.x.size = P256_LEN;
	s->unique.ecc.y.size = P256_LEN;
	p256_template(&key_tmpl, false);

	if ((trc = Esys_CreatePrimary(t->esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
		 ESYS_TR_NONE, &sens, &srk_tmpl, &outside, &pcrs, &srk, NULL, NULL, NULL, NULL)) !=
	    TSS2_RC_SUCCESS) {
		rc = tpm_fail(t, "TPM2_CreatePrimary of the SRK (owner hierarchy)", trc);
		goto out;
	}
	if ((trc = Esys_Create(t->esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens,
		 &key_tmpl, &outside, &pcrs, &priv, pub, NULL, NULL, NULL)) != TSS2_RC_SUCCESS) {
		rc = tpm_fail(t, "TPM2_Create of the signing key", trc);
		goto out;
	}
	if ((trc = Esys_Load(t->esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, priv, *pub,
		 &t->key)) != TSS2_RC_SUCCESS) {
		rc = tpm_fail(t, "TPM2_Load of the signing key", trc);
		goto out;
	}
	rc = 0;
out:
	flush(t, &srk);
	Esys_Free(priv);
	if (rc != 0) {
		Esys_Free(*pub);
		*pub = NULL;
	}
	return rc;
}

/* The AK under the EK, loaded; each use of the EK as parent takes its policy. */
static int
ak_create(struct tpm *t, TPM2B_PUBLIC **pub)
{
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPML_PCR_SELECTION pcrs = {0};
	TPM2B_DATA outside = {0};
	TPM2B_PRIVATE *priv = NULL;
	TPM2B_PUBLIC tmpl;
	TSS2_RC trc;
	int rc;

	*pub = NULL;
	p256_template(&tmpl, true);
	if ((rc = ek_policy(t)) != 0)
		goto out;
	if ((trc = Esys_Create(t->esys, t->ek, t->session, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl,
		 &outside, &pcrs, &priv, pub, NULL, NULL, NULL)) != TSS2_RC_SUCCESS) {
		rc = tpm_fail(t, "TPM2_Create of the AK under the EK", trc);
		goto out;
	}
	if ((rc = ek_policy(t)) != 0)
		goto out;
	if ((trc = Esys_Load(t->esys, t->ek, t->session, ESYS_TR_NONE, ESYS_TR_NONE, priv, *pub,
		 &t->ak)) != TSS2_RC_SUCCESS) {
		rc = tpm_fail(t, "TPM2_Load of the AK under the EK", trc);
		goto out;
	}
	rc = 0;
out:
	Esys_Free(priv);
	if (rc != 0) {
		Esys_Free(*pub);
		*pub = NULL;
	}
	return rc;
}

/* The signing key's public key as an EVP_PKEY (new). */
static int
key_pkey(struct tpm *t, const TPM2B_PUBLIC *pub, EVP_PKEY **out)
{
	const TPMS_ECC_POINT *pt = &pub->publicArea.unique.ecc;
	uint8_t point[1 + 2 * P256_LEN] = {0x04};
	OSSL_PARAM params[3];
	EVP_PKEY_CTX *ctx = NULL;
	int rc = 0;

	*out = NULL;
	if (pt->x.size > P256_LEN || pt->y.size > P256_LEN)
		return fail(
		    t, DEVID_EINVAL, "TPM (%s): the signing key is not a P-256 point", t->where);
	/* a coordinate may come without its leading zeros */
	memcpy(point + 1 + P256_LEN - pt->x.size, pt->x.buffer, pt->x.size);
	memcpy(point + 1 + 2 * P256_LEN - pt->y.size, pt->y.buffer, pt->y.size);
	params[0] = OSSL_PARAM_construct_utf8_string(
	    OSSL_PKEY_PARAM_GROUP_NAME, (char *)SN_X9_62_prime256v1, 0);
	params[1] =
	    OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point));
	params[2] = OSSL_PARAM_construct_end();
	ERR_clear_error();
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1)
		rc = ssl_fail(t, "the signing key's public key");
	EVP_PKEY_CTX_free(ctx);
	return rc;
}

/* TPM2_Sign of a SHA-256 digest by the signing key, as a DER ECDSA-Sig-Value (OPENSSL_free). */
static int
key_sign(struct tpm *t, const uint8_t digest[SHA256_DIGEST_LENGTH], unsigned char **der, int *len)
{
	TPM2B_DIGEST d = {.size = SHA256_DIGEST_LENGTH};
	TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_ECDSA};
	TPMT_TK_HASHCHECK ticket = {.tag = TPM2_ST_HASHCHECK, .hierarchy = TPM2_RH_NULL};
	TPMT_SIGNATURE *sig = NULL;
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	TSS2_RC trc;
	int rc;

	*der = NULL;
	scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	memcpy(d.buffer, digest, SHA256_DIGEST_LENGTH);
	if ((trc = Esys_Sign(t->esys, t->key, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &d,
		 &scheme, &ticket, &sig)) != TSS2_RC_SUCCESS) {
		rc = tpm_fail(t, "TPM2_Sign of the CSR by the signing key", trc);
		goto out;
	}
	ERR_clear_error();
	if (sig->sigAlg != TPM2_ALG_ECDSA ||
	    (r = BN_bin2bn(sig->signature.ecdsa.signatureR.buffer,
		 sig->signature.ecdsa.signatureR.size, NULL)) == NULL ||
	    (s = BN_bin2bn(sig->signature.ecdsa.signatureS.buffer,
		 sig->signature.ecdsa.signatureS.size, NULL)) == NULL ||
	    (es = ECDSA_SIG_new()) == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
		rc = ssl_fail(t, "the TPM's ECDSA signature");
		goto out;
	}
	r = s = NULL;
	if ((*len = i2d_ECDSA_SIG(es, der)) <= 0) {
		rc = ssl_fail(t, "the TPM's ECDSA signature, DER");
		goto out;
	}
	rc = 0;
out:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	Esys_Free(sig);
	return rc;
}

/*
 * The CSR, DER (*der: OPENSSL_free): subject CN=<udid>, the signing key, signed in the TPM.
 * ecdsa-with-SHA256 carries no parameters (RFC 5758 3.2); the request verifies before use.
 */
static int
csr_make(struct tpm *t, EVP_PKEY *pk, const char *udid, unsigned char **der, int *len)
{
	uint8_t digest[SHA256_DIGEST_LENGTH];
	unsigned char *tbs = NULL, *sig = NULL;
	ASN1_BIT_STRING *bits = NULL;
	X509_ALGOR *alg = NULL;
	X509_NAME *name = NULL;
	X509_REQ *req = NULL;
	int tlen, slen = 0, rc;

	*der = NULL;
	ERR_clear_error();
	if ((req = X509_REQ_new()) == NULL || (name = X509_NAME_new()) == NULL ||
	    X509_NAME_add_entry_by_txt(
		name, "CN", MBSTRING_ASC, (const unsigned char *)udid, -1, -1, 0) != 1 ||
	    X509_REQ_set_subject_name(req, name) != 1 ||
	    X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
	    X509_REQ_set_pubkey(req, pk) != 1 || (alg = X509_ALGOR_new()) == NULL ||
	    X509_ALGOR_set0(alg, OBJ_nid2obj(NID_ecdsa_with_SHA256), V_ASN1_UNDEF, NULL) != 1 ||
	    X509_REQ_set1_signature_algo(req, alg) != 1 ||
	    (tlen = i2d_re_X509_REQ_tbs(req, &tbs)) <= 0) {
		rc = ssl_fail(t, "CSR");
		goto out;
	}
	SHA256(tbs, (size_t)tlen, digest);
	if ((rc = key_sign(t, digest, &sig, &slen)) != 0)
		goto out;
	if ((bits = ASN1_BIT_STRING_new()) == NULL || ASN1_BIT_STRING_set(bits, sig, slen) != 1) {
		rc = ssl_fail(t, "CSR: its signature");
		goto out;
	}
	/* no unused bits: without the flag OpenSSL would drop the DER's trailing zero bits */
	bits->flags &= ~0x07L;
	bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	X509_REQ_set0_signature(req, bits);
	bits = NULL;
	if (X509_REQ_verify(req, pk) != 1) {
		rc = ssl_fail(t, "CSR: the TPM's signature does not verify with the signing key");
		goto out;
	}
	if ((*len = i2d_X509_REQ(req, der)) <= 0) {
		rc = ssl_fail(t, "CSR: DER");
		goto out;
	}
	rc = 0;
out:
	ERR_clear_error();
	ASN1_BIT_STRING_free(bits);
	OPENSSL_free(sig);
	OPENSSL_free(tbs);
	X509_ALGOR_free(alg);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return rc;
}

/* TPM2_Certify of the signing key by the AK: the TPMS_ATTEST and the TPMT_SIGNATURE. */
static int
certify(struct tpm *t, TPM2B_ATTEST **attest, uint8_t *sig, size_t *sig_len)
{
	TPM2B_DATA qualifying = {0};
	TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_NULL};
	TPMT_SIGNATURE *s = NULL;
	size_t off = 0;
	TSS2_RC trc;
	int rc = 0;

	if ((trc = Esys_Certify(t->esys, t->key, t->ak, ESYS_TR_PASSWORD, ESYS_TR_PASSWORD,
		 ESYS_TR_NONE, &qualifying, &scheme, attest, &s)) != TSS2_RC_SUCCESS)
		return tpm_fail(t, "TPM2_Certify of the signing key by the AK", trc);
	if (Tss2_MU_TPMT_SIGNATURE_Marshal(s, sig, SIGNATURE_MAX, &off) != TSS2_RC_SUCCESS)
		rc = fail(t, DEVID_EINTERNAL, "the Certify signature does not marshal");
	*sig_len = off;
	Esys_Free(s);
	return rc;
}

/* TPM2_ActivateCredential(AK, EK) of the server's credential: the secret. */
static int
activate(struct tpm *t, const struct agent_tpm_activation *a, TPM2B_DIGEST **secret)
{
	TPM2B_ID_OBJECT blob = {0};
	TPM2B_ENCRYPTED_SECRET enc = {0};
	size_t off1 = 0, off2 = 0;
	TSS2_RC trc;
	int rc;

	if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(a->blob, a->blob_len, &off1, &blob) !=
		TSS2_RC_SUCCESS ||
	    off1 != a->blob_len ||
	    Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(a->secret, a->secret_len, &off2, &enc) !=
		TSS2_RC_SUCCESS ||
	    off2 != a->secret_len)
		return fail(t, DEVID_EINVAL,
		    "tpm/activate answer: credentialBlob or encryptedSecret does not unmarshal");
	if ((rc = ek_policy(t)) != 0)
		return rc;
	if ((trc = Esys_ActivateCredential(t->esys, t->ak, t->ek, ESYS_TR_PASSWORD, t->session,
		 ESYS_TR_NONE, &blob, &enc, secret)) != TSS2_RC_SUCCESS)
		return tpm_fail(t,
		    "TPM2_ActivateCredential of devid's credential (AK, EK): the credential is "
		    "not for this TPM's EK and AK",
		    trc);
	return 0;
}

/* The signing key made persistent at the key handle; the transient copy flushed. */
static int
persist(struct tpm *t)
{
	char what[80];
	TSS2_RC trc;

	if ((trc = Esys_EvictControl(t->esys, ESYS_TR_RH_OWNER, t->key, ESYS_TR_PASSWORD,
		 ESYS_TR_NONE, ESYS_TR_NONE, t->o->key_handle, &t->persistent)) !=
	    TSS2_RC_SUCCESS) {
		snprintf(what, sizeof(what), "TPM2_EvictControl of the signing key to 0x%08x",
		    (unsigned)t->o->key_handle);
		return tpm_fail(t, what, trc);
	}
	flush(t, &t->key);
	return 0;
}

/* Empties the key handle again after a failed enrollment; the reason in r stays. */
static void
unpersist(struct tpm *t)
{
	ESYS_TR gone = ESYS_TR_NONE;
	size_t n = strlen(t->r->error.msg);

	if (t->persistent == ESYS_TR_NONE)
		return;
	if (Esys_EvictControl(t->esys, ESYS_TR_RH_OWNER, t->persistent, ESYS_TR_PASSWORD,
		ESYS_TR_NONE, ESYS_TR_NONE, t->o->key_handle, &gone) != TSS2_RC_SUCCESS)
		snprintf(t->r->error.msg + n, sizeof(t->r->error.msg) - n,
		    "; the signing key stays at 0x%08x (tpm2_evictcontrol -C o -c 0x%08x "
		    "removes it)",
		    (unsigned)t->o->key_handle, (unsigned)t->o->key_handle);
	t->persistent = ESYS_TR_NONE;
}

int
agent_tpm_enroll(
    const struct agent_tpm_enroll_opts *o, struct devid_est_result *r, char udid[UDID_HEX_LEN + 1])
{
	struct tpm t = {
	    .o = o,
	    .r = r,
	    .session = ESYS_TR_NONE,
	    .key = ESYS_TR_NONE,
	    .ek = ESYS_TR_NONE,
	    .ak = ESYS_TR_NONE,
	    .persistent = ESYS_TR_NONE,
	};
	uint8_t key_pub[PUBLIC_MAX], ak_pub[PUBLIC_MAX], sig[SIGNATURE_MAX];
	size_t key_pub_len = 0, ak_pub_len = 0, sig_len = 0, ek_len = 0;
	struct agent_tpm_activation act;
	struct agent_tpm_evidence ev;
	TPM2B_PUBLIC *kpub = NULL, *apub = NULL;
	TPM2B_ATTEST *attest = NULL;
	TPM2B_DIGEST *secret = NULL;
	STACK_OF(X509) *cas = NULL;
	unsigned char *csr = NULL;
	uint8_t *ek_der = NULL;
	EVP_PKEY *pk = NULL;
	X509 *ek = NULL;
	int csr_len = 0, rc;

	udid[0] = '\0';
	devid_est_result_release(r);
	devid_est_result_init(r);
	if (o->key_handle < AGENT_TPM_OWNER_PERSISTENT_FIRST ||
	    o->key_handle > AGENT_TPM_OWNER_PERSISTENT_LAST) {
		rc = fail(&t, DEVID_EINVAL,
		    "key handle 0x%08x: not a persistent handle of the owner (0x%08x to 0x%08x)",
		    (unsigned)o->key_handle, AGENT_TPM_OWNER_PERSISTENT_FIRST,
		    AGENT_TPM_OWNER_PERSISTENT_LAST);
		goto out;
	}
	if ((rc = tpm_open(&t)) != 0 || (rc = handle_free(&t)) != 0 ||
	    (rc = ek_cert_read(&t,
		 o->ek == AGENT_TPM_EK_RSA ? AGENT_TPM_EK_CERT_NV_RSA : AGENT_TPM_EK_CERT_NV_ECC,
		 &ek_der, &ek_len, &ek)) != 0)
		goto out;
	if (x509_udid(ek, udid) != 0) {
		rc = ssl_fail(&t, "EK certificate: its UDID");
		goto out;
	}
	if ((rc = key_create(&t, &kpub)) != 0 || (rc = ek_create(&t, ek)) != 0 ||
	    (rc = ak_create(&t, &apub)) != 0 ||
	    (rc = public_marshal(&t, kpub, key_pub, sizeof(key_pub), &key_pub_len)) != 0 ||
	    (rc = public_marshal(&t, apub, ak_pub, sizeof(ak_pub), &ak_pub_len)) != 0 ||
	    (rc = certify(&t, &attest, sig, &sig_len)) != 0 ||
	    (rc = key_pkey(&t, kpub, &pk)) != 0 ||
	    (rc = csr_make(&t, pk, udid, &csr, &csr_len)) != 0)
		goto out;

	/* everything local is done: now the server */
	t.sent = true;
	if (o->est.label != NULL && (rc = agent_est_cacerts(&o->est, &cas, r)) != 0)
		goto out;
	ev = (struct agent_tpm_evidence){
	    .ek_cert = ek_der,
	    .ek_cert_len = ek_len,
	    .ak_public = ak_pub,
	    .ak_public_len = ak_pub_len,
	    .key_public = key_pub,
	    .key_public_len = key_pub_len,
	    .certify_info = attest->attestationData,
	    .certify_info_len = attest->size,
	    .certify_signature = sig,
	    .certify_signature_len = sig_len,
	    .csr = csr,
	    .csr_len = (size_t)csr_len,
	};
	if ((rc = agent_est_tpm_activate(&o->est, &ev, &act, r)) != 0 ||
	    (rc = activate(&t, &act, &secret)) != 0 || (rc = persist(&t)) != 0)
		goto out;
	if ((rc = agent_est_tpm_enroll(&o->est, &act, secret->buffer, secret->size, pk, cas, r)) !=
	    0) {
		unpersist(&t);
		goto out;
	}
	rc = 0;
out:
	if (secret != NULL)
		OPENSSL_cleanse(secret->buffer, sizeof(secret->buffer));
	tpm_close(&t);
	Esys_Free(secret);
	Esys_Free(attest);
	Esys_Free(apub);
	Esys_Free(kpub);
	sk_X509_pop_free(cas, X509_free);
	OPENSSL_free(csr);
	EVP_PKEY_free(pk);
	X509_free(ek);
	free(ek_der);
	return rc;
}
