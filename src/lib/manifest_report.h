/* SPDX-License-Identifier: Apache-2.0 */
/*
 * manifest_report.h - what a check of a manifest tells its sender: how many entries there
 * were, how many passed, and why each of the first MAX_REPORT_ERRORS rejected ones failed
 * (which entry, which rule), or which batch-level rule failed.
 */
#ifndef DEVID_MANIFEST_REPORT_H
#define DEVID_MANIFEST_REPORT_H

#include <stddef.h>

#include <jansson.h>

#include "error.h"
#include "limits.h"

/* One rejected entry. */
struct manifest_reject {
	size_t index; /* position in the manifest array */
	size_t page; /* the page of an upload that carried it (1, 2, ...); 0: not paged */
	char unique_id[MAX_SERIAL_LEN + 1]; /* "" if it could not be read */
	char message[DEVID_ERROR_MAX];
};

/* Caller-owned; starts zeroed (memset), released with manifest_report_release. */
struct manifest_report {
	size_t total; /* entries in the manifest */
	size_t accepted; /* entries that passed every check */
	size_t rejected;
	struct manifest_reject *rejects; /* the first MAX_REPORT_ERRORS, in index order */
	size_t nrejects;
	char batch_error[DEVID_ERROR_MAX]; /* a batch-level rule, "" if none */
};

/* Frees what the report holds and zeroes it; it may be used again. */
void manifest_report_release(struct manifest_report *r);
/*
 * Counts a rejected entry and keeps it (uid may be NULL; one that does not fit is left out
 * rather than cut) while fewer than MAX_REPORT_ERRORS are kept. Out of memory, it is only
 * counted.
 */
void manifest_report_reject(
    struct manifest_report *r, size_t index, const char *uid, const char *msg);
/*
 * Adds src's counts and rejections (while fewer than MAX_REPORT_ERRORS are kept) to dst, and
 * its batch error when dst has none: the report of a manifest checked in parts.
 */
void manifest_report_merge(struct manifest_report *dst, const struct manifest_report *src);
/* Puts the kept rejections in index order. */
void manifest_report_sort(struct manifest_report *r);
/*
 * The report as JSON: {"total","accepted","rejected","batchError","errors":[{"index",
 * "uniqueId","message"[,"page"]}]}; NULL when out of memory.
 */
json_t *manifest_report_json(const struct manifest_report *r);

#endif
