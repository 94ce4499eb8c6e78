/* SPDX-License-Identifier: Apache-2.0 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastjson.h"
#include "json.h"
#include "jsonscan.h"
#include "limits.h"
#include "manifest.h"
#include "workpool.h"
#include "banned.h"

/* Entries a parse thread is worth starting for. */
#define PARSE_ENTRIES_PER_THREAD 32
/* Entries from which a manifest is freed by several threads, and entries per grab. */
#define FREE_PARALLEL_MIN 4096
#define FREE_CHUNK 64

struct free_job {
	struct manifest *m;
	atomic_size_t next;
};

static void *
manifest_free_worker(void *arg)
{
	struct free_job *j = arg;
	size_t i;

	while ((i = atomic_fetch_add(&j->next, FREE_CHUNK)) < j->m->n)
		for (size_t k = i; k < i + FREE_CHUNK && k < j->m->n; k++)
			manifest_entry_free(j->m->entries[k]);
	return NULL;
}

void
manifest_free(struct manifest *m)
{
	struct free_job j = {.m = m};

	if (m == NULL)
		return;
	/* a certificate is dozens of small allocations: a large manifest is freed by all CPUs */
	atomic_init(&j.next, 0);
	workpool_run(m->n >= FREE_PARALLEL_MIN ? workpool_cpus() : 1, manifest_free_worker, &j);
	free(m->entries);
	free(m);
}

/* An entry that did not parse: what manifest_report_reject() gets for it. */
struct parse_fail {
	bool has_uid;
	char uid[MAX_SERIAL_LEN + 1];
	char msg[DEVID_ERROR_MAX];
};

struct parse_job {
	struct manifest *m;
	const json_t *root; /* the elements, already parsed; or */
	const uint8_t *text; /* the text, whose elements are at spans */
	const struct manifest_span *spans;
	struct x5c_cache *cache;
	struct parse_fail **fails; /* per entry, NULL when it parsed */
	atomic_size_t next;
	atomic_bool not_json; /* an element is not JSON: the whole document decides */
	atomic_bool oom;
};

/* Records what the original sequential loop passed to manifest_report_reject() for v. */
static struct parse_fail *
parse_fail_new(const json_t *v, const char *msg)
{
	struct parse_fail *f = calloc(1, sizeof(*f));
	json_t *h = json_object_get(v, "header");
	const char *uid = NULL;

	if (f == NULL)
		return NULL;
	if (json_is_object(h) && json_is_string(json_object_get(h, "uniqueId")))
		uid = json_string_value(json_object_get(h, "uniqueId"));
	if (uid != NULL && strlen(uid) < sizeof(f->uid)) {
		f->has_uid = true;
		memcpy(f->uid, uid, strlen(uid) + 1);
	}
	snprintf(f->msg, sizeof(f->msg), "%s", msg);
	return f;
}

static void *
parse_worker(void *arg)
{
	struct parse_job *j = arg;
	struct manifest_entry_ctx c = {.cache = j->cache};
	struct devid_error ee;
	json_t *own;
	const json_t *v;
	size_t i;

	while ((i = atomic_fetch_add(&j->next, 1)) < j->m->n && !atomic_load(&j->not_json)) {
		own = NULL;
		/* an element too long to be an entry is refused unread (MAX_STREAM_ELEMENT: an
		 * entry's compact limit, with room for whitespace) */
		if (j->spans != NULL && j->spans[i].len > MAX_STREAM_ELEMENT) {
			snprintf(ee.msg, sizeof(ee.msg),
			    "entry %zu: %zu bytes, more than any entry (limit %d)", j->m->base + i,
			    j->spans[i].len, MAX_STREAM_ELEMENT);
			if ((j->fails[i] = parse_fail_new(NULL, ee.msg)) == NULL)
				atomic_store(&j->oom, true);
			continue;
		}
		if (j->spans != NULL) {
			own = fastjson_parse(j->text + j->spans[i].off, j->spans[i].len, true);
			if (own == NULL)
				own = json_loadb((const char *)j->text + j->spans[i].off,
				    j->spans[i].len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
				    NULL);
			if (own == NULL) {
				atomic_store(&j->not_json, true);
				break;
			}
			v = own;
		} else
			v = json_array_get(j->root, i);
		devid_error_clear(&ee);
		if (manifest_entry_parse_ctx(v, j->m->base + i, &c,
			j->spans != NULL ? j->text + j->spans[i].off : NULL,
			j->spans != NULL ? j->spans[i].len : 0, &j->m->entries[i], &ee) != 0 &&
		    (j->fails[i] = parse_fail_new(v, ee.msg)) == NULL)
			atomic_store(&j->oom, true);
		json_decref(own);
	}
	manifest_entry_ctx_release(&c);
	return NULL;
}

