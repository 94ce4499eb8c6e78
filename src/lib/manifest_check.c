/* SPDX-License-Identifier: Apache-2.0 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest_check.h"
#include "workpool.h"
#include "banned.h"

struct check_job {
	const struct manifest *m;
	const struct vendor_trust *t;
	const char *batch_id;
	bool require_group; /* a vendor batch: every entry names it */
	struct batchcheck *fast; /* NULL: every entry takes the original checks */
	atomic_size_t next;
	char **msgs; /* per entry, NULL when accepted */
	atomic_bool oom;
};

static void
set_msg(struct check_job *j, size_t i, const char *msg)
{
	if ((j->msgs[i] = strdup(msg)) == NULL)
		atomic_store(&j->oom, true);
}

static void *
check_worker(void *arg)
{
	struct check_job *j = arg;
	struct batchcheck_worker *w = j->fast != NULL ? batchcheck_worker_new(j->fast) : NULL;
	struct devid_error e;
	char msg[DEVID_ERROR_MAX];
	size_t i;

	while ((i = atomic_fetch_add(&j->next, 1)) < j->m->n) {
		const struct manifest_entry *me = j->m->entries[i];

		if (me == NULL)
			continue;
		msg[0] = '\0';
		devid_error_clear(&e);
		if (manifest_entry_check(me, j->t, w, &e) != 0)
			snprintf(msg, sizeof(msg), "entry %zu: %s", j->m->base + i, e.msg);
		else if (j->batch_id != NULL && me->group_id[0] == '\0' && j->require_group)
			snprintf(msg, sizeof(msg),
			    "entry %zu: groupId is missing; the batch id is \"%s\"", j->m->base + i,
			    j->batch_id);
		else if (j->batch_id != NULL && me->group_id[0] != '\0' &&
		    strcmp(me->group_id, j->batch_id) != 0)
			snprintf(msg, sizeof(msg),
			    "entry %zu: groupId \"%s\" differs from the batch id \"%s\"",
			    j->m->base + i, me->group_id, j->batch_id);
		if (msg[0] != '\0')
			set_msg(j, i, msg);
	}
	batchcheck_worker_free(w);
	return NULL;
}

/* An entry's chip identifier for the duplicate checks. */
struct chip_ref {
	const char *key;
	size_t index;
};

/* By key, then by position: the first of equal keys is the one in the manifest first. */
static int
chip_ref_cmp(const void *a, const void *b)
{
	const struct chip_ref *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	if (c != 0)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* Rejects every entry whose chip (udid or uniqueId) appeared earlier in the batch. */
static void
check_duplicates(struct check_job *j, bool by_udid, const char *what)
{
	const struct manifest *m = j->m;
	struct chip_ref *v;
	char msg[DEVID_ERROR_MAX];
	size_t n = 0;

	if ((v = calloc(m->n + 1, sizeof(*v))) == NULL) {
		atomic_store(&j->oom, true);
		return;
	}
	for (size_t i = 0; i < m->n; i++)
		if (m->entries[i] != NULL) {
			v[n].key = by_udid ? m->entries[i]->udid : m->entries[i]->unique_id;
			v[n++].index = i;
		}
	qsort(v, n, sizeof(*v), chip_ref_cmp);
	for (size_t i = 1; i < n; i++) {
		size_t k = v[i].index;

		if (strcmp(v[i - 1].key, v[i].key) == 0 && j->msgs[k] == NULL) {
			snprintf(msg, sizeof(msg),
			    "entry %zu: %s appears more than once in the batch", m->base + k, what);
			set_msg(j, k, msg);
		}
	}
	free(v);
}

/*
 * Checks every entry of j->m with nthreads threads and the duplicates among them; r gets
 * m's counts and rejections in index order. 0, or DEVID_ENOMEM with r->batch_error set.
 */
static int
check_run(struct check_job *j, int nthreads, struct manifest_report *r)
{
	const struct manifest *m = j->m;
	int rc = DEVID_ENOMEM;

	atomic_init(&j->next, 0);
	atomic_init(&j->oom, false);
	if ((j->msgs = calloc(m->n + 1, sizeof(*j->msgs))) == NULL) {
		snprintf(r->batch_error, sizeof(r->batch_error), "out of memory");
		return rc;
	}
	/* without it every entry is checked the original way, only slower */
	j->fast = batchcheck_new(vendor_trust_get0_roots(j->t));
	r->total = m->n;
	workpool_run(nthreads < 1 ? 1 : nthreads, check_worker, j);
	check_duplicates(j, true, "the chip key (UDID)");
	check_duplicates(j, false, "the uniqueId");
	if (atomic_load(&j->oom)) {
		snprintf(r->batch_error, sizeof(r->batch_error), "out of memory");
		goto out;
	}
	r->accepted = 0;
	for (size_t i = 0; i < m->n; i++) {
		if (m->entries[i] == NULL)
			continue;
		if (j->msgs[i] != NULL)
			manifest_report_reject(
			    r, m->base + i, m->entries[i]->unique_id, j->msgs[i]);
		else
			r->accepted++;
	}
	manifest_report_sort(r);
	rc = 0;
out:
	for (size_t i = 0; i < m->n; i++)
		free(j->msgs[i]);
	free(j->msgs);
	j->msgs = NULL;
	batchcheck_free(j->fast);
	j->fast = NULL;
	return rc;
}

int
manifest_check_entries(const struct manifest *m, const char *batch_id, bool require_group,
    const struct vendor_trust *t, int nthreads, struct manifest_report *r)
{
	struct check_job j = {.m = m, .t = t, .batch_id = batch_id, .require_group = require_group};
	int rc;

	if ((rc = check_run(&j, nthreads, r)) != 0)
		return rc;
	return r->rejected == 0 && r->accepted == m->n ? 0 : DEVID_EINVAL;
}

int
manifest_check_batch(const struct manifest *m, const struct batch_descriptor *d,
    const char *batch_id, const struct vendor_trust *t, int nthreads, struct manifest_report *r)
{
	struct check_job j = {.m = m,
	    .t = t,
	    .batch_id = d != NULL ? d->batch_id : batch_id,
	    .require_group = d != NULL};
	struct devid_error e;
	int rc;

	devid_error_clear(&e);
	if (d != NULL && batch_descriptor_verify(d, t, &e) != 0)
		snprintf(r->batch_error, sizeof(r->batch_error), "%s", e.msg);
	if ((rc = check_run(&j, nthreads, r)) != 0)
		return rc;
	if (d != NULL && r->batch_error[0] == '\0' && (size_t)d->count != m->n)
		snprintf(r->batch_error, sizeof(r->batch_error),
		    "batch descriptor: count is %lld but the manifest has %zu entries", d->count,
		    m->n);
	if (r->batch_error[0] == '\0' && r->rejected == 0 && r->accepted == m->n)
		return 0;
	return DEVID_EINVAL;
}
