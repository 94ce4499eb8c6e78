/* SPDX-License-Identifier: Apache-2.0 */
/*
 * manifest.h - vendor manifests (SignedSecureElement entries), batch descriptors, and the
 * checks a batch must pass before devid accepts any of it. `devid vendor verify` and the
 * service's ingest run exactly this code.
 *
 * An entry is accepted only if: its signer is a trusted manifest signer (x5t#S256); the ES256
 * signature verifies over the exact protected.payload bytes; header.uniqueId equals the
 * payload's; x5c[0] meets the IDevID rules and chains to a trusted vendor root through the
 * rest of x5c; the JWK x/y equal the certificate's key; groupId equals the batch id. A batch
 * is accepted only if every entry is, no chip appears twice, and the descriptor's count
 * equals the number of entries.
 */
#ifndef DEVID_MANIFEST_H
#define DEVID_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "error.h"
#include "jws.h"
#include "limits.h"
#include "x509.h"

/* Trusted vendor roots and manifest signers. */
struct vendor_trust;

/*
 * Takes references to the certificates. Every signer must hold a P-256 key and chain to one
 * of the roots.
 */
struct vendor_trust *vendor_trust_new(
    STACK_OF(X509) *roots, STACK_OF(X509) *signers, struct devid_error *e);
void vendor_trust_free(struct vendor_trust *t);
/* The trusted signer whose DER hashes to x5t, or NULL. Borrowed. */
X509 *vendor_trust_get0_signer(const struct vendor_trust *t, const uint8_t x5t[32]);

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
	uint8_t jwk_xy[2 * 48]; /* JWK x || y */
	size_t jwk_xy_len;
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

struct batch_descriptor {
	int version;
	char vendor[MAX_NAME_LEN + 1];
	char batch_id[MAX_NAME_LEN + 1];
	char part_number[MAX_TEXT_FIELD_LEN + 1];
	long long count;
	char claim_sha256[65];
	char created_at[MAX_TIMESTAMP_LEN + 1];
	struct jws_header hdr;
	char *prot_b64, *payload_b64, *sig_b64;
};

/* Parses batch.json (a flattened JWS and its payload); no signature check. */
int batch_descriptor_parse(
    const uint8_t *p, size_t n, struct batch_descriptor **out, struct devid_error *e);
/* The same over an already parsed JSON object (borrowed). */
int batch_descriptor_from_json(
    const json_t *obj, struct batch_descriptor **out, struct devid_error *e);
/* The descriptor's signer is trusted and its signature verifies. */
int batch_descriptor_verify(
    const struct batch_descriptor *d, const struct vendor_trust *t, struct devid_error *e);
void batch_descriptor_free(struct batch_descriptor *d);

/* One rejected entry. */
struct manifest_reject {
	size_t index; /* position in the manifest array */
	char unique_id[MAX_SERIAL_LEN + 1]; /* "" if it could not be read */
	char message[DEVID_ERROR_MAX];
};

struct manifest_report {
	size_t total; /* entries in the manifest */
	size_t accepted; /* entries that passed every check */
	size_t rejected;
	struct manifest_reject *rejects; /* the first MAX_REPORT_ERRORS, in index order */
	size_t nrejects;
	char batch_error[DEVID_ERROR_MAX]; /* a batch-level rule, "" if none */
};

void manifest_report_release(struct manifest_report *r);
/*
 * The report as JSON: {"total","accepted","rejected","batchError","errors":[…]}; NULL when
 * out of memory.
 */
json_t *manifest_report_json(const struct manifest_report *r);

struct manifest {
	struct manifest_entry **entries; /* NULL where an entry did not parse */
	size_t n;
};

/*
 * Parses a manifest (a JSON array of entries). Entries that do not parse (including
 * elements that are not objects) are recorded in r and left NULL; a document that is not a
 * non-empty JSON array fails as a whole. Entries are parsed by nthreads threads (>= 1; the
 * variants without it use one per online CPU); the result does not depend on the number.
 */
int manifest_parse(const uint8_t *p, size_t n, struct manifest **out, struct manifest_report *r,
    struct devid_error *e);
int manifest_parse_mt(const uint8_t *p, size_t n, int nthreads, struct manifest **out,
    struct manifest_report *r, struct devid_error *e);
/*
 * The same over an already parsed document (borrowed; only read, from several threads, so
 * nobody may change it meanwhile).
 */
int manifest_from_json(
    const json_t *root, struct manifest **out, struct manifest_report *r, struct devid_error *e);
int manifest_from_json_mt(const json_t *root, int nthreads, struct manifest **out,
    struct manifest_report *r, struct devid_error *e);
void manifest_free(struct manifest *m);

/*
 * Runs every check of the batch with nthreads threads (>= 1). d may be NULL for a direct
 * import: then batch_id, if not NULL, is the id groupId must equal where present. Returns 0
 * when the whole batch is acceptable; otherwise DEVID_EINVAL/DEVID_ECRYPTO with r filled.
 * The verdicts and messages are those of manifest_entry_verify() per entry; how they are
 * reached faster is in docs/formats.md ("How a batch is checked fast").
 */
int manifest_check_batch(const struct manifest *m, const struct batch_descriptor *d,
    const char *batch_id, const struct vendor_trust *t, int nthreads, struct manifest_report *r);

#endif
