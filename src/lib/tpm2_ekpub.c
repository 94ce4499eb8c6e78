// SPDX-License-Identifier: Apache-2.0
/*
 * tpm2_ekpub.c - an EK's public area from its key and the TCG default EK templates
 * (tpm2_ekpub.h). The templates are those of the TCG EK Credential Profile for TPM Family
 * 2.0, section 2.2.1 (tables 2 and 3 for L-1 and L-2, 7 for H-3).
 */
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>

#include <tss2/tss2_mu.h>
#include <tss2/tss2_tpm2_types.h>

#include "tpm2_ekpub.h"
#include "banned.h"

/* PolicySecret(TPM_RH_ENDORSEMENT) with SHA-256: the authPolicy of L-1 and L-2 */
static const uint8_t policy_sha256[32] = {0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a,
    0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2,
    0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa};

/* PolicyOR of the profile's SHA-384 PolicyA (PolicySecret) and PolicyB: H-3's authPolicy */
static const uint8_t policy_sha384[48] = {0xb2, 0x6e, 0x7d, 0x28, 0xd1, 0x1a, 0x50, 0xbc, 0x53,
    0xd8, 0x82, 0xbc, 0xf5, 0xfd, 0x3a, 0x1a, 0x07, 0x41, 0x48, 0xbb, 0x35, 0xd3, 0xb4, 0xe4, 0xcb,
    0x1c, 0x0a, 0xd9, 0xbd, 0xe4, 0x19, 0xca, 0xcb, 0x47, 0xba, 0x09, 0x69, 0x96, 0x46, 0x15, 0x0f,
    0x9f, 0xc0, 0x00, 0xf3, 0xf8, 0x0e, 0x12};

/* fixedTPM, fixedParent, sensitiveDataOrigin, adminWithPolicy, restricted, decrypt */
#define EK_ATTRS_LOW                                                                               \
	(TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |        \
	    TPMA_OBJECT_ADMINWITHPOLICY | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)

static int
rsa_template(EVP_PKEY *ek, TPMT_PUBLIC *t, struct devid_error *e)
{
	BIGNUM *n = NULL, *exp = NULL;
	int rc = DEVID_ECRYPTO;

	if (EVP_PKEY_get_bits(ek) != 2048)
		return devid_error_set(e, DEVID_EINVAL, "EK: RSA %d bits, want 2048 (template L-1)",
		    EVP_PKEY_get_bits(ek));
	if (!EVP_PKEY_get_bn_param(ek, OSSL_PKEY_PARAM_RSA_N, &n) ||
	    !EVP_PKEY_get_bn_param(ek, OSSL_PKEY_PARAM_RSA_E, &exp)) {
		devid_error_ssl(e, rc, "EK: the RSA key's modulus and exponent");
		goto out;
	}
	if (!BN_is_word(exp, 65537)) {
		rc = devid_error_set(e, DEVID_EINVAL,
		    "EK: RSA exponent is not 65537, which template L-1 prescribes");
		goto out;
	}
	t->type = TPM2_ALG_RSA;
	t->nameAlg = TPM2_ALG_SHA256;
	t->objectAttributes = EK_ATTRS_LOW;
	t->authPolicy.size = sizeof(policy_sha256);
	memcpy(t->authPolicy.buffer, policy_sha256, sizeof(policy_sha256));
	t->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
	t->parameters.rsaDetail.symmetric.keyBits.aes = 128;
	t->parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	t->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
	t->parameters.rsaDetail.keyBits = 2048;
	t->parameters.rsaDetail.exponent = 0;
	t->unique.rsa.size = 256;
	if (BN_bn2binpad(n, t->unique.rsa.buffer, 256) != 256) {
		devid_error_ssl(e, rc, "EK: the RSA modulus");
		goto out;
	}
	rc = 0;
out:
	BN_free(n);
	BN_free(exp);
	return rc;
}

static int
ecc_template(EVP_PKEY *ek, TPMT_PUBLIC *t, struct devid_error *e)
{
	uint8_t pt[1 + 2 * 48];
	char group[32];
	size_t field, n = 0;

	if (!EVP_PKEY_get_group_name(ek, group, sizeof(group), NULL))
		return devid_error_ssl(e, DEVID_ECRYPTO, "EK: the ECC key's curve");
	if (strcmp(group, "prime256v1") == 0) {
		field = 32;
		t->nameAlg = TPM2_ALG_SHA256;
		t->objectAttributes = EK_ATTRS_LOW;
		t->authPolicy.size = sizeof(policy_sha256);
		memcpy(t->authPolicy.buffer, policy_sha256, sizeof(policy_sha256));
		t->parameters.eccDetail.symmetric.keyBits.aes = 128;
		t->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	} else if (strcmp(group, "secp384r1") == 0) {
		field = 48;
		t->nameAlg = TPM2_ALG_SHA384;
		t->objectAttributes = EK_ATTRS_LOW | TPMA_OBJECT_USERWITHAUTH;
		t->authPolicy.size = sizeof(policy_sha384);
		memcpy(t->authPolicy.buffer, policy_sha384, sizeof(policy_sha384));
		t->parameters.eccDetail.symmetric.keyBits.aes = 256;
		t->parameters.eccDetail.curveID = TPM2_ECC_NIST_P384;
	} else {
		return devid_error_set(
		    e, DEVID_EINVAL, "EK: ECC curve %.31s, want NIST P-256 or P-384", group);
	}
	if (!EVP_PKEY_get_octet_string_param(
		ek, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt), &n) ||
	    n != 1 + 2 * field || pt[0] != 0x04)
		return devid_error_ssl(e, DEVID_ECRYPTO, "EK: the ECC point, uncompressed");
	t->type = TPM2_ALG_ECC;
	t->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
	t->parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	t->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
	t->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	t->unique.ecc.x.size = (UINT16)field;
	memcpy(t->unique.ecc.x.buffer, pt + 1, field);
	t->unique.ecc.y.size = (UINT16)field;
	memcpy(t->unique.ecc.y.buffer, pt + 1 + field, field);
	return 0;
}

int
tpm2_ek_public(EVP_PKEY *ek, uint8_t out[TPM2_EK_PUBLIC_MAX], size_t *len, struct devid_error *e)
{
	TPM2B_PUBLIC pub;
	size_t off = 0;
	int rc;

	*len = 0;
	memset(&pub, 0, sizeof(pub));
	if (EVP_PKEY_get_base_id(ek) == EVP_PKEY_RSA)
		rc = rsa_template(ek, &pub.publicArea, e);
	else if (EVP_PKEY_get_base_id(ek) == EVP_PKEY_EC)
		rc = ecc_template(ek, &pub.publicArea, e);
	else
		rc = devid_error_set(
		    e, DEVID_EINVAL, "EK: not an RSA 2048, ECC P-256 or ECC P-384 key");
	if (rc != 0)
		return rc;
	/* the size field is the TPMT_PUBLIC's marshalled length, which Marshal computes */
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, out, TPM2_EK_PUBLIC_MAX, &off) != TSS2_RC_SUCCESS)
		return devid_error_set(e, DEVID_EINTERNAL, "EK: the TPM2B_PUBLIC does not marshal");
	*len = off;
	return 0;
}
