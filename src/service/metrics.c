/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "service/metrics.h"
#include "lib/banned.h"

/* a webhook on the same machine answers in milliseconds; a cloud's Retry-After waits minutes */
const double service_delivery_bounds[SERVICE_LATENCY_BUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
/* a P-256 signature in software takes tens of microseconds, in an HSM up to a second */
const double service_sign_bounds[SERVICE_LATENCY_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

const char *const ingest_rule_names[INGEST_NRULES] = {
    "auth", "format", "trust", "batch", "entries", "duplicate", "error"};
const char *const ingest_source_names[INGEST_NSOURCES] = {"vendor", "import"};
const char *const entry_rule_names[ENTRY_NRULES] = {"check", "duplicate"};
const char *const claim_result_names[CLAIM_NRESULTS] = {
    "ok", "wrong", "rate_limited", "malformed", "forbidden", "error"};
const char *const delivery_result_names[DELIVERY_NRESULTS] = {"ok", "failed", "deferred"};
const char *const clone_rule_names[CLONE_NRULES] = {
    "concurrent-origins", "superseded-certificate", "enrollment-rate"};
const char *const sighting_source_names[SIGHTING_NSOURCES] = {"est", "report"};
const char *const est_reason_names[EST_NREFUSALS] = {"request", "no_certificate", "unknown_device",
    "not_claimed", "wrong_tenant", "no_ca", "authentication", "revoked", "csr", "quota", "tpm_keys",
    "activation", "error"};
const char *const ca_object_names[CA_NOBJECTS] = {"certificate", "crl"};

void
counter_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

uint64_t
counter_read(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

int64_t
monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void
latency_observe(struct latency_histogram *h, const double *bounds, int64_t ns)
{
	double secs;
	size_t i;

	if (ns < 0)
		ns = 0;
	secs = (double)ns / 1e9;
	for (i = 0; i < SERVICE_LATENCY_BUCKETS && secs > bounds[i]; i++)
		;
	counter_add(&h->count[i], 1);
	counter_add(&h->sum_ns, (uint64_t)ns);
}

struct connector_metrics *
connector_metrics_get(struct service_metrics *m, const char *type)
{
	/*
	 * Slots are named in order and never renamed: a thread that finds a slot being named
	 * waits the few instructions it takes, then compares, so two threads naming the same
	 * type meet in one slot.
	 */
	for (size_t i = 0; i < SERVICE_METRICS_MAX_TYPES; i++) {
		struct connector_metrics *c = &m->types[i];
		int state = atomic_load_explicit(&c->state, memory_order_acquire);

		if (state == 0) {
			int expect = 0;

			if (atomic_compare_exchange_strong_explicit(&c->state, &expect, 1,
				memory_order_acquire, memory_order_acquire)) {
				snprintf(c->type, sizeof(c->type), "%s", type);
				atomic_store_explicit(&c->state, 2, memory_order_release);
				return c;
			}
			state = expect;
		}
		while (state != 2)
			state = atomic_load_explicit(&c->state, memory_order_acquire);
		if (strncmp(c->type, type, SERVICE_METRICS_TYPE_LEN) == 0)
			return c;
	}
	return &m->other;
}