/*
 * Parses the n entries of m, given as root's elements or as text at spans, with up to
 * nthreads threads, and reports those that do not parse in index order, as one thread going
 * through them in order would. Returns 1 when an element of text is not JSON (the caller then
 * parses the whole document, whose error decides), else 0 or DEVID_ENOMEM.
 */
static int
parse_entries(struct manifest *m, const json_t *root, const uint8_t *text,
    const struct manifest_span *spans, int nthreads, struct manifest_report *r)
{
	struct parse_job j = {.m = m, .root = root, .text = text, .spans = spans};
	int rc = DEVID_ENOMEM;

	atomic_init(&j.next, 0);
	atomic_init(&j.not_json, false);
	atomic_init(&j.oom, false);
	if ((j.fails = calloc(m->n, sizeof(*j.fails))) == NULL ||
	    (j.cache = x5c_cache_new()) == NULL)
		goto out;
	if ((size_t)nthreads > m->n / PARSE_ENTRIES_PER_THREAD)
		nthreads = (int)(m->n / PARSE_ENTRIES_PER_THREAD);
	workpool_run(nthreads < 1 ? 1 : nthreads, parse_worker, &j);
	if (atomic_load(&j.not_json)) {
		rc = 1;
		goto out;
	}
	if (atomic_load(&j.oom))
		goto out;
	r->total = m->n;
	for (size_t i = 0; i < m->n; i++)
		if (j.fails[i] != NULL)
			manifest_report_reject(r, m->base + i,
			    j.fails[i]->has_uid ? j.fails[i]->uid : NULL, j.fails[i]->msg);
	rc = 0;
out:
	for (size_t i = 0; j.fails != NULL && i < m->n; i++)
		free(j.fails[i]);
	free(j.fails);
	x5c_cache_free(j.cache);
	return rc;
}

static struct manifest *
manifest_new(size_t n, size_t base)
{
	struct manifest *m;

	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (m->entries = calloc(n, sizeof(*m->entries))) == NULL) {
		free(m);
		return NULL;
	}
	m->n = n;
	m->base = base;
	return m;
}

/* manifest_from_json_mt for a part whose first element is entry base of the whole. */
static int
from_json_at(const json_t *root, size_t base, int nthreads, struct manifest **out,
    struct manifest_report *r, struct devid_error *e)
{
	struct manifest *m;

	*out = NULL;
	if (!json_is_array(root) || json_array_size(root) == 0)
		return devid_error_set(
		    e, DEVID_EINVAL, "manifest: not a non-empty JSON array of entries");
	if (json_array_size(root) > MAX_BATCH_COUNT)
		return devid_error_set(e, DEVID_EINVAL, "manifest: %zu entries, limit %d",
		    json_array_size(root), MAX_BATCH_COUNT);
	if ((m = manifest_new(json_array_size(root), base)) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "manifest: out of memory");
	if (parse_entries(m, root, NULL, NULL, nthreads, r) != 0) {
		manifest_free(m);
		return devid_error_set(e, DEVID_ENOMEM, "manifest: out of memory");
	}
	*out = m;
	return 0;
}

