/* SPDX-License-Identifier: Apache-2.0 */
/*
 * internal.h - what the files of src/service share and callers do not see.
 */
#ifndef DEVID_SERVICE_INTERNAL_H
#define DEVID_SERVICE_INTERNAL_H

#include "lib/x509.h"
#include "service/service.h"

/* An OEM's admin or operator: who reads the tenant's batches, devices and suspicions. */
bool is_oem_reader(const struct principal *p);

/*
 * The caller's own batch: DEVID_ENOTFOUND for a missing batch and for another tenant's alike
 * (no oracle). The caller must be an OEM reader (admin or operator), or an admin with
 * admin_only; DEVID_EAUTH otherwise, naming what is needed.
 */
int service_own_batch(struct db *db, const struct principal *p, bool admin_only, const char *vendor,
    const char *batch, struct batch_rec *b, struct devid_error *e);

/*
 * Writes delivery jobs inside the caller's transaction: for every connector of the tenant
 * (only the auto ones with auto_only), one job for a batch (batch_id) or a device (udid).
 */
int provision_enqueue(struct db *db, int64_t tenant_id, bool auto_only, bool remove,
    int64_t batch_id, const char *udid, int64_t total, struct devid_error *e);

/* The same for a device revoke: remove jobs that say so (struct delivery.revoke). */
int provision_enqueue_revoke(
    struct db *db, int64_t tenant_id, const char *udid, struct devid_error *e);

/*
 * Revokes device d of the tenant inside the caller's transaction, as actor, with an RFC 5280
 * CRLReason code: the device and its certificates, the removals queued, the audit record.
 * The caller has checked that d is not revoked already.
 */
int device_revoke_tx(struct db *db, int64_t tenant_id, const char *actor,
    const struct device_rec *d, int code, int64_t now, struct devid_error *e);

/*
 * Appends the certificates of a vendor's trust (vendor_id 0: every vendor's) to roots and
 * signers (either may be NULL: not wanted). The caller owns both stacks. With signers, only
 * the trust in force (a removed signer and its root admit no new manifest); without, the
 * roots of removed trust too, so the birth certificates of batches it admitted still verify.
 */
int service_trust_certs(struct db *db, int64_t vendor_id, STACK_OF(X509) *roots,
    STACK_OF(X509) *signers, struct devid_error *e);

/* --- clone detection (clone.c) ---------------------------------------------------------- */

/* The tenant's clone policy, its defaults where it set none. */
int clone_policy_load(
    struct db *db, int64_t tenant_id, struct clone_policy *p, struct devid_error *e);
/*
 * An EST enrollment of the tenant's device udid from peer ("ADDR:PORT", NULL: not from a
 * network) with client, the certificate it authenticated with, inside the caller's
 * transaction (the issuance's): the sighting, the three rules (the enrollment rate against
 * half of validity_days), and a suspicion's consequences. *quarantined when the policy
 * revoked the device for it: the caller then commits without issuing.
 */
int clone_observe_est(struct service *svc, struct db *db, int64_t tenant_id, const char *udid,
    const char *peer, X509 *client, int64_t validity_days, bool *quarantined,
    struct devid_error *e);
/* Adds "suspectedClone" and "suspicions" (the latest first page) to a device's JSON. */
int clone_device_detail(
    struct db *db, int64_t tenant_id, int64_t device_id, json_t *j, struct devid_error *e);
/* A notice's suspicion as a webhook sends it: {"rule","at","quarantined","detail"}. */
int clone_notice_json(struct db *db, int64_t suspicion_id, json_t **out, struct devid_error *e);

/* --- chain of custody (custody.c, docs/custody.md) ------------------------------------- */

/* The owner of a batch in a custody record: a tenant, or CUSTODY_VENDOR (with the vendor). */
#define CUSTODY_VENDOR 0

/* One change of owner of a batch, as custody_append records it. */
struct custody_change {
	const char *event; /* "publish", "import", "claim", "transfer", "release" */
	int64_t batch_id;
	const char *vendor, *batch; /* the batch's names in the API */
	int64_t count;
	const char *descriptor_sha256; /* a publish's; NULL otherwise */
	/* the tenant giving the batch up (its key signs too, where devid holds the key the
	 * chain names for it) and the one taking it; tenant ids or CUSTODY_VENDOR */
	int64_t prev_owner, new_owner;
};

