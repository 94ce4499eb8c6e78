/*
 * reelkit.h - test helpers to read, change and re-sign minted reels (JWS members of manifest
 * entries and batch descriptors). Failures end the test program: they are set-up errors.
 */
#ifndef DEVID_TEST_REELKIT_H
#define DEVID_TEST_REELKIT_H

#include <jansson.h>
#include <openssl/evp.h>

json_t *reelkit_load_json(const char *path);
/* Writes j compactly to path and releases it. */
void reelkit_save_json(const char *path, json_t *j);
/* The base64url member of a JWS, decoded as NUL-terminated text (free()). */
char *reelkit_decode(const json_t *jws, const char *member);
/* The payload of a JWS as JSON (new reference). */
json_t *reelkit_payload(const json_t *jws);
/* Sets the payload to text and signs protected.payload with key. */
void reelkit_resign_raw(json_t *jws, const char *text, EVP_PKEY *key);
/* The same with a JSON payload, which is released. */
void reelkit_resign(json_t *jws, json_t *payload, EVP_PKEY *key);
/* The identity JWK (publicKeySet.keys[0]) of a payload, borrowed. */
json_t *reelkit_identity_jwk(json_t *payload);

#endif
