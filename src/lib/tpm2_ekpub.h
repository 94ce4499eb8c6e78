/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tpm2_ekpub.h - a TPM's endorsement key (EK) public area rebuilt from the EK certificate's
 * key, as the TPM itself reports it (TPM2_ReadPublic of the EK, tpm2_createek -u): what a
 * cloud that attests TPMs by their EK (Azure DPS's TpmAttestation.endorsementKey) wants, when
 * devid holds only the EK certificate.
 *
 * An EK is a primary key the TPM derives from a TCG default template (TCG EK Credential
 * Profile for TPM Family 2.0, section 2.2.1): the public area is that template with its
 * unique field replaced by the key. The template is chosen by the key:
 *   RSA 2048   template L-1: SHA-256 name, PolicySecret(TPM_RH_ENDORSEMENT), AES-128-CFB,
 *              exponent 0 (65537), unique = the 256-byte modulus;
 *   ECC P-256  template L-2: the same, curve NIST P-256, unique = x and y (32 bytes each);
 *   ECC P-384  template H-3: SHA-384 name, the profile's SHA-384 policy, userWithAuth,
 *              AES-256-CFB, curve NIST P-384, unique = x and y (48 bytes each).
 * The low-range templates L-1 and L-2 are the ones a TPM's EK certificates at NV indices
 * 0x01c00002 and 0x01c0000a certify, and the ones tpm2_createek and the persistent EK at
 * 0x81010001 use; an EK made from the high-range RSA 2048 or P-256 templates (H-1, H-2)
 * has another public area, which the certificate does not tell apart.
 */
#ifndef DEVID_TPM2_EKPUB_H
#define DEVID_TPM2_EKPUB_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "error.h"

/* bytes of a marshalled EK TPM2B_PUBLIC, at most (RSA 2048: 316) */
#define TPM2_EK_PUBLIC_MAX 512

/*
 * The marshalled TPM2B_PUBLIC (2-byte size, then the TPMT_PUBLIC, big-endian) of the EK
 * whose key is ek, into out[0..*len). Errors: DEVID_EINVAL when ek is not an RSA 2048 key
 * with exponent 65537, nor an ECC P-256 or P-384 key; DEVID_ECRYPTO when OpenSSL cannot give
 * the key's parts; DEVID_EINTERNAL when the marshalling fails.
 */
int tpm2_ek_public(
    EVP_PKEY *ek, uint8_t out[TPM2_EK_PUBLIC_MAX], size_t *len, struct devid_error *e);

#endif