/*
 * Appends the signed ownership record of change c to its batch's chain, inside the caller's
 * transaction (so a change that rolls back leaves none): its previousOwner is the newOwner
 * of the record before. Nothing when svc has no custody key.
 */
int custody_append(
    struct service *svc, struct db *db, const struct custody_change *c, struct devid_error *e);

/*
 * A tenant's operational CA key as its custody owner key: *pub (a new reference; NULL when
 * the tenant has no CA or its key is not P-256) and *priv (borrowed from the CA cache; NULL
 * when this server cannot open the key). 0 or a store error.
 */
int service_ca_owner_key(struct service *svc, struct db *db, int64_t tenant_id, EVP_PKEY **pub,
    EVP_PKEY **priv, struct devid_error *e);

/* --- issue 10 (admin.c) ----------------------------------------------------------------- */

/*
 * Whether a devid vendor (a vendor tenant's own trust, removed signers included) has this
 * signer (x5t#S256) or, roots not NULL, one of these roots: 1 with its name in vendor, 0 if
 * none, or a negative DEVID_E* code. Such chips are bound only by claim code, never imported.
 */
int service_vendor_claims(struct db *db, const uint8_t signer_x5t[32], STACK_OF(X509) *roots,
    char vendor[MAX_NAME_LEN + 1], struct devid_error *e);

/* The subject of the first certificate of a PEM text, RFC 2253; "" if it does not read. */
void service_signer_subject(const char *pem, char *out, size_t len);

/* The trust that admitted a batch, as GET /api/v1/trust lists it; JSON null when unknown. */
json_t *service_batch_signer_json(struct db *db, int64_t batch_id);

/* Records a token's use unless one was recorded within the last minute (best effort). */
void service_token_touch(struct db *db, int64_t id, int64_t last_used_at, int64_t now);

/* Wall-clock milliseconds: rate-limit buckets are shared by servers, so not CLOCK_MONOTONIC. */
int64_t service_now_ms(void);

/*
 * Takes one action from each bucket of keys[0..n) under rl, all or none, in a transaction
 * of its own (so a claim that then fails still counts, and one refused here changes
 * nothing). *wait_ms is 0 when taken; otherwise the milliseconds until the refusing bucket
 * (keys[*refused]) allows one more.
 */
int service_rate_take(struct db *db, const struct rate_limit *rl, const char *const *keys, size_t n,
    int64_t now_ms, int64_t *wait_ms, size_t *refused, struct devid_error *e);

/* --- ingest: trust and counts (ingest.c), the upload protocol (upload.c) -------------- */

/*
 * The trusted roots and signers in force of a vendor tenant; NULL with e set otherwise
 * (DEVID_ECRYPTO when it trusts no signer).
 */
struct vendor_trust *ingest_vendor_trust(struct db *db, int64_t vendor_id, struct devid_error *e);
/*
 * Finds the trust whose signer is x5t among tl: 0 with *found set when it is in force;
 * DEVID_ECRYPTO naming the signer when it was removed, or when none has it and required
 * (else 0 with *found NULL).
 */
int ingest_signer_trust(const struct trust_rec *tl, size_t n, const uint8_t x5t[32], bool required,
    const struct trust_rec **found, struct devid_error *e);
/*
 * The trust a direct import is checked against: the importing tenant's own trust in force
 * whose signer made the first readable entry of m (entries of other signers then fail).
 * DEVID_EAUTH when that signer or its root is a devid vendor's (bound only by claim code).
 * *vt: that one root and signer (vendor_trust_free); *trust_id: its record.
 */
int ingest_import_trust(struct db *db, const struct principal *p, const struct manifest *m,
    struct vendor_trust **vt, int64_t *trust_id, struct devid_error *e);
/* The trust of record trust_id alone; DEVID_ECRYPTO naming the signer when it was removed. */
int ingest_record_trust(
    struct db *db, int64_t trust_id, struct vendor_trust **vt, struct devid_error *e);
