/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_metrics - src/http/metrics.c: registration, series, atomics, the exposition text, and
 * collectors with their writers.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/metrics.h"
#include "test.h"
#include "lib/banned.h"

#define THREADS 4
#define INCS 100000

static void
test_register(void)
{
	static const char *const one[] = {"route"};
	static const char *const two[] = {"route", "status"};
	static const char *const bad_labels[][1] = {{"__x"}, {"le"}, {"a-b"}, {"1a"}, {"a:b"}};
	static const double bounds[] = {0.1, 1};
	static const double unsorted[] = {1, 0.1};
	struct metrics *m = metrics_new();
	struct metric_family *f, *g;
	struct devid_error e;

	CHECK(metrics_register(m, METRIC_COUNTER, "1abc", "", NULL, 0, NULL, 0, &e) == NULL,
	    "a name starting with a digit");
	CHECK(metrics_register(m, METRIC_COUNTER, "a-b", "", NULL, 0, NULL, 0, &e) == NULL,
	    "a name with '-'");
	CHECK(metrics_register(m, METRIC_COUNTER, "", "", NULL, 0, NULL, 0, &e) == NULL,
	    "an empty name");
	for (size_t i = 0; i < sizeof(bad_labels) / sizeof(bad_labels[0]); i++)
		CHECK(metrics_register(m, METRIC_COUNTER, "x", "", bad_labels[i], 1, NULL, 0, &e) ==
			NULL,
		    "label \"%s\" is refused", bad_labels[i][0]);
	CHECK(metrics_register(m, METRIC_HISTOGRAM, "h", "", NULL, 0, unsorted, 2, &e) == NULL,
	    "bounds must increase");

	f = metrics_register(m, METRIC_COUNTER, "ns:requests_total", "help", two, 2, NULL, 0, &e);
	CHECK(f != NULL, "a counter with two labels: %s", e.msg);
	g = metrics_register(
	    m, METRIC_COUNTER, "ns:requests_total", "other help", two, 2, NULL, 0, &e);
	CHECK(g == f, "registering the same family again returns it");
	CHECK(metrics_register(m, METRIC_GAUGE, "ns:requests_total", "", two, 2, NULL, 0, &e) ==
		    NULL &&
		e.code == DEVID_ECONFLICT,
	    "another type under the same name is DEVID_ECONFLICT");
	CHECK(metrics_register(m, METRIC_COUNTER, "ns:requests_total", "", one, 1, NULL, 0, &e) ==
		NULL,
	    "other labels under the same name are refused");
	CHECK(metrics_register(m, METRIC_HISTOGRAM, "lat", "", one, 1, bounds, 2, &e) != NULL,
	    "a histogram");
	metrics_free(m);
	metrics_free(NULL);
}

static void
test_series(void)
{
	static const char *const one[] = {"k"};
	struct metrics *m = metrics_new();
	struct metric_family *f =
	    metrics_register(m, METRIC_COUNTER, "c", "", one, 1, NULL, 0, NULL);
	struct metric_family *g =
	    metrics_register(m, METRIC_GAUGE, "g", "", NULL, 0, NULL, 0, NULL);
	const char *v[1];
	char buf[32], big[METRICS_MAX_LABEL_VALUE_LEN + 2];
	struct metric *a, *s;
	int i, got = 0;

	v[0] = "a";
	a = metric_get(f, v);
	CHECK(a != NULL && metric_get(f, v) == a, "the same values give the same series");
	metric_inc(a);
	metric_add(a, 41);
	metric_add(a, -5);
	CHECK(metric_value(a) == 42, "a counter counts and never goes down: %lld",
	    (long long)metric_value(a));
	s = metric_get(g, NULL);
	metric_set(s, 10);
	metric_add(s, -3);
	CHECK(metric_value(s) == 7, "a gauge is set and moves both ways");
	metric_inc(NULL);
	metric_add(NULL, 1);
	metric_set(NULL, 1);
	metric_observe(NULL, 1);
	CHECK(metric_value(NULL) == 0 && metric_get(NULL, v) == NULL, "NULL is a no-op");

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	v[0] = big;
	CHECK(metric_get(f, v) == NULL, "an overlong label value gets no series");

	/* the series cap: one series exists; fill the family, then one more is refused */
	for (i = 1; i < METRICS_MAX_SERIES; i++) {
		snprintf(buf, sizeof(buf), "v%d", i);
		v[0] = buf;
		got += metric_get(f, v) != NULL;
	}
	CHECK(got == METRICS_MAX_SERIES - 1, "METRICS_MAX_SERIES series fit");
	v[0] = "one-too-many";
	CHECK(metric_get(f, v) == NULL, "past the cap, metric_get is NULL");
	v[0] = "a";
	CHECK(metric_get(f, v) == a, "existing series are still found");
	metrics_free(m);
}

