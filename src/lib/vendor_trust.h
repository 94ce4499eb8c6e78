/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vendor_trust.h - the vendor roots and manifest signers a batch is checked against: every
 * signer holds a P-256 key (ES256) and chains to one of the roots. Read-only once made, so
 * the threads that check one batch share it.
 */
#ifndef DEVID_VENDOR_TRUST_H
#define DEVID_VENDOR_TRUST_H

#include <stdint.h>

#include <openssl/x509.h>

#include "error.h"

struct vendor_trust;

/*
 * Takes references to the certificates. DEVID_EINVAL (NULL returned) when a signer's key is
 * not P-256 or it does not chain to a root, naming the signer by its position.
 */
struct vendor_trust *vendor_trust_new(
    STACK_OF(X509) *roots, STACK_OF(X509) *signers, struct devid_error *e);
void vendor_trust_free(struct vendor_trust *t);
/* The trusted signer whose DER hashes to x5t, or NULL. Borrowed from t. */
X509 *vendor_trust_get0_signer(const struct vendor_trust *t, const uint8_t x5t[32]);
/* The roots as a store for chain verification. Borrowed from t. */
X509_STORE *vendor_trust_get0_roots(const struct vendor_trust *t);
/*
 * Sets e to DEVID_ECRYPTO naming what ("manifest signer", ...) as not trusted by its
 * x5t#S256, base64url as the JWS header carries it; returns DEVID_ECRYPTO.
 */
int vendor_trust_refuse(const char *what, const uint8_t x5t[32], struct devid_error *e);

#endif
