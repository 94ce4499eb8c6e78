/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.h - a small registry of counters, gauges and histograms, rendered in the
 * Prometheus text exposition format (version 0.0.4).
 *
 * Families are registered at start-up (a name, a help text, up to METRICS_MAX_LABELS label
 * names); a series is one combination of label values, found or created on first use and
 * kept until metrics_free. Updates are lock-free atomics, safe from any thread; finding a
 * series reads without a lock and creates under the family's mutex. A family holds at most
 * METRICS_MAX_SERIES series: past that, and for label values over
 * METRICS_MAX_LABEL_VALUE_LEN, metric_get returns NULL, and every update accepts NULL and
 * does nothing, so a flood of distinct values cannot grow memory without bound. Label values
 * should be bounded sets (route patterns, status codes), never raw outside input.
 */
#ifndef DEVID_HTTP_METRICS_H
#define DEVID_HTTP_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "http/http_limits.h"
#include "lib/dynbuf.h"
#include "lib/error.h"

struct metrics;
struct metric_family;
struct metric;

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

/* An empty registry; metrics_free frees it and every family and series (accepts NULL). */
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/*
 * Registers a family, or returns the one already registered under name when its type,
 * labels (and histogram bounds) are the same. name and label names match
 * [a-zA-Z_:][a-zA-Z0-9_:]* (labels without ':', not "le" nor starting "__"); bounds are
 * strictly increasing and finite (+Inf is implied). The family is borrowed from m. NULL with
 * e set on a bad name, a clash, or past METRICS_MAX_FAMILIES.
 */
struct metric_family *metrics_register(struct metrics *m, enum metric_type type, const char *name,
    const char *help, const char *const *labels, size_t nlabels, const double *bounds,
    size_t nbounds, struct devid_error *e);

/* The series of these label values (as many as the family's labels), borrowed from the
 * registry; NULL past the series cap, for an overlong value, or out of memory. */
struct metric *metric_get(struct metric_family *f, const char *const *values);

/* Counters: add n. Gauges: add n (signed). Histograms: no-op. All accept NULL. */
void metric_inc(struct metric *s);
void metric_add(struct metric *s, int64_t n);
/* Gauges: set the value. */
void metric_set(struct metric *s, int64_t v);
/* Histograms: count one observation of v (seconds, bytes ...). */
void metric_observe(struct metric *s, double v);
/* The current value of a counter or gauge, or the count of a histogram (tests, health). */
int64_t metric_value(const struct metric *s);

/*
 * Appends the whole registry to out in exposition format, then what every collector appends.
 * DEVID_ELIMIT past out's max, or a collector's error.
 */
int metrics_render(struct metrics *m, struct dynbuf *out);

/*
 * A collector renders families whose values live elsewhere (the domain's counters, the
 * database), at every metrics_render, with the writers below; arg is borrowed and must
 * outlive m. Its family names must not clash with registered ones. DEVID_ELIMIT past
 * METRICS_MAX_COLLECTORS.
 */
int metrics_add_collector(
    struct metrics *m, int (*collect)(void *arg, struct dynbuf *out), void *arg);

/* For collectors: the HELP and TYPE lines that start a family. */
int metrics_write_family(
    struct dynbuf *out, enum metric_type type, const char *name, const char *help);
/* One sample name{labels[i]="values[i]"...} v; values are escaped. */
int metrics_write_sample(struct dynbuf *out, const char *name, const char *const *labels,
    const char *const *values, size_t nlabels, double v);
/*
 * The samples of one histogram series: counts[0 .. nbounds] per bucket, not cumulative
 * (counts[nbounds] above the last bound), and the sum of the observations.
 */
int metrics_write_histogram(struct dynbuf *out, const char *name, const char *const *labels,
    const char *const *values, size_t nlabels, const double *bounds, const uint64_t *counts,
    size_t nbounds, double sum);

#endif
