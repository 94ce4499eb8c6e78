/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics.h - what the domain counts, in a form that costs an atomic add to update and knows
 * nothing of HTTP or of an exposition format: src/http/service_metrics.c renders it at
 * /metrics (docs/metrics.md lists every series).
 *
 * struct service_metrics lives inside struct service and starts zeroed with it (no set-up,
 * nothing to free). Every label is an enum of a few fixed values, or a connector type: at
 * most SERVICE_METRICS_MAX_TYPES types get their own series, any further ones share
 * "other", so no outside input can grow the label set. Updates never allocate and never
 * lock; a scrape reads them with relaxed loads (a sample may lag a concurrent update).
 */
#ifndef DEVID_SERVICE_METRICS_H
#define DEVID_SERVICE_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Why a batch (publish or import) was refused: the stage that refused it. */
enum ingest_rule {
	INGEST_RULE_AUTH, /* not a vendor token, another vendor's batch, a devid vendor's import */
	INGEST_RULE_FORMAT, /* the body, descriptor or manifest does not read */
	INGEST_RULE_TRUST, /* the signer is not trusted, or was removed from trust */
	INGEST_RULE_BATCH, /* a batch-wide rule: descriptor signature, count */
	INGEST_RULE_ENTRIES, /* one or more entries failed their checks */
	INGEST_RULE_DUPLICATE, /* the batch, or one of its chips, is stored already */
	INGEST_RULE_ERROR, /* the server failed (database, memory) */
	INGEST_NRULES
};

enum ingest_source { INGEST_VENDOR, INGEST_IMPORT, INGEST_NSOURCES };

/* Why a single entry was refused (an entry of a refused batch that passed is neither). */
enum entry_rule { ENTRY_RULE_CHECK, ENTRY_RULE_DUPLICATE, ENTRY_NRULES };

/* The answer to a claim. "wrong" covers every not-found case alike, as the API does. */
enum claim_result {
	CLAIM_RESULT_OK, /* bound now, or the owner's repeat */
	CLAIM_RESULT_WRONG,
	CLAIM_RESULT_RATE_LIMITED,
	CLAIM_RESULT_MALFORMED,
	CLAIM_RESULT_FORBIDDEN, /* not an OEM admin or operator */
	CLAIM_RESULT_ERROR,
	CLAIM_NRESULTS
};

/* How one delivery of a chunk to a product cloud ended. */
enum delivery_result {
	DELIVERY_RESULT_OK,
	DELIVERY_RESULT_FAILED, /* counted as an attempt, retried with backoff (or dead) */
	DELIVERY_RESULT_DEFERRED, /* the cloud said when to come back, or the lease moved on */
	DELIVERY_NRESULTS
};

/* How an operational certificate was asked for: simpleenroll, simplereenroll, or a TPM's
 * enrollment by credential activation (docs/tpm.md). */
enum est_op { EST_ENROLL, EST_REENROLL, EST_TPM_ENROLL, EST_NOPS };

/* Why an EST enrollment was refused; the first check that failed decides. */
enum est_reason {
	EST_REFUSED_REQUEST, /* the request did not read (CSR, content type): src/http */
	EST_REFUSED_NO_CERTIFICATE, /* no client certificate */
	EST_REFUSED_UNKNOWN_DEVICE, /* the client certificate's key is no device of devid's */
	EST_REFUSED_NOT_CLAIMED,
	EST_REFUSED_WRONG_TENANT, /* the label names another tenant than the owner */
	EST_REFUSED_NO_CA, /* the owner has no operational CA */
	EST_REFUSED_AUTHENTICATION, /* the certificate presented does not authenticate it */
	EST_REFUSED_REVOKED,
	EST_REFUSED_CSR, /* the CSR's key or subject is not acceptable */
	EST_REFUSED_QUOTA,
	EST_REFUSED_TPM_KEYS, /* a TPM's AK, signing key, Certify or CSR proves nothing */
	EST_REFUSED_ACTIVATION, /* a TPM activation unknown, used, expired or wrongly answered */
	EST_REFUSED_ERROR, /* the server failed (database, CA key, memory) */
	EST_NREFUSALS
};

