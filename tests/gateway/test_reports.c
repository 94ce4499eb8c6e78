/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seen reports' parts that need no network (src/gateway/seen.c): the set of sightings
 * (first, last and count per key, each field of the key its own, the cap and the count of
 * what it dropped, taking empties it, several threads at once), the origin of a peer, the
 * times, and the report bodies (the exact JSON, one report per tenant, the split at the
 * maximum, ids in sequence).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"
#include "test.h"
#include "lib/banned.h"

#define UDID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define UDID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define CERT_1 "1111111111111111111111111111111111111111111111111111111111111111"
#define CERT_2 "2222222222222222222222222222222222222222222222222222222222222222"
/* 2026-12-05T10:59:58.001Z */
#define T0 1796468398001LL

static struct gateway_sighting
key(const char *tenant, const char *udid, const char *origin, const char *cert)
{
	struct gateway_sighting k;

	memset(&k, 0, sizeof(k));
	snprintf(k.tenant, sizeof(k.tenant), "%s", tenant);
	snprintf(k.udid, sizeof(k.udid), "%s", udid);
	snprintf(k.origin, sizeof(k.origin), "%s", origin);
	snprintf(k.certificate, sizeof(k.certificate), "%s", cert);
	return k;
}

static const struct gateway_sighting *
find(const struct gateway_sighting *v, size_t n, const struct gateway_sighting *k)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(v[i].tenant, k->tenant) == 0 && strcmp(v[i].udid, k->udid) == 0 &&
		    strcmp(v[i].origin, k->origin) == 0 &&
		    strcmp(v[i].certificate, k->certificate) == 0)
			return &v[i];
	}
	return NULL;
}

static void
test_aggregate(void)
{
	struct seen *s = seen_new(100);
	struct gateway_sighting a = key("OEM1", UDID_A, "127.0.0.2", CERT_1), *v;
	const struct gateway_sighting *f;
	struct gateway_sighting others[4] = {
	    key("OEM2", UDID_A, "127.0.0.2", CERT_1),
	    key("OEM1", UDID_B, "127.0.0.2", CERT_1),
	    key("OEM1", UDID_A, "127.0.0.3", CERT_1),
	    key("OEM1", UDID_A, "127.0.0.2", CERT_2),
	};
	uint64_t dropped;
	size_t n;

	CHECK(seen_record(s, &a, T0 + 100) == 0, "the first sighting");
	CHECK(seen_record(s, &a, T0 + 50) == 0, "an earlier time, later to the lock");
	a.ldevid = true;
	CHECK(seen_record(s, &a, T0 + 900) == 0, "the last");
	for (size_t i = 0; i < 4; i++)
		CHECK(seen_record(s, &others[i], T0 + (int64_t)i) == 0, "key %zu", i);
	seen_take(s, &v, &n, &dropped);
	CHECK(n == 5 && dropped == 0, "each field of the key makes its own sighting: %zu", n);
	f = find(v, n, &a);
	CHECK(f != NULL && f->count == 3 && f->first_ms == T0 + 50 && f->last_ms == T0 + 900,
	    "first, last, count: %lld %lld %llu", f ? (long long)f->first_ms : 0,
	    f ? (long long)f->last_ms : 0, f ? (unsigned long long)f->count : 0);
	CHECK(f != NULL && f->ldevid, "identity as last seen");
	for (size_t i = 0; i < 4; i++) {
		f = find(v, n, &others[i]);
		CHECK(f != NULL && f->count == 1 && f->first_ms == T0 + (int64_t)i &&
			f->last_ms == f->first_ms && !f->ldevid,
		    "key %zu: once", i);
	}
	free(v);
	seen_take(s, &v, &n, &dropped);
	CHECK(v == NULL && n == 0 && dropped == 0, "taking empties the set");
	CHECK(seen_record(s, &a, T0 + 2000) == 0, "after a take");
	seen_take(s, &v, &n, &dropped);
	CHECK(n == 1 && v[0].count == 1 && v[0].first_ms == T0 + 2000, "a new first after a take");
	free(v);
	seen_free(s);
	seen_free(NULL);
}

