/* SPDX-License-Identifier: Apache-2.0 */
/*
 * batchcheck.h - the fast paths of a manifest's per-entry checks (docs/formats.md, "Checks on
 * a reel", "How a batch is checked fast").
 *
 * Every function here answers only "yes, the original check would accept this" or "don't
 * know". A "don't know" makes the caller run the original check (manifest_entry_verify's
 * functions, on a fully decoded certificate), which then decides and words the rejection. So
 * nothing here ever rejects an entry or writes a message, and a false "don't know" costs time,
 * never correctness; a false "yes" would be a bug.
 *
 * Thread use: one struct batchcheck per batch, shared; one struct batchcheck_worker per
 * thread. The shared object is read and extended under its own lock.
 */
#ifndef DEVID_BATCHCHECK_H
#define DEVID_BATCHCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

/*
 * Decodes exactly n bytes of DER like x509_from_der() but without decoding the public key
 * (OpenSSL 3.0 spends ~70 us of the ~80 us of a d2i_X509 there): every other field, the
 * extension cache and the signature are as x509_from_der() leaves them, and X509_get0_pubkey()
 * returns NULL. NULL when x509_from_der() must decide (any failure, or a signature algorithm
 * other than ECDSA with SHA-2).
 */
X509 *batchcheck_decode_nokey(const uint8_t *p, size_t n);

/* The certificate's EC public key as x || y (len 64 or 96); DEVID_ECRYPTO otherwise. */
int batchcheck_key_xy(EVP_PKEY *key, uint8_t *out, size_t *len);

struct batchcheck;
struct batchcheck_worker;

/* The fast paths against the given trust store (borrowed; must outlive b). NULL: no memory. */
struct batchcheck *batchcheck_new(X509_STORE *roots);
void batchcheck_free(struct batchcheck *b);
struct batchcheck_worker *batchcheck_worker_new(struct batchcheck *b);
void batchcheck_worker_free(struct batchcheck_worker *w);

/* True only if jws_verify(X509_get0_pubkey(signer), ...) would return 0. */
bool batchcheck_jws(struct batchcheck_worker *w, X509 *signer, const char *prot, size_t prot_len,
    const char *payload, size_t payload_len, const char *sig, size_t sig_len);

/*
 * True only if x509_check_idevid(leaf), x509_chain_verify(roots, leaf, chain, {purpose TLS
 * client}) and the JWK comparison would all pass, where leaf is cert_der decoded in full. It
 * answers for leaves that are twins of an accepted leaf learnt by batchcheck_learn().
 */
bool batchcheck_leaf(struct batchcheck_worker *w, X509 *cert, const uint8_t *cert_der,
    size_t cert_der_len, STACK_OF(X509) *chain, const uint8_t *jwk_xy, size_t jwk_xy_len);

/*
 * Offers a leaf (decoded in full) that passed the original checks with the given x5c[1..] as
 * a model for batchcheck_leaf(). It is kept only if the chain OpenSSL builds for it meets the
 * conditions under which its twins need no chain of their own (see batchcheck.c).
 */
void batchcheck_learn(struct batchcheck_worker *w, X509 *leaf, STACK_OF(X509) *chain);

#endif
