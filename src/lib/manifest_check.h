/* SPDX-License-Identifier: Apache-2.0 */
/*
 * manifest_check.h - the rules a manifest must pass before devid accepts any of it.
 *
 * Each entry passes manifest_entry_check (signer, signature, chain, key); its groupId equals
 * the batch id (a vendor's batch: every entry names it; a direct import: where present); no
 * chip (UDID, or uniqueId) appears twice. A whole batch also has a descriptor whose signer is
 * trusted and whose count equals the number of entries. How the checks are reached fast is
 * in docs/formats.md ("How a batch is checked fast"); the verdicts and messages are those of
 * manifest_entry_verify() per entry.
 */
#ifndef DEVID_MANIFEST_CHECK_H
#define DEVID_MANIFEST_CHECK_H

#include <stdbool.h>

#include "batch_descriptor.h"
#include "manifest.h"
#include "manifest_report.h"
#include "vendor_trust.h"

/*
 * Runs every check of the batch with nthreads threads (>= 1). d may be NULL for a direct
 * import: then batch_id, if not NULL, is the id groupId must equal where present. Returns 0
 * when the whole batch is acceptable; otherwise DEVID_EINVAL/DEVID_ECRYPTO with r filled.
 */
int manifest_check_batch(const struct manifest *m, const struct batch_descriptor *d,
    const char *batch_id, const struct vendor_trust *t, int nthreads, struct manifest_report *r);

/*
 * The rules of the entries of m alone (a page of a larger manifest, whose other pages are
 * checked on their own): each entry's checks, groupId against batch_id (when not NULL;
 * required in every entry with require_group), and no chip twice within m. r counts m's
 * entries (total, accepted) and reports by place in the whole (m->base + i). 0 when every
 * entry passes; DEVID_EINVAL with r filled, or DEVID_ENOMEM.
 */
int manifest_check_entries(const struct manifest *m, const char *batch_id, bool require_group,
    const struct vendor_trust *t, int nthreads, struct manifest_report *r);

#endif
