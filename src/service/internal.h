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

/*
 * Appends the certificates of a vendor's trust (vendor_id 0: every vendor's) to roots and
 * signers (either may be NULL: not wanted). The caller owns both stacks.
 */
int service_trust_certs(struct db *db, int64_t vendor_id, STACK_OF(X509) *roots,
    STACK_OF(X509) *signers, struct devid_error *e);

#endif