/*
 * Counts a publish, import, upload page or commit that ended with rc: a stored batch and its
 * entries, or the refusal under the rule of the stage that refused it and the entries
 * refused one by one. A page or an opening that succeeded is not counted (commit is).
 */
void ingest_count(struct service_metrics *sm, enum ingest_source src, int rc, enum ingest_rule rule,
    const struct manifest_report *r);

/*
 * One upload being worked on by one request: its record (as read at the start), the trust
 * its entries are checked against, and the stage that refused, when one did. Zero it and set
 * svc and p; release it with upload_job_release.
 */
struct upload_job {
	struct service *svc;
	const struct principal *p;
	struct upload_rec u;
	struct vendor_trust *t; /* NULL until known: an import's first page decides it */
	int64_t trust_id; /* the trust record that admits the entries; 0 until known */
	enum ingest_rule rule;
};
/* service_upload_open's work, into j (r->batch_error for a refused descriptor). */
int upload_job_open(struct upload_job *j, const struct upload_request *req,
    struct manifest_report *r, struct devid_error *e);
/*
 * The two halves of service_upload_page for page `page` (m): its checks (an import's first
 * page decides its trust here), and then storing its devices under the upload's batch with
 * the record of the page (whose body has SHA-256 sha256). Pages of one server are stored one
 * at a time. r is the page's report; a refusal by the database adds its entries to it, and
 * the rule it broke to *rule. Once a page is checked, storing it touches nothing of j that
 * checking the next page changes: the two may run on two threads.
 */
int upload_job_check(struct upload_job *j, const struct manifest *m, int64_t page,
    struct manifest_report *r, struct devid_error *e);
int upload_job_store(struct upload_job *j, const struct manifest *m, int64_t page,
    const char *sha256, struct manifest_report *r, bool *replayed, enum ingest_rule *rule,
    struct devid_error *e);
/* service_upload_commit's work on j. */
int upload_job_commit(struct upload_job *j, struct manifest_report *r, struct devid_error *e);
/* Deletes j's upload and everything it stored (best effort: what is left, the purge takes). */
void upload_job_abort(struct upload_job *j);
void upload_job_release(struct upload_job *j);

/* --- operational certificates: what simpleenroll and a TPM's enrollment share (ca.c) ---- */

struct ca_entry;

/* What the checks found out about the requesting device. */
struct est_ctx {
	char udid[UDID_HEX_LEN + 1];
	struct est_device dev;
	struct tenant owner;
	struct ca_rec ca;
	struct ca_entry *entry; /* est_ca_open's: the CA that issues, its key opened */
	enum est_reason refusal; /* why the enrollment was refused, once it is */
	/* the certificate the device authenticated with and its peer ("ADDR:PORT"), both
	 * borrowed: the issuance is a sighting (clone_observe_est); client NULL: none */
	X509 *client;
	const char *peer;
};
void est_ctx_release(struct est_ctx *c);

/*
 * The device of that UDID, its owner and the owner's CA record into c: DEVID_EAUTH (with
 * c->refusal) when it is unknown ("<what> is not a device known to devid"), not claimed or
 * claimed by another tenant than label (NULL: any); DEVID_ECONFLICT when the owner has no CA.
 * Revocation is the caller's to check (c->dev.revoked).
 */
int est_device_by_udid(struct db *db, const char *udid, const char *label, const char *what,
    struct est_ctx *c, struct devid_error *e);
/* Opens c's CA (c->entry); DEVID_EINTERNAL when it cannot: the server's fault. */
int est_ca_open(struct service *svc, struct db *db, struct est_ctx *c, struct devid_error *e);
/*
 * Issues the LDevID of devid's profile (service_est_enroll's, service.h) to the CSR's key for
 * c's device, and stores it with the quota and the audit record of op in one transaction;
 * logs the issuance. *issued is new, its key undecoded as service_est_enroll's.
 */
int est_issue(struct service *svc, struct db *db, enum est_op op, struct est_ctx *c, X509_REQ *csr,
    X509 **issued, struct devid_error *e);

#endif
