/* SPDX-License-Identifier: Apache-2.0 */
/*
 * factory.h - the chip vendor's offline tools: vendor PKI, minting reels, QR labels, and
 * checking a reel with the service's own code (src/lib/manifest_check.h).
 */
#ifndef DEVID_FACTORY_H
#define DEVID_FACTORY_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/error.h"
#include "lib/manifest_check.h"

/* The files of a vendor directory. */
#define VENDOR_ROOT_PEM "root.pem"
#define VENDOR_ROOT_KEY "root.key"
#define VENDOR_ISSUING_PEM "issuing.pem"
#define VENDOR_ISSUING_KEY "issuing.key"
#define VENDOR_SIGNER_PEM "signer.pem"
#define VENDOR_SIGNER_KEY "signer.key"

/* The notAfter of birth certificates and vendor CAs (802.1AR: no well-defined expiry). */
#define VENDOR_NOT_AFTER "99991231235959Z"

struct vendor_pki {
	char name[MAX_NAME_LEN + 1]; /* O= of the vendor certificates */
	X509 *root, *issuing, *signer;
	EVP_PKEY *issuing_key, *signer_key;
};

/*
 * Creates DIR (if needed) with a root CA, an issuing CA and a manifest signer for vendor
 * `name` ([A-Z0-9.-]{1,64}). Refuses to overwrite existing keys.
 */
int vendor_init(const char *dir, const char *name, struct devid_error *e);
int vendor_pki_load(const char *dir, struct vendor_pki *pki, struct devid_error *e);
void vendor_pki_release(struct vendor_pki *pki);

struct mint_opts {
	const char *dir; /* vendor directory */
	const char *batch; /* batch id, [A-Z0-9.-]{1,64} */
	const char *out; /* reel directory to create */
	const char *part_number; /* NULL: the default part */
	size_t count; /* chips, 1..MAX_BATCH_COUNT */
	size_t keep_keys; /* chips whose key is written to OUT/chips */
	int threads; /* >= 1 */
	bool xml; /* manifest.xml (docs/xml-manifest.md) instead of manifest.json */
	/* called from the writing thread after each block of chips; may be NULL */
	void (*progress)(size_t done, size_t total, void *arg);
	void *progress_arg;
};

struct mint_result {
	char claim[MAX_CLAIM_TEXT_LEN + 1];
	size_t count; /* entries written (vendor_mint_ek) */
	double seconds; /* wall time of minting, file writing included */
};

/*
 * Mints a reel into o->out (which must not exist or be empty): manifest.json, batch.json,
 * claim.txt, claim.png and chips/<udid>.pem/.key for the first keep_keys chips.
 */
int vendor_mint(const struct mint_opts *o, struct mint_result *res, struct devid_error *e);

struct mint_ek_opts {
	const char *dir; /* vendor directory: its manifest signer signs the reel */
	const char *batch; /* batch id, [A-Z0-9.-]{1,64} */
	const char *out; /* reel directory to create */
	const char *part_number; /* NULL: "TPM2" */
	const char *chain; /* PEM file: the EK CA, then any cross-certificates */
	const char *const *inputs; /* EK certificate files (PEM or DER) or directories of them */
	size_t ninputs;
	bool xml; /* manifest.xml instead of manifest.json */
};

/*
 * Mints a reel of TPMs from their existing EK certificates (docs/tpm.md): one TPM entry per
 * certificate (payload "kind": "tpm", the EK as its JWK, x5c = [EK certificate, the --chain
 * certificates...], uniqueId the certificate's serial in lowercase hex), signed by the
 * vendor's manifest signer, plus batch.json, claim.txt and claim.png. A directory input gives
 * every regular file in it, by name. Refuses a certificate that breaks the TCG EK profile or is
 * not issued by a certificate of the chain, naming its file; the reel is then not written.
 */
int vendor_mint_ek(const struct mint_ek_opts *o, struct mint_result *res, struct devid_error *e);

/* Writes text as a QR code PNG (error correction M, 4-module quiet zone). */
int label_write_png(const char *text, const char *path, struct devid_error *e);

struct reel_report {
	bool checked; /* the batch's checks ran; the report below is complete */
	struct manifest_report manifest;
	char claim_error[DEVID_ERROR_MAX]; /* "" when claim.txt matches the descriptor */
	char vendor[MAX_NAME_LEN + 1], batch[MAX_NAME_LEN + 1];
};

/*
 * Checks the reel in dir against the roots and signers in the given PEM files, exactly as
 * ingest does, plus claim.txt against claimSha256. Returns 0 when the reel is acceptable,
 * DEVID_EINVAL/DEVID_ECRYPTO when rejected (see r), other codes when it could not be read (e).
 * progress, when not NULL, is told each stage as it starts ("checking 10000 entries ...").
 */
int reel_verify(const char *dir, const char *root_pem, const char *signer_pem, int threads,
    void (*progress)(const char *stage), struct reel_report *r, struct devid_error *e);
void reel_report_release(struct reel_report *r);

/*
 * Converts the manifest file in into out (created; it must not exist): to the XML form when
 * xml (docs/xml-manifest.md), else to the JSON form, laid out as mint writes it. A page of
 * entries at a time, so a reel of any size fits. An entry without an XML form, or a document
 * that is not a manifest, fails naming it; out is then removed.
 */
int manifest_file_convert(const char *in, const char *out, bool xml, struct devid_error *e);
/*
 * The manifest of the reel in dir: dir/manifest.json, or dir/manifest.xml (*xml true) when
 * only that exists. Both at once fail: which one was meant cannot be told.
 */
int reel_manifest_path(const char *dir, char *path, size_t len, bool *xml, struct devid_error *e);

#endif
