/* SPDX-License-Identifier: Apache-2.0 */
/*
 * custody.h - the chain of custody of a batch (docs/custody.md): signed ownership records,
 * each a JWS in general JSON serialization (RFC 7515 7.2.1) with ES256 signatures, whose
 * payloads link to the previous record by SHA-256.
 *
 * A record is signed by devid's custody key (protected header kid "devid:<thumbprint>") and,
 * where devid holds it, by the previous owner's key (kid "owner:<thumbprint>"); the payload's
 * ownerSigned says which, so a stripped owner signature is noticed.
 */
#ifndef DEVID_CUSTODY_H
#define DEVID_CUSTODY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "error.h"

#define CUSTODY_TYP "devid-custody+jws"
#define CUSTODY_VERSION 1

/*
 * The key's thumbprint as a kid names it: b64url of the first 12 bytes of SHA-256 of its
 * SubjectPublicKeyInfo DER (the kid of /api/v1/interop-key). 0 or DEVID_ECRYPTO.
 */
int custody_key_thumbprint(EVP_PKEY *key, char out[17]);

/*
 * The base64 (RFC 4648 4, padded) of the key's SubjectPublicKeyInfo DER: how a record names
 * an owner's key. malloc'd (free()); NULL when out of memory or not encodable.
 */
char *custody_key_b64(EVP_PKEY *key);

/*
 * Signs payload (the record's JSON, plen bytes) with devid_key and, when not NULL, owner_key.
 * Returns a new object {"payload","signatures":[{"protected","signature"}…]}, NULL with e set.
 */
json_t *custody_sign(const uint8_t *payload, size_t plen, EVP_PKEY *devid_key, EVP_PKEY *owner_key,
    struct devid_error *e);

/* What custody_verify found in a chain that verified. */
struct custody_summary {
	size_t records;
	char vendor[65], batch[65];
	char owner[65]; /* the last record's new owner */
};

/*
 * Verifies a chain document (buf, len bytes): {"vendor","batch","records":[record…]}, every
 * record's signatures (devid's by one of roots[0..nroots)), its payload and its link to the
 * record before. 0 with s filled; otherwise DEVID_EINVAL (malformed) or DEVID_ECRYPTO (a
 * signature or link), e naming the record ("record 2: ...").
 */
int custody_verify(const uint8_t *buf, size_t len, EVP_PKEY *const *roots, size_t nroots,
    struct custody_summary *s, struct devid_error *e);

#endif
