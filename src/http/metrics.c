/* SPDX-License-Identifier: Apache-2.0 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/metrics.h"
#include "lib/xmalloc.h"
#include "lib/banned.h"

struct metric {
	struct metric_family *f;
	char *values[METRICS_MAX_LABELS];
	_Atomic int64_t value; /* counter, gauge; histogram: the count */
	_Atomic uint64_t sum_bits; /* histogram: the sum, as the bits of a double */
	_Atomic uint64_t *buckets; /* histogram: nbounds + 1 counts, not cumulative */
};

struct metric_family {
	enum metric_type type;
	char name[METRICS_MAX_NAME_LEN + 1];
	char help[METRICS_MAX_HELP_LEN + 1];
	size_t nlabels;
	char labels[METRICS_MAX_LABELS][METRICS_MAX_NAME_LEN + 1];
	size_t nbounds;
	double bounds[METRICS_MAX_BUCKETS];
	/*
	 * series[0 .. nseries) are complete before nseries is raised (release), so readers
	 * that load nseries (acquire) scan them without the lock; writers append under it.
	 */
	pthread_mutex_t lock;
	_Atomic size_t nseries;
	struct metric *series[METRICS_MAX_SERIES];
};

struct collector {
	int (*collect)(void *arg, struct dynbuf *out);
	void *arg;
};

struct metrics {
	pthread_mutex_t lock;
	size_t nfamilies;
	struct metric_family *families[METRICS_MAX_FAMILIES];
	size_t ncollectors;
	struct collector collectors[METRICS_MAX_COLLECTORS];
};

static const char *const type_names[] = {"counter", "gauge", "histogram"};

struct metrics *
metrics_new(void)
{
	struct metrics *m = xcalloc(1, sizeof(*m));

	pthread_mutex_init(&m->lock, NULL);
	return m;
}

static void
metric_free(struct metric *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < METRICS_MAX_LABELS; i++)
		free(s->values[i]);
	free(s->buckets);
	free(s);
}

static void
family_free(struct metric_family *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < atomic_load(&f->nseries); i++)
		metric_free(f->series[i]);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

void
metrics_free(struct metrics *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->nfamilies; i++)
		family_free(m->families[i]);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static bool
name_ok(const char *s, bool colon)
{
	size_t n = strlen(s);

	if (n == 0 || n > METRICS_MAX_NAME_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
		    (colon && c == ':');

		if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
			return false;
	}
	return true;
}

/* Whether f was registered with exactly this signature. */
static bool
family_same(const struct metric_family *f, enum metric_type type, const char *const *labels,
    size_t nlabels, const double *bounds, size_t nbounds)
{
	if (f->type != type || f->nlabels != nlabels || f->nbounds != nbounds)
		return false;
	for (size_t i = 0; i < nlabels; i++) {
		if (strcmp(f->labels[i], labels[i]) != 0)
			return false;
	}
	for (size_t i = 0; i < nbounds; i++) {
		if (f->bounds[i] != bounds[i])
			return false;
	}
	return true;
}

struct metric_family *
metrics_register(struct metrics *m, enum metric_type type, const char *name, const char *help,
    const char *const *labels, size_t nlabels, const double *bounds, size_t nbounds,
    struct devid_error *e)
{
	struct metric_family *f = NULL, *found = NULL;

