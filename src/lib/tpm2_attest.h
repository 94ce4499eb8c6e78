/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tpm2_attest.h - the server's half of TPM 2.0 enrollment by credential activation, in
 * software: no TPM, only the TPM's wire formats (libtss2-mu) and OpenSSL.
 *
 * A device proves that an attestation key (AK) lives in the TPM that holds a registered
 * endorsement key (EK), and that a signing key lives in the same TPM:
 *   - tpm2_make_credential wraps a random secret to the EK public, bound to the AK's name
 *     (TPM 2.0 Part 1 section 24, "Credential Protection"); only TPM2_ActivateCredential in
 *     the TPM holding that EK, with the AK loaded, gives the secret back;
 *   - tpm2_certify_check verifies the TPM2_Certify of the signing key by the AK;
 *   - tpm2_ak_check and tpm2_signing_key_check refuse keys whose attributes do not make
 *     those proofs mean anything (a key that may leave its TPM, an AK that signs anything).
 *
 * Device-sent structures are TPM wire format, big-endian, as tpm2-tools writes them:
 * a TPM2B_PUBLIC (2-byte size then TPMT_PUBLIC), a TPMS_ATTEST, a TPMT_SIGNATURE. Each is
 * decoded with its exact length (trailing bytes are an error), and a TPMT_PUBLIC must be the
 * canonical encoding of what it decodes to (its name hashes the bytes received).
 */
#ifndef DEVID_TPM2_ATTEST_H
#define DEVID_TPM2_ATTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "error.h"

/* a TPM2B_NAME's content: nameAlg (2 bytes) then the digest; SHA-512 at most */
#define TPM2_NAME_MAX 66
/* marshalled TPM2B_ID_OBJECT: size, TPM2B_DIGEST integrity HMAC, encrypted TPM2B_DIGEST */
#define TPM2_ID_OBJECT_MAX 256
/* marshalled TPM2B_ENCRYPTED_SECRET: an RSA 2048 ciphertext or a P-384 point, and its size */
#define TPM2_ENCRYPTED_SECRET_MAX 258
/* the secret a credential carries: at most the EK's nameAlg digest (SHA-256: 32 bytes) */
#define TPM2_CREDENTIAL_MAX 32

/* A TPM object's public area, decoded and checked for form (not yet for use). */
struct tpm2_public;

/*
 * Decodes exactly len bytes of a marshalled TPM2B_PUBLIC (the size prefix must cover the
 * rest) of an RSA 2048 or ECC P-256/P-384 key whose nameAlg is SHA-256 or SHA-384 (a TPM
 * names an AK after its EK's nameAlg), and builds its public key. On success
 * *out is new (tpm2_public_free). Errors: DEVID_EINVAL (malformed, not canonical, not
 * SHA-256/384, a key OpenSSL refuses), DEVID_ELIMIT (len over MAX_TPM2_PUBLIC), DEVID_ENOMEM.
 */
int tpm2_public_parse(
    const uint8_t *p, size_t len, struct tpm2_public **out, struct devid_error *e);
void tpm2_public_free(struct tpm2_public *pub);

/* The object's TPM name, nameAlg || H_nameAlg(TPMT_PUBLIC); *len is set. Borrowed. */
const uint8_t *tpm2_public_name(const struct tpm2_public *pub, size_t *len);

/* The object's public key. Borrowed: EVP_PKEY_up_ref it to keep it past pub. */
EVP_PKEY *tpm2_public_get0_pkey(const struct tpm2_public *pub);

/*
 * An attestation key: restricted, sign, not decrypt, fixedTPM, fixedParent,
 * sensitiveDataOrigin; ECC P-256 with ECDSA-SHA256 or RSA 2048 with RSASSA-SHA256.
 * Errors: DEVID_EINVAL naming the first rule broken.
 */
int tpm2_ak_check(const struct tpm2_public *ak, struct devid_error *e);

/*
 * A key the LDevID may be issued to: ECC P-256, sign, not restricted, not decrypt,
 * fixedTPM, fixedParent, sensitiveDataOrigin; scheme ECDSA-SHA256 or none (the TPM then
 * takes the scheme of each TPM2_Sign). Errors: DEVID_EINVAL naming the first rule broken.
 */
int tpm2_signing_key_check(const struct tpm2_public *key, struct devid_error *e);

/* TPM2_MakeCredential's output, each marshalled as TPM2_ActivateCredential takes it. */
struct tpm2_credential {
	uint8_t id_object[TPM2_ID_OBJECT_MAX]; /* TPM2B_ID_OBJECT (credentialBlob) */
	size_t id_object_len;
	uint8_t secret[TPM2_ENCRYPTED_SECRET_MAX]; /* TPM2B_ENCRYPTED_SECRET (secret) */
	size_t secret_len;
};

/*
 * TPM2_MakeCredential in software: wraps cred (1..TPM2_CREDENTIAL_MAX bytes) to the EK
 * public key ek for the object named name (the AK's tpm2_public_name). The EK's template is
 * read from its key as the TCG EK Credential Profile defines the default templates: RSA 2048
 * and ECC P-256 with SHA-256 and AES-128-CFB, ECC P-384 with SHA-384 and AES-256-CFB.
 * Errors: DEVID_EINVAL (another EK key, a bad name or credential size), DEVID_ECRYPTO.
 */
int tpm2_make_credential(EVP_PKEY *ek, const uint8_t *name, size_t name_len, const uint8_t *cred,
    size_t cred_len, struct tpm2_credential *out, struct devid_error *e);

/*
 * Verifies a TPM2_Certify of key by ak: attest (exactly attest_len bytes of a marshalled
 * TPMS_ATTEST) has magic TPM_GENERATED_VALUE, type TPM_ST_ATTEST_CERTIFY, extraData equal
 * to qualifying (not checked when qualifying is NULL: tpm2_certify of tpm2-tools 5.4 always
 * sends 00ff55aa), and certifies key's name; sig (a marshalled TPMT_SIGNATURE) is ak's
 * signature over attest, of the scheme ak's checks allow. The caller has checked ak with
 * tpm2_ak_check and key with tpm2_signing_key_check. Errors: DEVID_EINVAL (malformed or a
 * rule broken), DEVID_ECRYPTO (the signature does not verify).
 */
int tpm2_certify_check(const struct tpm2_public *ak, const struct tpm2_public *key,
    const uint8_t *attest, size_t attest_len, const uint8_t *sig, size_t sig_len,
    const uint8_t *qualifying, size_t qualifying_len, struct devid_error *e);

#endif
