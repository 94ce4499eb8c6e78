/* SPDX-License-Identifier: Apache-2.0 */
/*
 * internal.h - what the files of src/service share and callers do not see.
 */
#ifndef DEVID_SERVICE_INTERNAL_H
#define DEVID_SERVICE_INTERNAL_H

#include "service/service.h"

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
 * Appends the certificates of a vendor's trust (vendor_id 0: every vendor's) to roots and
 * signers (either may be NULL: not wanted). The caller owns both stacks. With signers, only
 * the trust in force (a removed signer and its root admit no new manifest); without, the
 * roots of removed trust too, so the birth certificates of batches it admitted still verify.
 */
int service_trust_certs(struct db *db, int64_t vendor_id, STACK_OF(X509) *roots,
    STACK_OF(X509) *signers, struct devid_error *e);

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

#endif
