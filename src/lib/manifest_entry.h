/* SPDX-License-Identifier: Apache-2.0 */
/*
 * manifest_entry.h - one SignedSecureElement entry of a vendor manifest: its structural parse
 * and its checks.
 *
 * An entry is accepted only if: its signer is a trusted manifest signer (x5t#S256); the ES256
 * signature verifies over the exact protected.payload bytes; header.uniqueId equals the
 * payload's; x5c[0] meets the IDevID rules and chains to a trusted vendor root through the
 * rest of x5c; the JWK x/y equal the certificate's key. (Whether its groupId fits the batch,
 * and whether its chip appears twice, are the batch's rules: manifest_check.h.)
 *
 * A TPM entry (payload "kind": "tpm"; docs/formats.md "TPM entries") carries the TPM's
 * endorsement key instead: its JWK is RSA (n, e) or EC P-256/P-384, x5c[0] is the EK
 * certificate and must meet the TCG EK profile (ekcert.h) instead of the IDevID rules, and
 * its chain is built through cross-certificates (x509_path.h). It never takes batchcheck's
 * fast paths.
 */
#ifndef DEVID_MANIFEST_ENTRY_H
#define DEVID_MANIFEST_ENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "batchcheck.h"
#include "error.h"
#include "jws.h"
#include "limits.h"
#include "vendor_trust.h"
#include "x509.h"

struct manifest_entry {
	char unique_id[MAX_SERIAL_LEN + 1];
	char group_id[MAX_NAME_LEN + 1]; /* "" when absent */
	char udid[UDID_HEX_LEN + 1]; /* of x5c[0]'s key */
	struct jws_header hdr;
	/*
	 * x5c[0], the birth certificate. Usually decoded without its public key (OpenSSL 3.0
	 * spends most of a certificate's decoding on the key): X509_get0_pubkey() may return
	 * NULL. Everything else (i2d_X509, names, extensions) is as x509_from_der() gives it;
	 * cert_der is the DER as received, to decode in full when the key is needed.
	 */
	X509 *cert;
	uint8_t *cert_der;
	size_t cert_der_len;
	STACK_OF(X509) *chain; /* x5c[1..]; entries of one manifest share equal certificates */
	bool tpm; /* payload "kind": "tpm" */
	uint8_t jwk_xy[2 * 48]; /* an EC JWK's x || y */
	size_t jwk_xy_len; /* 0: an RSA JWK (TPM entries only) */
	uint8_t jwk_n[EK_RSA_BYTES]; /* an RSA JWK's n, without leading zeros */
	size_t jwk_n_len;
	uint8_t jwk_e[EK_RSA_E_BYTES]; /* and its e */
	size_t jwk_e_len;
	char *prot_b64, *payload_b64, *sig_b64; /* as received */
	char *json; /* the entry, compact, signed fields unchanged */
};

/* Structural parse of one entry (no signature or chain checks). `index` is for messages. */
int manifest_entry_parse(
    const json_t *obj, size_t index, struct manifest_entry **out, struct devid_error *e);
/* The same from bytes: parses p[0..n) as one JSON object first. */
int manifest_entry_parse_bytes(
    const uint8_t *p, size_t n, struct manifest_entry **out, struct devid_error *e);
/* Signature, signer, chain and key checks of one parsed entry. */
int manifest_entry_verify(
    const struct manifest_entry *m, const struct vendor_trust *t, struct devid_error *e);
void manifest_entry_free(struct manifest_entry *m);

/*
 * The x5c[1..] certificates of one manifest, decoded once each and shared by the threads that
 * parse it (thread-safe). NULL when out of memory.
 */
struct x5c_cache *x5c_cache_new(void);
void x5c_cache_free(struct x5c_cache *c);

/*
 * What one parsing thread reuses from entry to entry: a manifest's shared certificates
 * (cache, borrowed; NULL: none) and the protected header it parsed last (entries of one
 * signer share it). Caller-owned: zero it, set cache, release it when done.
 */
struct manifest_entry_ctx {
	struct x5c_cache *cache;
	char *prot;
	size_t prot_len;
	struct jws_header hdr;
};
void manifest_entry_ctx_release(struct manifest_entry_ctx *c);

/*
 * manifest_entry_parse with the reuse of c (NULL: none) and, when text (text_len bytes) is
 * the entry as received, keeping it as the compact copy when it is already exactly that.
 * The result is the same as manifest_entry_parse's.
 */
int manifest_entry_parse_ctx(const json_t *obj, size_t index, struct manifest_entry_ctx *c,
    const uint8_t *text, size_t text_len, struct manifest_entry **out, struct devid_error *e);

/*
 * manifest_entry_verify with the fast paths of w (NULL: none; batchcheck.h): the same
 * verdict and, for a rejection, the same message. An entry accepted the original way is
 * offered to w as a model for its twins.
 */
int manifest_entry_check(const struct manifest_entry *m, const struct vendor_trust *t,
    struct batchcheck_worker *w, struct devid_error *e);

#endif
