/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest_report.h"
#include "banned.h"

void
manifest_report_release(struct manifest_report *r)
{
	free(r->rejects);
	memset(r, 0, sizeof(*r));
}

void
manifest_report_reject(struct manifest_report *r, size_t index, const char *uid, const char *msg)
{
	struct manifest_reject *x;

	r->rejected++;
	if (r->nrejects >= MAX_REPORT_ERRORS)
		return;
	if (r->rejects == NULL &&
	    (r->rejects = calloc(MAX_REPORT_ERRORS, sizeof(*r->rejects))) == NULL)
		return;
	x = &r->rejects[r->nrejects++];
	memset(x, 0, sizeof(*x));
	x->index = index;
	if (uid != NULL && strlen(uid) < sizeof(x->unique_id))
		memcpy(x->unique_id, uid, strlen(uid) + 1);
	snprintf(x->message, sizeof(x->message), "%s", msg);
}

void
manifest_report_merge(struct manifest_report *dst, const struct manifest_report *src)
{
	dst->total += src->total;
	dst->accepted += src->accepted;
	for (size_t i = 0; i < src->nrejects; i++) {
		size_t kept = dst->nrejects;

		manifest_report_reject(
		    dst, src->rejects[i].index, src->rejects[i].unique_id, src->rejects[i].message);
		if (dst->nrejects > kept)
			dst->rejects[kept].page = src->rejects[i].page;
	}
	/* the rejections counted but not kept */
	dst->rejected += src->rejected - src->nrejects;
	if (dst->batch_error[0] == '\0')
		snprintf(dst->batch_error, sizeof(dst->batch_error), "%s", src->batch_error);
}

static int
reject_cmp(const void *a, const void *b)
{
	const struct manifest_reject *x = a, *y = b;

	return x->index < y->index ? -1 : x->index > y->index;
}

void
manifest_report_sort(struct manifest_report *r)
{
	if (r->rejects != NULL)
		qsort(r->rejects, r->nrejects, sizeof(*r->rejects), reject_cmp);
}

json_t *
manifest_report_json(const struct manifest_report *r)
{
	json_t *errs = json_array(), *o;

	for (size_t i = 0; errs != NULL && i < r->nrejects; i++) {
		o = json_pack("{s:I, s:s, s:s}", "index", (json_int_t)r->rejects[i].index,
		    "uniqueId", r->rejects[i].unique_id, "message", r->rejects[i].message);
		if (o != NULL && r->rejects[i].page > 0 &&
		    json_object_set_new(o, "page", json_integer((json_int_t)r->rejects[i].page)) !=
			0) {
			json_decref(o);
			o = NULL;
		}
		if (o == NULL || json_array_append_new(errs, o) != 0) {
			json_decref(errs);
			return NULL;
		}
	}
	return json_pack("{s:I, s:I, s:I, s:s?, s:o}", "total", (json_int_t)r->total, "accepted",
	    (json_int_t)r->accepted, "rejected", (json_int_t)r->rejected, "batchError",
	    r->batch_error[0] ? r->batch_error : NULL, "errors", errs);
}
