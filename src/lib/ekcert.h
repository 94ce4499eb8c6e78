/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ekcert.h - a TPM's endorsement key (EK) certificate checked against the TCG EK Credential
 * Profile for TPM Family 2.0 (docs/tpm.md, "EK certificates and cross-certificates").
 *
 * An EK certificate is a TPM's birth certificate: its key is the endorsement key, which can
 * decrypt (RSA) or agree keys (ECC) but never sign, so the profile's key usages are not an
 * IDevID's. The chain is checked apart (x509_path.h).
 */
#ifndef DEVID_EKCERT_H
#define DEVID_EKCERT_H

#include <openssl/x509.h>

#include "error.h"
#include "limits.h"

/* tcg-kp-EKCertificate, the extendedKeyUsage an EK certificate carries */
#define EKCERT_EKU_OID "2.23.133.8.1"

enum ekcert_key {
	EKCERT_RSA2048 = 1,
	EKCERT_P256,
	EKCERT_P384,
};

/* What the certificate says of its TPM: the subjectAltName's directoryName attributes. */
struct ekcert_info {
	enum ekcert_key key;
	char manufacturer[MAX_TPM_ATTR_LEN + 1]; /* tcg-at-tpmManufacturer 2.23.133.2.1 */
	char model[MAX_TPM_ATTR_LEN + 1]; /* tcg-at-tpmModel 2.23.133.2.2 */
	char version[MAX_TPM_ATTR_LEN + 1]; /* tcg-at-tpmVersion 2.23.133.2.3 */
};

/*
 * The rules an EK certificate must meet: version 3; a positive serial of at most 20 bytes;
 * an RSA 2048 key (rsaEncryption) or an ECC P-256 or P-384 key with its point uncompressed
 * (one key, one UDID: x509_spki_check_uncompressed); basicConstraints absent or CA:FALSE;
 * keyUsage with keyEncipherment (RSA) or keyAgreement (ECC); extendedKeyUsage with
 * tcg-kp-EKCertificate; a subjectAltName holding one directoryName with the TPM manufacturer,
 * model and version (printable, each at most MAX_TPM_ATTR_LEN bytes), critical when the
 * subject is empty (RFC 5280 4.2.1.6); authorityKeyIdentifier present. x must have been
 * decoded with its key (x509_from_der). Fills info (may be NULL) when it returns 0; else
 * DEVID_EINVAL with a message naming the rule.
 */
int ekcert_check(X509 *x, struct ekcert_info *info, struct devid_error *e);

/* "RSA 2048", "ECC P-256", "ECC P-384". */
const char *ekcert_key_name(enum ekcert_key k);

#endif
