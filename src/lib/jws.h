/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jws.h - JWS (RFC 7515) with ES256 (RFC 7518 3.4) in flattened JSON serialization.
 *
 * Signatures are raw r||s, 64 bytes. Verification runs over the exact bytes received
 * (BASE64URL(protected) "." BASE64URL(payload)); nothing is re-serialized first.
 */
#ifndef DEVID_JWS_H
#define DEVID_JWS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "error.h"

#define ES256_SIG_LEN 64

/* Signs msg with a P-256 key; sig receives r||s. */
int es256_sign(EVP_PKEY *key, const uint8_t *msg, size_t len, uint8_t sig[ES256_SIG_LEN],
    struct devid_error *e);
/* Verifies a raw r||s signature; any length other than 64 is a failure. 0 or DEVID_ECRYPTO. */
int es256_verify(EVP_PKEY *pub, const uint8_t *msg, size_t len, const uint8_t *sig, size_t siglen,
    struct devid_error *e);

/* The members of a protected header devid reads. */
struct jws_header {
	uint8_t x5t_s256[32]; /* SHA-256 of the signer certificate's DER */
	char kid[128]; /* "" when absent */
};

/*
 * Decodes and checks a protected header: alg must be ES256, typ (if present) "JWT",
 * x5t#S256 present and 32 bytes.
 */
int jws_header_parse(const char *prot_b64, size_t len, struct jws_header *h, struct devid_error *e);

/*
 * Returns a new object {"payload","protected","signature"}; the protected header is
 * {"typ":"JWT","alg":"ES256","kid":b64url(kid),"x5t#S256":b64url(x5t)}.
 */
json_t *jws_sign_flat(EVP_PKEY *key, const uint8_t *kid, size_t kidlen, const uint8_t x5t_s256[32],
    const uint8_t *payload, size_t plen, struct devid_error *e);

/* Verifies prot_b64 "." payload_b64 against sig_b64 with pub. 0 or DEVID_ECRYPTO/EINVAL. */
int jws_verify(EVP_PKEY *pub, const char *prot_b64, size_t prot_len, const char *payload_b64,
    size_t payload_len, const char *sig_b64, size_t sig_len, struct devid_error *e);

#endif