/* Where a sighting came from (clone detection): an EST enrollment or a product cloud's report. */
enum sighting_source { SIGHTING_EST, SIGHTING_REPORT, SIGHTING_NSOURCES };

/* The clone-detection rules (docs/clone-detection.md), in clone_rule_names' order. */
enum clone_rule {
	CLONE_CONCURRENT_ORIGINS,
	CLONE_SUPERSEDED_CERTIFICATE,
	CLONE_ENROLLMENT_RATE,
	CLONE_NRULES
};

enum ca_object { CA_SIGNED_CERTIFICATE, CA_SIGNED_CRL, CA_NOBJECTS };

/* Histogram bucket bounds, in seconds: each latency has its own set of this many. */
#define SERVICE_LATENCY_BUCKETS 14
extern const double service_delivery_bounds[SERVICE_LATENCY_BUCKETS];
extern const double service_sign_bounds[SERVICE_LATENCY_BUCKETS];

struct latency_histogram {
	/* count[i]: observations in (bounds[i-1], bounds[i]]; count[BUCKETS]: above the last */
	_Atomic uint64_t count[SERVICE_LATENCY_BUCKETS + 1];
	_Atomic uint64_t sum_ns;
};

#define SERVICE_METRICS_MAX_TYPES 8
#define SERVICE_METRICS_TYPE_LEN 31

/* The outbox's counts for one connector type. */
struct connector_metrics {
	_Atomic int state; /* 0 free, 1 being named, 2 named (type may be read) */
	char type[SERVICE_METRICS_TYPE_LEN + 1];
	_Atomic uint64_t deliveries[DELIVERY_NRESULTS];
	_Atomic uint64_t devices[DELIVERY_NRESULTS]; /* the devices those deliveries carried */
	struct latency_histogram duration[DELIVERY_NRESULTS];
	_Atomic uint64_t dead; /* jobs this server's outbox gave up on */
};

struct service_metrics {
	_Atomic uint64_t batches[INGEST_NSOURCES];
	_Atomic uint64_t entries[INGEST_NSOURCES];
	_Atomic uint64_t batches_refused[INGEST_NSOURCES][INGEST_NRULES];
	_Atomic uint64_t entries_refused[INGEST_NSOURCES][ENTRY_NRULES];
	_Atomic uint64_t claims[CLAIM_NRESULTS];
	_Atomic uint64_t est_issued[EST_NOPS]; /* by enum est_op */
	_Atomic uint64_t est_refused[EST_NREFUSALS];
	struct latency_histogram sign[CA_NOBJECTS];
	_Atomic uint64_t sightings[SIGHTING_NSOURCES];
	_Atomic uint64_t clone_suspicions[CLONE_NRULES];
	_Atomic uint64_t clone_quarantines; /* devices revoked by the clone policy */
	struct connector_metrics types[SERVICE_METRICS_MAX_TYPES];
	struct connector_metrics other; /* every type past the first MAX_TYPES */
};

extern const char *const ingest_rule_names[INGEST_NRULES];
extern const char *const ingest_source_names[INGEST_NSOURCES];
extern const char *const entry_rule_names[ENTRY_NRULES];
extern const char *const claim_result_names[CLAIM_NRESULTS];
extern const char *const delivery_result_names[DELIVERY_NRESULTS];
extern const char *const est_reason_names[EST_NREFUSALS];
extern const char *const ca_object_names[CA_NOBJECTS];
extern const char *const clone_rule_names[CLONE_NRULES];
extern const char *const sighting_source_names[SIGHTING_NSOURCES];

/* Adds n to a counter. */
void counter_add(_Atomic uint64_t *c, uint64_t n);
/* Reads a counter for rendering. */
uint64_t counter_read(_Atomic uint64_t *c);
/* A monotonic clock in nanoseconds, for latencies. */
int64_t monotonic_ns(void);
/* Counts one observation of ns nanoseconds into h, whose bounds are bounds. */
void latency_observe(struct latency_histogram *h, const double *bounds, int64_t ns);
/*
 * The counts of connector type `type` (any string; not kept): its own slot, taken on first
 * use, or m->other once every slot is taken. Never NULL.
 */
struct connector_metrics *connector_metrics_get(struct service_metrics *m, const char *type);

#endif