int
manifest_from_json_mt(const json_t *root, int nthreads, struct manifest **out,
    struct manifest_report *r, struct devid_error *e)
{
	return from_json_at(root, 0, nthreads, out, r, e);
}

int
manifest_from_json(
    const json_t *root, struct manifest **out, struct manifest_report *r, struct devid_error *e)
{
	return manifest_from_json_mt(root, workpool_cpus(), out, r, e);
}

bool
manifest_split(const uint8_t *p, size_t n, struct manifest_span **out, size_t *count)
{
	struct manifest_span *v = NULL, *nv;
	size_t i, end, nel = 0, cap = 0;

	*out = NULL;
	*count = 0;
	i = jsonscan_ws(p, n, 0);
	if (i >= n || p[i] != '[')
		return false;
	for (i = jsonscan_ws(p, n, i + 1);; i = jsonscan_ws(p, n, i + 1)) {
		if (i >= n || memchr(",]}:", p[i], 4) != NULL ||
		    (end = jsonscan_value_end(p, n, i)) == 0 || nel >= MAX_BATCH_COUNT)
			goto fail;
		if (nel == cap) {
			cap = cap ? cap * 2 : 1024;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL)
				goto fail;
			v = nv;
		}
		v[nel].off = i;
		v[nel++].len = end - i;
		i = jsonscan_ws(p, n, end);
		if (i >= n || (p[i] != ',' && p[i] != ']'))
			goto fail;
		if (p[i] == ']')
			break;
	}
	if (jsonscan_ws(p, n, i + 1) != n)
		goto fail;
	*out = v;
	*count = nel;
	return true;
fail:
	free(v);
	return false;
}

int
manifest_parse_spans(const uint8_t *p, const struct manifest_span *spans, size_t count, size_t base,
    int nthreads, struct manifest **out, struct manifest_report *r, struct devid_error *e)
{
	struct manifest *m;
	int rc;

	*out = NULL;
	if ((m = manifest_new(count, base)) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "manifest: out of memory");
	if ((rc = parse_entries(m, NULL, p, spans, nthreads, r)) != 0) {
		manifest_free(m);
		if (rc < 0)
			return devid_error_set(e, DEVID_ENOMEM, "manifest: out of memory");
		return rc;
	}
	*out = m;
	return 0;
}

int
manifest_parse_at(const uint8_t *p, size_t n, size_t base, int nthreads, struct manifest **out,
    struct manifest_report *r, struct devid_error *e)
{
	struct manifest_span *spans = NULL;
	json_t *root;
	size_t count;
	int rc;

	*out = NULL;
	if (n > MAX_MANIFEST_SIZE)
		return devid_error_set(
		    e, DEVID_EINVAL, "manifest: %zu bytes, limit %zu", n, MAX_MANIFEST_SIZE);
	/* each element parsed on its own, in parallel, with no tree of the whole document */
	if (manifest_split(p, n, &spans, &count)) {
		rc = manifest_parse_spans(p, spans, count, base, nthreads, out, r, e);
		free(spans);
		if (rc <= 0)
			return rc;
		/* an element is not JSON: nothing was reported, the document's error decides */
	}
	if ((root = json_parse(p, n, "manifest", e)) == NULL)
		return DEVID_EINVAL;
	rc = from_json_at(root, base, nthreads, out, r, e);
	json_decref(root);
	return rc;
}

int
manifest_parse_mt(const uint8_t *p, size_t n, int nthreads, struct manifest **out,
    struct manifest_report *r, struct devid_error *e)
{
	return manifest_parse_at(p, n, 0, nthreads, out, r, e);
}

int
manifest_parse(const uint8_t *p, size_t n, struct manifest **out, struct manifest_report *r,
    struct devid_error *e)
{
	return manifest_parse_mt(p, n, workpool_cpus(), out, r, e);
}
