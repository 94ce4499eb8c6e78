/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seen.c - the sightings of admitted devices (docs/gateway.md, "Seen reports"), counted in
 * memory by the device port's workers, and the report bodies that carry them to devid.
 *
 * The set is one hash table under one mutex: the entries in an array (handed whole to the
 * flusher by seen_take), chained through a parallel array of indexes. The hash is seeded at
 * random, so that peers cannot aim their addresses at one chain; it is computed before the
 * lock is taken, so a worker holds the lock for a lookup and a few stores.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <openssl/rand.h>

#include "gateway/gateway.h"
#include "lib/xmalloc.h"
#include "lib/banned.h"

#define NONE UINT32_MAX /* the end of a chain */
#define MIN_BUCKETS 256
#define MIN_ENTRIES 64

struct seen {
	pthread_mutex_t mu;
	size_t max;
	uint64_t seed;
	struct gateway_sighting *v; /* n entries of cap */
	uint32_t *hash; /* each entry's hash, for the chains and for growing */
	uint32_t *next; /* each entry's successor in its chain, or NONE */
	size_t n, cap;
	uint32_t *buckets; /* the first entry of each chain, or NONE; nbuckets a power of two */
	size_t nbuckets;
	uint64_t dropped;
};

struct seen *
seen_new(size_t max)
{
	struct seen *s = xcalloc(1, sizeof(*s));

	pthread_mutex_init(&s->mu, NULL);
	s->max = max < 1 ? 1 : max >= NONE ? NONE - 1 : max;
	/* a failed RAND_bytes leaves a fixed seed: the table still works, only less evenly */
	RAND_bytes((unsigned char *)&s->seed, sizeof(s->seed));
	s->nbuckets = MIN_BUCKETS;
	s->buckets = xcalloc(s->nbuckets, sizeof(*s->buckets));
	memset(s->buckets, 0xff, s->nbuckets * sizeof(*s->buckets));
	return s;
}

void
seen_free(struct seen *s)
{
	if (s == NULL)
		return;
	pthread_mutex_destroy(&s->mu);
	free(s->v);
	free(s->hash);
	free(s->next);
	free(s->buckets);
	free(s);
}

/* FNV-1a over the key's four strings, each with its NUL (so "ab","c" is not "a","bc") */
static uint32_t
key_hash(uint64_t seed, const struct gateway_sighting *k)
{
	const char *parts[] = {k->tenant, k->udid, k->origin, k->certificate};
	uint64_t h = 14695981039346656037ULL ^ seed;

	for (size_t i = 0; i < 4; i++) {
		const unsigned char *p = (const unsigned char *)parts[i];

		do {
			h ^= *p;
			h *= 1099511628211ULL;
		} while (*p++ != '\0');
	}
	return (uint32_t)(h ^ (h >> 32));
}

static bool
key_equal(const struct gateway_sighting *a, const struct gateway_sighting *b)
{
	return strcmp(a->udid, b->udid) == 0 && strcmp(a->origin, b->origin) == 0 &&
	    strcmp(a->certificate, b->certificate) == 0 && strcmp(a->tenant, b->tenant) == 0;
}

/* Doubles the buckets and chains every entry again; under s->mu. */
static void
buckets_grow(struct seen *s)
{
	size_t nb = s->nbuckets * 2;

	free(s->buckets);
	s->buckets = xcalloc(nb, sizeof(*s->buckets));
	memset(s->buckets, 0xff, nb * sizeof(*s->buckets));
	s->nbuckets = nb;
	for (size_t i = 0; i < s->n; i++) {
		size_t b = s->hash[i] & (nb - 1);

		s->next[i] = s->buckets[b];
		s->buckets[b] = (uint32_t)i;
	}
}