/* Many keys: the table grows past its first buckets and finds every key again. */
static void
test_many(void)
{
	struct seen *s = seen_new(GATEWAY_MAX_SIGHTINGS);
	struct gateway_sighting k = key("OEM1", UDID_A, "", CERT_1), *v;
	uint64_t dropped;
	size_t n;
	int ok = 1;

	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 20000; i++) {
			snprintf(k.origin, sizeof(k.origin), "10.%d.%d.%d", i >> 16, (i >> 8) & 255,
			    i & 255);
			ok &= seen_record(s, &k, T0 + round) == 0;
		}
	}
	seen_take(s, &v, &n, &dropped);
	CHECK(ok && n == 20000 && dropped == 0, "20,000 keys twice: %zu", n);
	for (size_t i = 0; i < n; i++)
		ok &= v[i].count == 2 && v[i].first_ms == T0 && v[i].last_ms == T0 + 1;
	CHECK(ok, "each key counted twice");
	free(v);
	seen_free(s);
}

static void
test_cap(void)
{
	struct seen *s = seen_new(3);
	struct gateway_sighting k = key("OEM1", UDID_A, "", CERT_1), *v;
	uint64_t dropped;
	size_t n;

	for (int i = 0; i < 5; i++) {
		snprintf(k.origin, sizeof(k.origin), "127.0.0.%d", i + 1);
		CHECK(seen_record(s, &k, T0) == (i < 3 ? 0 : DEVID_ELIMIT), "key %d of a cap of 3",
		    i);
	}
	/* a key already there is still counted when the set is full */
	snprintf(k.origin, sizeof(k.origin), "127.0.0.1");
	CHECK(seen_record(s, &k, T0 + 1) == 0, "a known key at the cap");
	snprintf(k.origin, sizeof(k.origin), "127.0.0.9");
	CHECK(seen_record(s, &k, T0 + 1) == DEVID_ELIMIT, "a new key at the cap");
	seen_take(s, &v, &n, &dropped);
	CHECK(
	    n == 3 && dropped == 3, "3 kept, 3 dropped: %zu, %llu", n, (unsigned long long)dropped);
	free(v);
	seen_take(s, &v, &n, &dropped);
	CHECK(n == 0 && dropped == 0, "the dropped count starts again");
	CHECK(seen_record(s, &k, T0) == 0, "room again after a take");
	seen_take(s, &v, &n, &dropped);
	free(v);
	seen_free(s);
}

#define NTHREADS 4
#define PER_THREAD 20000

static void *
hammer(void *arg)
{
	struct seen *s = arg;
	struct gateway_sighting k = key("OEM1", UDID_A, "", CERT_1);

	for (int i = 0; i < PER_THREAD; i++) {
		snprintf(k.origin, sizeof(k.origin), "127.0.0.%d", i % 7);
		seen_record(s, &k, T0 + i);
	}
	return NULL;
}