	if (type != METRIC_HISTOGRAM)
		nbounds = 0;
	if (!name_ok(name, true)) {
		devid_error_set(e, DEVID_EINVAL, "metric \"%s\": not a valid metric name", name);
		return NULL;
	}
	if (nlabels > METRICS_MAX_LABELS || nbounds > METRICS_MAX_BUCKETS ||
	    strlen(help) > METRICS_MAX_HELP_LEN) {
		devid_error_set(e, DEVID_ELIMIT,
		    "metric %s: more than %d labels, %d buckets or %d characters of help", name,
		    METRICS_MAX_LABELS, METRICS_MAX_BUCKETS, METRICS_MAX_HELP_LEN);
		return NULL;
	}
	for (size_t i = 0; i < nlabels; i++) {
		if (!name_ok(labels[i], false) || strncmp(labels[i], "__", 2) == 0 ||
		    strcmp(labels[i], "le") == 0) {
			devid_error_set(e, DEVID_EINVAL, "metric %s: label \"%s\" is not allowed",
			    name, labels[i]);
			return NULL;
		}
	}
	for (size_t i = 0; i < nbounds; i++) {
		if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
			devid_error_set(e, DEVID_EINVAL,
			    "metric %s: bucket bounds must be finite and increasing", name);
			return NULL;
		}
	}

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->nfamilies; i++) {
		if (strcmp(m->families[i]->name, name) == 0) {
			found = m->families[i];
			break;
		}
	}
	if (found != NULL) {
		if (family_same(found, type, labels, nlabels, bounds, nbounds))
			f = found;
		else
			devid_error_set(e, DEVID_ECONFLICT,
			    "metric %s: registered before with another type or labels", name);
		goto out;
	}
	if (m->nfamilies == METRICS_MAX_FAMILIES) {
		devid_error_set(e, DEVID_ELIMIT, "metric %s: more than %d families", name,
		    METRICS_MAX_FAMILIES);
		goto out;
	}
	f = xcalloc(1, sizeof(*f));
	f->type = type;
	snprintf(f->name, sizeof(f->name), "%s", name);
	snprintf(f->help, sizeof(f->help), "%s", help);
	f->nlabels = nlabels;
	for (size_t i = 0; i < nlabels; i++)
		snprintf(f->labels[i], sizeof(f->labels[i]), "%s", labels[i]);
	f->nbounds = nbounds;
	for (size_t i = 0; i < nbounds; i++)
		f->bounds[i] = bounds[i];
	pthread_mutex_init(&f->lock, NULL);
	atomic_init(&f->nseries, 0);
	m->families[m->nfamilies++] = f;
out:
	pthread_mutex_unlock(&m->lock);
	return f;
}

static bool
series_is(const struct metric *s, const char *const *values, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(s->values[i], values[i]) != 0)
			return false;
	}
	return true;
}

struct metric *
metric_get(struct metric_family *f, const char *const *values)
{
	struct metric *s = NULL;
	size_t n, i;

	if (f == NULL)
		return NULL;
	for (i = 0; i < f->nlabels; i++) {
		if (values[i] == NULL || strlen(values[i]) > METRICS_MAX_LABEL_VALUE_LEN)
			return NULL;
	}
	n = atomic_load_explicit(&f->nseries, memory_order_acquire);
	for (i = 0; i < n; i++) {
		if (series_is(f->series[i], values, f->nlabels))
			return f->series[i];
	}

	pthread_mutex_lock(&f->lock);
	/* another thread may have added it since the unlocked scan */
	n = atomic_load_explicit(&f->nseries, memory_order_relaxed);
	for (; i < n; i++) {
		if (series_is(f->series[i], values, f->nlabels)) {
			s = f->series[i];
			goto out;
		}
	}
	if (n == METRICS_MAX_SERIES)
		goto out;
	s = xcalloc(1, sizeof(*s));
	s->f = f;
	for (i = 0; i < f->nlabels; i++)
		s->values[i] = xstrdup(values[i]);
	if (f->type == METRIC_HISTOGRAM) {
		s->buckets = xcalloc(f->nbounds + 1, sizeof(*s->buckets));
		for (i = 0; i <= f->nbounds; i++)
			atomic_init(&s->buckets[i], 0);
	}
	atomic_init(&s->value, 0);
	atomic_init(&s->sum_bits, 0); /* the bits of +0.0 */
	f->series[n] = s;
	atomic_store_explicit(&f->nseries, n + 1, memory_order_release);
out:
	pthread_mutex_unlock(&f->lock);
	return s;
}

void
metric_inc(struct metric *s)
{
	metric_add(s, 1);
}

void
metric_add(struct metric *s, int64_t n)
{
	if (s == NULL || s->f->type == METRIC_HISTOGRAM)
		return;
	if (s->f->type == METRIC_COUNTER && n < 0)
		return; /* a counter only goes up */
	atomic_fetch_add_explicit(&s->value, n, memory_order_relaxed);
}

void
metric_set(struct metric *s, int64_t v)
{
	if (s == NULL || s->f->type != METRIC_GAUGE)
		return;
	atomic_store_explicit(&s->value, v, memory_order_relaxed);
}

static double
bits_double(uint64_t b)
{
	double d;

	memcpy(&d, &b, sizeof(d));
	return d;
}