int
seen_record(struct seen *s, const struct gateway_sighting *k, int64_t now_ms)
{
	uint32_t h = key_hash(s->seed, k), i;
	struct gateway_sighting *e;
	size_t b;
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	b = h & (s->nbuckets - 1);
	for (i = s->buckets[b]; i != NONE; i = s->next[i]) {
		if (s->hash[i] == h && key_equal(&s->v[i], k))
			break;
	}
	if (i == NONE) {
		if (s->n == s->max) {
			s->dropped++;
			rc = DEVID_ELIMIT;
			goto out;
		}
		if (s->n == s->cap) {
			s->cap = s->cap == 0 ? MIN_ENTRIES : s->cap * 2;
			if (s->cap > s->max)
				s->cap = s->max;
			s->v = xreallocarray(s->v, s->cap, sizeof(*s->v));
			s->hash = xreallocarray(s->hash, s->cap, sizeof(*s->hash));
			s->next = xreallocarray(s->next, s->cap, sizeof(*s->next));
		}
		i = (uint32_t)s->n++;
		e = &s->v[i];
		snprintf(e->tenant, sizeof(e->tenant), "%s", k->tenant);
		snprintf(e->udid, sizeof(e->udid), "%s", k->udid);
		snprintf(e->origin, sizeof(e->origin), "%s", k->origin);
		snprintf(e->certificate, sizeof(e->certificate), "%s", k->certificate);
		e->first_ms = e->last_ms = now_ms;
		e->count = 0;
		s->hash[i] = h;
		s->next[i] = s->buckets[b];
		s->buckets[b] = i;
		if (s->n > s->nbuckets)
			buckets_grow(s);
	}
	e = &s->v[i];
	e->ldevid = k->ldevid;
	e->count++;
	/* workers race to the lock: a later lock may bring an earlier time */
	if (now_ms > e->last_ms)
		e->last_ms = now_ms;
	if (now_ms < e->first_ms)
		e->first_ms = now_ms;
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

void
seen_take(struct seen *s, struct gateway_sighting **out, size_t *n, uint64_t *dropped)
{
	pthread_mutex_lock(&s->mu);
	*out = s->n > 0 ? s->v : NULL;
	*n = s->n;
	*dropped = s->dropped;
	if (s->n == 0)
		free(s->v);
	free(s->hash);
	free(s->next);
	s->v = NULL;
	s->hash = s->next = NULL;
	s->n = s->cap = 0;
	s->dropped = 0;
	memset(s->buckets, 0xff, s->nbuckets * sizeof(*s->buckets));
	pthread_mutex_unlock(&s->mu);
}

bool
seen_origin(const char *peer, char out[GATEWAY_MAX_ORIGIN_LEN + 1])
{
	struct in6_addr a6;
	struct in_addr a4;
	const char *start = peer, *end;
	char buf[GATEWAY_MAX_ORIGIN_LEN + 1];
	size_t n;

	if (*peer == '[') {
		start = peer + 1;
		if ((end = strchr(start, ']')) == NULL || end[1] != ':')
			return false;
	} else if ((end = strrchr(peer, ':')) == NULL) {
		return false;
	}
	if ((n = (size_t)(end - start)) < 1 || n > GATEWAY_MAX_ORIGIN_LEN)
		return false;
	memcpy(buf, start, n);
	buf[n] = '\0';
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		memcpy(out, buf, n + 1);
		return true;
	}
	if (*peer != '[' || inet_pton(AF_INET6, buf, &a6) != 1)
		return false;
	/* a dual-stack socket's IPv4 peer is one origin with the same peer on an IPv4 socket */
	if (IN6_IS_ADDR_V4MAPPED(&a6))
		return inet_ntop(AF_INET, &a6.s6_addr[12], out, GATEWAY_MAX_ORIGIN_LEN + 1) != NULL;
	return inet_ntop(AF_INET6, &a6, out, GATEWAY_MAX_ORIGIN_LEN + 1) != NULL;
}

void
seen_time(int64_t ms, char out[SEEN_TIME_LEN + 1])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (ms < 0 || gmtime_r(&t, &tm) == NULL ||
	    strftime(out, SEEN_TIME_LEN + 1, "%Y-%m-%dT%H:%M:%S", &tm) != 19) {
		memcpy(out, "1970-01-01T00:00:00.000Z", SEEN_TIME_LEN + 1);
		return;
	}
	snprintf(out + 19, SEEN_TIME_LEN + 1 - 19, ".%03dZ", (int)(ms % 1000));
}

