/* SPDX-License-Identifier: Apache-2.0 */
/*
 * reelkit.h - test helpers to mint reels in a test's directory and to read, change and re-sign
 * them (JWS members of manifest entries and batch descriptors). Failures end the test program:
 * they are set-up errors.
 */
#ifndef DEVID_TEST_REELKIT_H
#define DEVID_TEST_REELKIT_H

#include <stddef.h>

#include <jansson.h>
#include <openssl/evp.h>

/* Sets the directory (a test's tmp) that reelkit_path and reelkit_mint work under; copied. */
void reelkit_workdir(const char *dir);
/*
 * dir/a/b, or dir/a when b is "". The buffer is static and reused: the result is valid until
 * four more calls.
 */
const char *reelkit_path(const char *a, const char *b);
/* Mints count chips of the vendor whose PKI is in dir/vdir into the reel dir/batch. */
void reelkit_mint(const char *vdir, const char *batch, size_t count);
/* The whole file (at most 1 MiB) as NUL-terminated text (free()). */
char *reelkit_read_text(const char *path);

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

/*
 * A copy of key (public part, and private part if it has one) whose encodings (SPKI, CSR) write
 * the point in `form`: "uncompressed", "compressed" or "hybrid". EVP_PKEY_free() it.
 */
EVP_PKEY *reelkit_key_form(EVP_PKEY *key, const char *form);
/*
 * Re-issues the birth certificate x5c[0] of a payload with the same key written in `form`, signed
 * by the vendor's issuing CA (vendor_dir/issuing.key): a genuine vendor signature over another
 * encoding of the same chip key. Re-sign the payload afterwards.
 */
void reelkit_reissue_form(json_t *payload, const char *vendor_dir, const char *form);
/*
 * Pads the entry (payload member "padding", re-signed with key, and an unsigned top-level
 * member "x-padding" for the last bytes) so that its compact JSON is exactly size bytes.
 */
void reelkit_pad_entry(json_t *entry, size_t size, EVP_PKEY *key);

#endif