static uint64_t
double_bits(double d)
{
	uint64_t b;

	memcpy(&b, &d, sizeof(b));
	return b;
}

void
metric_observe(struct metric *s, double v)
{
	const struct metric_family *f;
	uint64_t old, new;
	size_t i;

	if (s == NULL || s->f->type != METRIC_HISTOGRAM || isnan(v))
		return;
	f = s->f;
	for (i = 0; i < f->nbounds && v > f->bounds[i]; i++)
		;
	atomic_fetch_add_explicit(&s->buckets[i], 1, memory_order_relaxed);
	old = atomic_load_explicit(&s->sum_bits, memory_order_relaxed);
	do {
		new = double_bits(bits_double(old) + v);
	} while (!atomic_compare_exchange_weak_explicit(
	    &s->sum_bits, &old, new, memory_order_relaxed, memory_order_relaxed));
	atomic_fetch_add_explicit(&s->value, 1, memory_order_relaxed);
}

int64_t
metric_value(const struct metric *s)
{
	if (s == NULL)
		return 0;
	return atomic_load_explicit(&((struct metric *)s)->value, memory_order_relaxed);
}

/* The shortest decimal that reads back as d; Prometheus spells infinities +Inf/-Inf. */
static void
format_double(char *buf, size_t len, double d)
{
	if (isinf(d)) {
		snprintf(buf, len, "%s", d > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (isnan(d)) {
		snprintf(buf, len, "NaN");
		return;
	}
	if (d > -1e15 && d < 1e15 && d == (double)(long long)d) {
		snprintf(buf, len, "%lld", (long long)d); /* 10, not 1e+01 */
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			return;
	}
}

/* Appends s escaped: in HELP text backslash and newline, in label values also '"'. */
static int
add_escaped(struct dynbuf *out, const char *s, bool quote)
{
	int rc = 0;

	for (; *s != '\0' && rc == 0; s++) {
		if (*s == '\\')
			rc = dynbuf_addstr(out, "\\\\");
		else if (*s == '\n')
			rc = dynbuf_addstr(out, "\\n");
		else if (*s == '"' && quote)
			rc = dynbuf_addstr(out, "\\\"");
		else
			rc = dynbuf_add(out, s, 1);
	}
	return rc;
}

/* name{l1="v1",...,le="..."}; le is an already formatted bound, or NULL. */
static int
add_labels(struct dynbuf *out, const char *name, const char *suffix, const char *const *labels,
    const char *const *values, size_t n, const char *le)
{
	int rc;

	if ((rc = dynbuf_addf(out, "%s%s", name, suffix)) != 0)
		return rc;
	if (n == 0 && le == NULL)
		return 0;
	if ((rc = dynbuf_addstr(out, "{")) != 0)
		return rc;
	for (size_t i = 0; i < n; i++) {
		if ((rc = dynbuf_addf(out, "%s%s=\"", i > 0 ? "," : "", labels[i])) != 0 ||
		    (rc = add_escaped(out, values[i], true)) != 0 ||
		    (rc = dynbuf_addstr(out, "\"")) != 0)
			return rc;
	}
	if (le != NULL && (rc = dynbuf_addf(out, "%sle=\"%s\"", n > 0 ? "," : "", le)) != 0)
		return rc;
	return dynbuf_addstr(out, "}");
}

/* The sample name of series s, with the family's labels. */
static int
add_sample_name(struct dynbuf *out, const struct metric *s, const char *suffix, const char *le)
{
	const struct metric_family *f = s->f;
	const char *labels[METRICS_MAX_LABELS];

	for (size_t i = 0; i < f->nlabels; i++)
		labels[i] = f->labels[i];
	return add_labels(
	    out, f->name, suffix, labels, (const char *const *)s->values, f->nlabels, le);
}

static int
render_series(struct dynbuf *out, const struct metric *s)
{
	const struct metric_family *f = s->f;
	struct metric *w = (struct metric *)s; /* atomics are read through a non-const pointer */
	char num[40];
	uint64_t cum = 0;
	int rc;

	if (f->type != METRIC_HISTOGRAM) {
		if ((rc = add_sample_name(out, s, "", NULL)) != 0)
			return rc;
		return dynbuf_addf(out, " %" PRId64 "\n", metric_value(s));
	}
	for (size_t i = 0; i <= f->nbounds; i++) {
		cum += atomic_load_explicit(&w->buckets[i], memory_order_relaxed);
		format_double(num, sizeof(num), i < f->nbounds ? f->bounds[i] : INFINITY);
		if ((rc = add_sample_name(out, s, "_bucket", num)) != 0 ||
		    (rc = dynbuf_addf(out, " %" PRIu64 "\n", cum)) != 0)
			return rc;
	}
	format_double(num, sizeof(num),
	    bits_double(atomic_load_explicit(&w->sum_bits, memory_order_relaxed)));
	if ((rc = add_sample_name(out, s, "_sum", NULL)) != 0 ||
	    (rc = dynbuf_addf(out, " %s\n", num)) != 0)
		return rc;
	/* the count is the +Inf bucket, so the two always agree */
	if ((rc = add_sample_name(out, s, "_count", NULL)) != 0)
		return rc;
	return dynbuf_addf(out, " %" PRIu64 "\n", cum);
}

int
metrics_add_collector(struct metrics *m, int (*collect)(void *arg, struct dynbuf *out), void *arg)
{
	int rc = DEVID_ELIMIT;

	pthread_mutex_lock(&m->lock);
	if (m->ncollectors < METRICS_MAX_COLLECTORS) {
		m->collectors[m->ncollectors++] = (struct collector){collect, arg};
		rc = 0;
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}

int
metrics_write_family(struct dynbuf *out, enum metric_type type, const char *name, const char *help)
{
	int rc;

	if ((rc = dynbuf_addf(out, "# HELP %s ", name)) != 0 ||
	    (rc = add_escaped(out, help, false)) != 0)
		return rc;
	return dynbuf_addf(out, "\n# TYPE %s %s\n", name, type_names[type]);
}

int
metrics_write_sample(struct dynbuf *out, const char *name, const char *const *labels,
    const char *const *values, size_t nlabels, double v)
{
	char num[40];
	int rc;

	format_double(num, sizeof(num), v);
	if ((rc = add_labels(out, name, "", labels, values, nlabels, NULL)) != 0)
		return rc;
	return dynbuf_addf(out, " %s\n", num);
}

int
metrics_write_histogram(struct dynbuf *out, const char *name, const char *const *labels,
    const char *const *values, size_t nlabels, const double *bounds, const uint64_t *counts,
    size_t nbounds, double sum)
{
	char num[40];
	uint64_t cum = 0;
	int rc;

	for (size_t i = 0; i <= nbounds; i++) {
		cum += counts[i];
		format_double(num, sizeof(num), i < nbounds ? bounds[i] : INFINITY);
		if ((rc = add_labels(out, name, "_bucket", labels, values, nlabels, num)) != 0 ||
		    (rc = dynbuf_addf(out, " %" PRIu64 "\n", cum)) != 0)
			return rc;
	}
	format_double(num, sizeof(num), sum);
	if ((rc = add_labels(out, name, "_sum", labels, values, nlabels, NULL)) != 0 ||
	    (rc = dynbuf_addf(out, " %s\n", num)) != 0 ||
	    (rc = add_labels(out, name, "_count", labels, values, nlabels, NULL)) != 0)
		return rc;
	return dynbuf_addf(out, " %" PRIu64 "\n", cum);
}

int
metrics_render(struct metrics *m, struct dynbuf *out)
{
	struct collector collectors[METRICS_MAX_COLLECTORS];
	size_t nf, nc;
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	nf = m->nfamilies;
	nc = m->ncollectors;
	memcpy(collectors, m->collectors, nc * sizeof(collectors[0]));
	pthread_mutex_unlock(&m->lock);
	/* families are never removed, and families[0 .. nf) never change once added */
	for (size_t i = 0; i < nf && rc == 0; i++) {
		struct metric_family *f = m->families[i];
		size_t n = atomic_load_explicit(&f->nseries, memory_order_acquire);

		if ((rc = metrics_write_family(out, f->type, f->name, f->help)) != 0)
			break;
		for (size_t j = 0; j < n && rc == 0; j++)
			rc = render_series(out, f->series[j]);
	}
	for (size_t i = 0; i < nc && rc == 0; i++)
		rc = collectors[i].collect(collectors[i].arg, out);
	return rc;
}