static int
sighting_cmp(const void *a, const void *b)
{
	const struct gateway_sighting *x = a, *y = b;
	int c;

	if ((c = strcmp(x->tenant, y->tenant)) != 0 || (c = strcmp(x->udid, y->udid)) != 0 ||
	    (c = strcmp(x->origin, y->origin)) != 0)
		return c;
	return strcmp(x->certificate, y->certificate);
}

/* One report of v[0..n), all of one tenant, into r. */
static int
report_encode(const struct gateway_sighting *v, size_t n, const char *id, int64_t sent_ms,
    struct seen_report *r, struct devid_error *e)
{
	char first[SEEN_TIME_LEN + 1], last[SEEN_TIME_LEN + 1], sent[SEEN_TIME_LEN + 1];
	json_t *root = NULL, *arr, *o;
	int rc = DEVID_ENOMEM;

	seen_time(sent_ms, sent);
	if ((arr = json_array()) == NULL)
		goto out;
	root = json_pack("{s:s, s:s, s:s, s:o}", "report", id, "tenant", v[0].tenant, "sentAt",
	    sent, "sightings", arr);
	if (root == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		seen_time(v[i].first_ms, first);
		seen_time(v[i].last_ms, last);
		o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:s, s:s}", "udid", v[i].udid, "origin",
		    v[i].origin, "first", first, "last", last, "count", (json_int_t)v[i].count,
		    "certificate", v[i].certificate, "identity", v[i].ldevid ? "ldevid" : "key");
		if (o == NULL || json_array_append_new(arr, o) != 0)
			goto out;
	}
	if ((r->body = json_dumps(root, JSON_COMPACT)) == NULL)
		goto out;
	r->len = strlen(r->body);
	snprintf(r->id, sizeof(r->id), "%s", id);
	snprintf(r->tenant, sizeof(r->tenant), "%s", v[0].tenant);
	r->nsightings = n;
	rc = 0;
out:
	if (rc != 0)
		devid_error_set(e, rc, "seen report: out of memory");
	json_decref(root);
	return rc;
}

int
seen_reports_encode(struct gateway_sighting *v, size_t n, size_t max_per_report,
    const char *id_prefix, uint64_t *seq, int64_t sent_ms, struct seen_report **out, size_t *nout,
    struct devid_error *e)
{
	struct seen_report *r = NULL;
	char id[GATEWAY_MAX_EVENT_ID_LEN + 2];
	size_t nr = 0, cap = 0, i = 0, j;
	int rc = DEVID_EINVAL;

	*out = NULL;
	*nout = 0;
	if (max_per_report < 1) {
		devid_error_set(e, rc, "seen report: no room for a sighting");
		goto out;
	}
	qsort(v, n, sizeof(*v), sighting_cmp);
	while (i < n) {
		/* the next report: the same tenant, up to max_per_report */
		for (j = i + 1; j < n && j - i < max_per_report; j++) {
			if (strcmp(v[j].tenant, v[i].tenant) != 0)
				break;
		}
		snprintf(id, sizeof(id), "%s-%llu", id_prefix, (unsigned long long)*seq);
		if (!gateway_event_id_valid(id, strlen(id))) {
			devid_error_set(e, rc, "seen report: \"%s\" is not a report id", id);
			goto out;
		}
		if (nr == cap) {
			cap = cap == 0 ? 4 : cap * 2;
			r = xreallocarray(r, cap, sizeof(*r));
		}
		if ((rc = report_encode(v + i, j - i, id, sent_ms, &r[nr], e)) != 0)
			goto out;
		nr++;
		(*seq)++;
		i = j;
	}
	*out = r;
	*nout = nr;
	r = NULL;
	nr = 0;
	rc = 0;
out:
	seen_reports_free(r, nr);
	return rc;
}

void
seen_reports_free(struct seen_report *r, size_t n)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(r[i].body);
	free(r);
}