/* Workers record while the flusher takes: nothing is lost or counted twice. */
static void
test_threads(void)
{
	struct seen *s = seen_new(GATEWAY_MAX_SIGHTINGS);
	pthread_t t[NTHREADS];
	struct gateway_sighting *v;
	uint64_t total = 0, dropped;
	size_t n;

	for (int i = 0; i < NTHREADS; i++)
		pthread_create(&t[i], NULL, hammer, s);
	for (int round = 0; round < 50; round++) {
		seen_take(s, &v, &n, &dropped);
		for (size_t i = 0; i < n; i++)
			total += v[i].count;
		free(v);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	seen_take(s, &v, &n, &dropped);
	for (size_t i = 0; i < n; i++)
		total += v[i].count;
	free(v);
	CHECK(total == (uint64_t)NTHREADS * PER_THREAD, "every sighting counted once: %llu",
	    (unsigned long long)total);
	seen_free(s);
}

static void
origin_expect(const char *peer, const char *want)
{
	char out[GATEWAY_MAX_ORIGIN_LEN + 1] = "";
	bool ok = seen_origin(peer, out);

	if (want == NULL)
		CHECK(!ok, "origin of \"%s\": accepted as \"%s\"", peer, out);
	else
		CHECK(ok && strcmp(out, want) == 0, "origin of \"%s\": \"%s\", expected \"%s\"",
		    peer, ok ? out : "(refused)", want);
}

static void
test_origin(void)
{
	origin_expect("127.0.0.2:51234", "127.0.0.2");
	origin_expect("[::1]:443", "::1");
	origin_expect("[2001:db8::a:1]:8443", "2001:db8::a:1");
	origin_expect("[::ffff:192.0.2.7]:1", "192.0.2.7");
	origin_expect("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535",
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
	origin_expect("127.0.0.2", NULL);
	origin_expect("[::1]", NULL);
	origin_expect("[::1:443", NULL);
	origin_expect("::1:443", NULL);
	origin_expect("host:443", NULL);
	origin_expect(":443", NULL);
	origin_expect("", NULL);
}

static void
test_time(void)
{
	char t[SEEN_TIME_LEN + 1];

	seen_time(T0, t);
	CHECK(strcmp(t, "2026-12-05T10:59:58.001Z") == 0, "time %s", t);
	seen_time(0, t);
	CHECK(strcmp(t, "1970-01-01T00:00:00.000Z") == 0, "the epoch %s", t);
	seen_time(T0 + 1869, t);
	CHECK(strcmp(t, "2026-12-05T10:59:59.870Z") == 0, "milliseconds %s", t);
}

static void
test_encode(void)
{
	struct gateway_sighting v[3] = {
	    key("OEM1", UDID_A, "127.0.0.3", CERT_1),
	    key("OEM1", UDID_A, "127.0.0.2", CERT_1),
	    key("OEM2", UDID_B, "::1", CERT_2),
	};
	struct seen_report *r;
	struct devid_error e;
	uint64_t seq = 7;
	size_t nr;
	int rc;

	v[0].first_ms = T0;
	v[0].last_ms = T0 + 1869;
	v[0].count = 3;
	v[1].first_ms = v[1].last_ms = T0 + 5;
	v[1].count = 1;
	v[2].first_ms = v[2].last_ms = T0;
	v[2].count = 1;
	v[2].ldevid = true;
	devid_error_clear(&e);
	rc = seen_reports_encode(v, 3, GATEWAY_MAX_REPORT_SIGHTINGS, "gw-0123456789abcdef", &seq,
	    T0 + 2000, &r, &nr, &e);
	CHECK(rc == 0 && nr == 2, "two tenants, two reports: rc %d, %zu (%s)", rc, nr, e.msg);
	if (rc != 0 || nr != 2)
		return;
	CHECK(seq == 9, "the sequence counted up: %llu", (unsigned long long)seq);
	CHECK(strcmp(r[0].id, "gw-0123456789abcdef-7") == 0 &&
		strcmp(r[1].id, "gw-0123456789abcdef-8") == 0,
	    "ids %s %s", r[0].id, r[1].id);
	CHECK(strcmp(r[0].tenant, "OEM1") == 0 && r[0].nsightings == 2, "the first report");
	CHECK(strcmp(r[0].body,
		  "{\"report\":\"gw-0123456789abcdef-7\",\"tenant\":\"OEM1\","
		  "\"sentAt\":\"2026-12-05T11:00:00.001Z\",\"sightings\":["
		  "{\"udid\":\"" UDID_A "\",\"origin\":\"127.0.0.2\","
		  "\"first\":\"2026-12-05T10:59:58.006Z\",\"last\":\"2026-12-05T10:59:58.006Z\","
		  "\"count\":1,\"certificate\":\"" CERT_1 "\",\"identity\":\"key\"},"
		  "{\"udid\":\"" UDID_A "\",\"origin\":\"127.0.0.3\","
		  "\"first\":\"2026-12-05T10:59:58.001Z\",\"last\":\"2026-12-05T10:59:59.870Z\","
		  "\"count\":3,\"certificate\":\"" CERT_1 "\",\"identity\":\"key\"}]}") == 0 &&
		r[0].len == strlen(r[0].body),
	    "the first body: %s", r[0].body);
	CHECK(strcmp(r[1].body,
		  "{\"report\":\"gw-0123456789abcdef-8\",\"tenant\":\"OEM2\","
		  "\"sentAt\":\"2026-12-05T11:00:00.001Z\",\"sightings\":["
		  "{\"udid\":\"" UDID_B "\",\"origin\":\"::1\","
		  "\"first\":\"2026-12-05T10:59:58.001Z\",\"last\":\"2026-12-05T10:59:58.001Z\","
		  "\"count\":1,\"certificate\":\"" CERT_2 "\",\"identity\":\"ldevid\"}]}") == 0,
	    "the second body: %s", r[1].body);
	seen_reports_free(r, nr);

	rc = seen_reports_encode(v, 0, GATEWAY_MAX_REPORT_SIGHTINGS, "gw-x", &seq, T0, &r, &nr, &e);
	CHECK(rc == 0 && r == NULL && nr == 0 && seq == 9, "nothing seen, no report");
	seen_reports_free(NULL, 0);
}

/* One tenant past the maximum: several reports, each at most the maximum, none lost. */
static void
test_split(void)
{
	size_t n = 2 * GATEWAY_MAX_REPORT_SIGHTINGS + 1, nr, total = 0;
	struct gateway_sighting *v = calloc(n + 2, sizeof(*v));
	struct seen_report *r;
	struct devid_error e;
	uint64_t seq = 1;
	int rc;

	for (size_t i = 0; i < n; i++) {
		v[i] = key("OEM1", UDID_A, "", CERT_1);
		snprintf(v[i].origin, sizeof(v[i].origin), "10.0.%zu.%zu", i >> 8, i & 255);
		v[i].first_ms = v[i].last_ms = T0;
		v[i].count = 1;
	}
	/* and a tenant of two, small enough to fit one report */
	v[n] = key("OEM2", UDID_A, "127.0.0.1", CERT_1);
	v[n + 1] = key("OEM2", UDID_B, "127.0.0.1", CERT_1);
	devid_error_clear(&e);
	rc = seen_reports_encode(
	    v, n + 2, GATEWAY_MAX_REPORT_SIGHTINGS, "gw-split", &seq, T0, &r, &nr, &e);
	CHECK(rc == 0 && nr == 4, "2,001 sightings of OEM1 and 2 of OEM2: %zu reports", nr);
	for (size_t i = 0; rc == 0 && i < nr; i++) {
		json_t *j = json_loads(r[i].body, JSON_REJECT_DUPLICATES, NULL);
		json_t *s = json_object_get(j, "sightings");

		CHECK(json_array_size(s) == r[i].nsightings &&
			r[i].nsightings <= GATEWAY_MAX_REPORT_SIGHTINGS,
		    "report %zu: %zu sightings", i, r[i].nsightings);
		CHECK(strcmp(json_string_value(json_object_get(j, "tenant")), r[i].tenant) == 0 &&
			strcmp(json_string_value(json_object_get(j, "report")), r[i].id) == 0,
		    "report %zu: tenant and id in the body", i);
		total += r[i].nsightings;
		json_decref(j);
	}
	CHECK(rc != 0 ||
		(r[0].nsightings == 1000 && r[1].nsightings == 1000 && r[2].nsightings == 1 &&
		    strcmp(r[3].tenant, "OEM2") == 0 && r[3].nsightings == 2),
	    "1,000, 1,000, 1, then OEM2's 2");
	CHECK(total == n + 2 && seq == 5, "every sighting once: %zu", total);
	if (rc == 0)
		seen_reports_free(r, nr);

	rc = seen_reports_encode(v, n + 2, 7, "gw-seven", &seq, T0, &r, &nr, &e);
	CHECK(rc == 0 && nr == 286 + 1, "a maximum of 7: %zu reports", nr);
	if (rc == 0)
		seen_reports_free(r, nr);
	rc = seen_reports_encode(v, 1, 0, "gw-none", &seq, T0, &r, &nr, &e);
	CHECK(rc == DEVID_EINVAL && r == NULL, "a maximum of 0 is refused");
	{
		char prefix[GATEWAY_MAX_EVENT_ID_LEN + 1];

		memset(prefix, 'p', sizeof(prefix) - 1);
		prefix[sizeof(prefix) - 1] = '\0';
		rc = seen_reports_encode(v, 1, 1, prefix, &seq, T0, &r, &nr, &e);
		CHECK(rc == DEVID_EINVAL && r == NULL && strstr(e.msg, "not a report id") != NULL,
		    "an id past 128 characters is refused: %s", e.msg);
	}
	free(v);
}

int
main(void)
{
	test_aggregate();
	test_many();
	test_cap();
	test_threads();
	test_origin();
	test_time();
	test_encode();
	test_split();
	return test_done();
}
