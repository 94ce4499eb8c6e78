/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ecfixed.h - ECDSA P-256 verification against a public key that verifies many signatures:
 * the manifest signer of a batch's entries, the issuing CA of its birth certificates.
 *
 * A verification computes u1*G + u2*Q. OpenSSL keeps a table of multiples of the generator
 * G, so u1*G is quick; Q is new to it at every call, and u2*Q costs three times as much. Here
 * Q gets a table of its own, made once per key (a P-256 group whose generator is Q, with
 * OpenSSL's own precomputation), so both halves are quick: a verification then costs about
 * 40 % of OpenSSL's. The arithmetic is OpenSSL's (EC_POINT_mul, BN_*); what this module adds
 * is the classic ECDSA verification equation (SEC 1 v2, 4.1.4), written out.
 *
 * It answers only "valid" or "don't know": a false means the caller runs OpenSSL's own
 * verification, which decides (batchcheck.h); tests compare it with Wycheproof's verdicts.
 */
#ifndef DEVID_ECFIXED_H
#define DEVID_ECFIXED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/bn.h>
#include <openssl/evp.h>

struct ecfixed;

/*
 * The tables of key's point, shared: made on first use and kept in a process-wide cache of
 * ECFIXED_CACHE keys (by their encoded point; an unused one is replaced by a new key), so a
 * server that checks page after page of one vendor makes them once. NULL when key is not an
 * EC P-256 public key, or on any failure (then the caller verifies the ordinary way).
 * Release with ecfixed_release.
 */
#define ECFIXED_CACHE 16
struct ecfixed *ecfixed_get(EVP_PKEY *key);
void ecfixed_release(struct ecfixed *f);

/*
 * True only if (r, s) is a valid ECDSA signature by f's key over the SHA-256 digest dgst (32
 * bytes), as ECDSA_do_verify would find. ctx is the calling thread's own; f may be shared by
 * threads.
 */
bool ecfixed_verify(
    const struct ecfixed *f, BN_CTX *ctx, const uint8_t dgst[32], const BIGNUM *r, const BIGNUM *s);

#endif