static void
test_render(void)
{
	static const char *const labels[] = {"path", "code"};
	static const double bounds[] = {0.1, 1};
	static const char *const odd[] = {"x\"y\\z\nw", "200"};
	static const char *const plain[] = {"/a", "404"};
	static const char *const want = "# HELP req_total Requests \\\\ seen\\nby \"path\"\n"
					"# TYPE req_total counter\n"
					"req_total{path=\"x\\\"y\\\\z\\nw\",code=\"200\"} 3\n"
					"req_total{path=\"/a\",code=\"404\"} 0\n"
					"# HELP up Whether it is up\n"
					"# TYPE up gauge\n"
					"up -1\n"
					"# HELP lat_seconds Latency\n"
					"# TYPE lat_seconds histogram\n"
					"lat_seconds_bucket{le=\"0.1\"} 2\n"
					"lat_seconds_bucket{le=\"1\"} 3\n"
					"lat_seconds_bucket{le=\"+Inf\"} 4\n"
					"lat_seconds_sum 5.65\n"
					"lat_seconds_count 4\n";
	struct metrics *m = metrics_new();
	struct metric_family *c, *g, *h;
	struct metric *s;
	struct dynbuf b;

	c = metrics_register(m, METRIC_COUNTER, "req_total", "Requests \\ seen\nby \"path\"",
	    labels, 2, NULL, 0, NULL);
	g = metrics_register(m, METRIC_GAUGE, "up", "Whether it is up", NULL, 0, NULL, 0, NULL);
	h = metrics_register(
	    m, METRIC_HISTOGRAM, "lat_seconds", "Latency", NULL, 0, bounds, 2, NULL);
	metric_add(metric_get(c, odd), 3);
	metric_get(c, plain);
	metric_set(metric_get(g, NULL), -1);
	s = metric_get(h, NULL);
	metric_observe(s, 0.05);
	metric_observe(s, 0.1); /* le is inclusive */
	metric_observe(s, 0.5);
	metric_observe(s, 5);

	dynbuf_init(&b, 1 << 16);
	CHECK(metrics_render(m, &b) == 0, "the registry renders");
	CHECK(strcmp(dynbuf_str(&b), want) == 0, "the exposition text is exact; got:\n%s",
	    dynbuf_str(&b));
	dynbuf_release(&b);
	dynbuf_init(&b, 64);
	CHECK(metrics_render(m, &b) == DEVID_ELIMIT, "a buffer too small is DEVID_ELIMIT");
	dynbuf_release(&b);
	metrics_free(m);
}

/* A collector as service_metrics.c writes one: a labelled counter and a histogram. */
static int
collect(void *arg, struct dynbuf *out)
{
	static const char *const labels[] = {"rule"}, *const values[] = {"a\"b"};
	static const double bounds[] = {0.5, 2};
	const uint64_t counts[] = {1, 0, 2}; /* per bucket; the last above 2 */
	const int *calls = arg;
	int rc;

	if ((rc = metrics_write_family(out, METRIC_COUNTER, "x_total", "Xs.")) != 0 ||
	    (rc = metrics_write_sample(out, "x_total", labels, values, 1, *calls)) != 0 ||
	    (rc = metrics_write_family(out, METRIC_HISTOGRAM, "y_seconds", "Ys.")) != 0)
		return rc;
	return metrics_write_histogram(
	    out, "y_seconds", labels, values, 1, bounds, counts, 2, 7.25);
}

static void
test_collector(void)
{
	static const char *const want = "# HELP up Up.\n"
					"# TYPE up gauge\n"
					"up 0\n"
					"# HELP x_total Xs.\n"
					"# TYPE x_total counter\n"
					"x_total{rule=\"a\\\"b\"} 12\n"
					"# HELP y_seconds Ys.\n"
					"# TYPE y_seconds histogram\n"
					"y_seconds_bucket{rule=\"a\\\"b\",le=\"0.5\"} 1\n"
					"y_seconds_bucket{rule=\"a\\\"b\",le=\"2\"} 1\n"
					"y_seconds_bucket{rule=\"a\\\"b\",le=\"+Inf\"} 3\n"
					"y_seconds_sum{rule=\"a\\\"b\"} 7.25\n"
					"y_seconds_count{rule=\"a\\\"b\"} 3\n";
	struct metrics *m = metrics_new();
	struct dynbuf b;
	int calls = 12;

	metric_get(metrics_register(m, METRIC_GAUGE, "up", "Up.", NULL, 0, NULL, 0, NULL), NULL);
	CHECK(metrics_add_collector(m, collect, &calls) == 0, "a collector is added");
	dynbuf_init(&b, 1 << 16);
	CHECK(metrics_render(m, &b) == 0, "the registry and its collector render");
	CHECK(strcmp(dynbuf_str(&b), want) == 0,
	    "the collector follows the families, its histogram cumulative; got:\n%s",
	    dynbuf_str(&b));
	dynbuf_release(&b);
	for (int i = 1; i < METRICS_MAX_COLLECTORS; i++)
		metrics_add_collector(m, collect, &calls);
	CHECK(metrics_add_collector(m, collect, &calls) == DEVID_ELIMIT,
	    "past METRICS_MAX_COLLECTORS a collector is refused");
	metrics_free(m);
}

static void *
inc_thread(void *arg)
{
	struct metric_family *f = arg;
	static const char *const v[] = {"shared"};

	for (int i = 0; i < INCS; i++) {
		metric_inc(metric_get(f, v));
		metric_observe(NULL, 1);
	}
	return NULL;
}

static void
test_threads(void)
{
	static const char *const one[] = {"k"};
	static const char *const v[] = {"shared"};
	struct metrics *m = metrics_new();
	struct metric_family *f =
	    metrics_register(m, METRIC_COUNTER, "t", "", one, 1, NULL, 0, NULL);
	pthread_t t[THREADS];

	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, inc_thread, f);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	CHECK(metric_value(metric_get(f, v)) == (int64_t)THREADS * INCS,
	    "%d threads counted %lld, expected %d", THREADS,
	    (long long)metric_value(metric_get(f, v)), THREADS * INCS);
	metrics_free(m);
}

int
main(void)
{
	test_register();
	test_series();
	test_render();
	test_collector();
	test_threads();
	return test_done();
}
