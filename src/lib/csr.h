/* SPDX-License-Identifier: Apache-2.0 */
/*
 * csr.h - the certification request of an EST enrollment (RFC 7030 4.2.1, RFC 8951).
 *
 * What devid accepts, and nothing else: one DER PKCS#10 CertificationRequest (RFC 2986),
 * version 0, an EC public key on P-256 or P-384 named by its OID (no explicit curve
 * parameters, no RSA) with its point uncompressed (RFC 5480 2.2; the certificate carries the
 * request's SubjectPublicKeyInfo, and one key has one UDID), signed by that key with
 * ecdsa-with-SHA256 or -SHA384 (no parameters). The self-signature is the proof of possession.
 * devid's profile, not the CSR, decides the certificate: subject, attributes and requested
 * extensions are parsed but not used here.
 */
#ifndef DEVID_CSR_H
#define DEVID_CSR_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "error.h"

/*
 * Decodes exactly n bytes of DER and checks the rules above. Bytes after the request, and
 * BER that is not DER (the request is re-encoded and compared), are refused. On success *out
 * is a new X509_REQ (X509_REQ_free). Errors: DEVID_EINVAL (malformed, or a key or algorithm
 * devid does not take), DEVID_ECRYPTO "CSR signature does not verify", DEVID_ENOMEM.
 *
 * holder (may be NULL): a certificate whose key the request is expected to carry, EST's TLS
 * client certificate, whose key the handshake decoded. When the request's
 * SubjectPublicKeyInfo is the holder's, byte for byte, the signature is checked with the
 * holder's key and the request's copy is never decoded (OpenSSL 3.0 sets up its decoders
 * for each key it decodes, at more cost than the signature check): X509_REQ_get0_pubkey
 * then gives NULL, and callers compare keys with x509_spki_same. Any other request is
 * checked as without a holder, its key decoded; the result is the same either way.
 */
int csr_from_der(const uint8_t *p, size_t n, X509 *holder, X509_REQ **out, struct devid_error *e);

/*
 * The body of an EST simpleenroll or simplereenroll request: base64 (RFC 4648, padded) of
 * the DER request, with CR, LF, space and tab allowed anywhere (RFC 8951), any other
 * character refused by its offset. Bodies over MAX_EST_BODY are DEVID_ELIMIT before any
 * decoding; an empty body is DEVID_EINVAL. Then as csr_from_der, holder included.
 */
int csr_from_est_body(
    const uint8_t *body, size_t len, X509 *holder, X509_REQ **out, struct devid_error *e);

#endif
