/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>

#include "http/metrics.h"
#include "http/service_metrics.h"
#include "lib/banned.h"

/* Rows of the jobs gauge: two states of every connector type, with room to spare. */
#define JOB_COUNTS_MAX (4 * SERVICE_METRICS_MAX_TYPES)

/* A counter family with one label: one series per value of names[0 .. n). */
static int
counter_by(struct dynbuf *out, const char *name, const char *help, const char *label,
    const char *const *names, _Atomic uint64_t *c, size_t n)
{
	int rc = metrics_write_family(out, METRIC_COUNTER, name, help);

	for (size_t i = 0; i < n && rc == 0; i++)
		rc = metrics_write_sample(
		    out, name, &label, &names[i], 1, (double)counter_read(&c[i]));
	return rc;
}

/* The samples of one latency histogram series. */
static int
histogram(struct dynbuf *out, const char *name, const char *const *labels,
    const char *const *values, size_t nlabels, const double *bounds, struct latency_histogram *h)
{
	uint64_t counts[SERVICE_LATENCY_BUCKETS + 1];

	for (size_t i = 0; i <= SERVICE_LATENCY_BUCKETS; i++)
		counts[i] = counter_read(&h->count[i]);
	return metrics_write_histogram(out, name, labels, values, nlabels, bounds, counts,
	    SERVICE_LATENCY_BUCKETS, (double)counter_read(&h->sum_ns) / 1e9);
}

static int
ingest(struct dynbuf *out, struct service_metrics *sm)
{
	static const char *const src[] = {"source"}, *const src_rule[] = {"source", "rule"};
	int rc = 0;

	if ((rc = counter_by(out, "devid_batches_ingested_total",
		 "Batches stored, published by a vendor or imported by an OEM.", src[0],
		 ingest_source_names, sm->batches, INGEST_NSOURCES)) != 0 ||
	    (rc = counter_by(out, "devid_entries_ingested_total",
		 "Manifest entries (devices) stored with their batch.", src[0], ingest_source_names,
		 sm->entries, INGEST_NSOURCES)) != 0 ||
	    (rc = metrics_write_family(out, METRIC_COUNTER, "devid_batches_refused_total",
		 "Batches refused as a whole, by the rule that refused them.")) != 0)
		return rc;
	for (size_t s = 0; s < INGEST_NSOURCES; s++)
		for (size_t r = 0; r < INGEST_NRULES && rc == 0; r++) {
			const char *v[] = {ingest_source_names[s], ingest_rule_names[r]};

			rc = metrics_write_sample(out, "devid_batches_refused_total", src_rule, v,
			    2, (double)counter_read(&sm->batches_refused[s][r]));
		}
	if (rc != 0 ||
	    (rc = metrics_write_family(out, METRIC_COUNTER, "devid_entries_refused_total",
		 "Manifest entries refused one by one: a failed check, or a chip "
		 "stored already.")) != 0)
		return rc;
	for (size_t s = 0; s < INGEST_NSOURCES; s++)
		for (size_t r = 0; r < ENTRY_NRULES && rc == 0; r++) {
			const char *v[] = {ingest_source_names[s], entry_rule_names[r]};

			rc = metrics_write_sample(out, "devid_entries_refused_total", src_rule, v,
			    2, (double)counter_read(&sm->entries_refused[s][r]));
		}
	return rc;
}

static int
est(struct dynbuf *out, struct service_metrics *sm)
{
	static const char *const ops[] = {"enroll", "reenroll", "tpm_enroll"},
				 *const objects[] = {"object"};
	int rc;

	if ((rc = counter_by(out, "devid_est_issued_total",
		 "Operational certificates issued by EST (simpleenroll, simplereenroll, "
		 "tpm/enroll).",
		 "op", ops, sm->est_issued, EST_NOPS)) != 0 ||
	    (rc = counter_by(out, "devid_est_refused_total",
		 "EST enrollments refused, by the first check that failed.", "reason",
		 est_reason_names, sm->est_refused, EST_NREFUSALS)) != 0 ||
	    (rc = metrics_write_family(out, METRIC_HISTOGRAM, "devid_ca_sign_duration_seconds",
		 "Time a tenant CA's key took to sign an operational certificate or a CRL.")) != 0)
		return rc;
	for (size_t i = 0; i < CA_NOBJECTS && rc == 0; i++)
		rc = histogram(out, "devid_ca_sign_duration_seconds", objects, &ca_object_names[i],
		    1, service_sign_bounds, &sm->sign[i]);
	return rc;
}

static int
clone_detection(struct dynbuf *out, struct service_metrics *sm)
{
	int rc;

	if ((rc = counter_by(out, "devid_sightings_total",
		 "Sightings of devices recorded for clone detection: EST enrollments and the "
		 "devices of product clouds' seen reports.",
		 "source", sighting_source_names, sm->sightings, SIGHTING_NSOURCES)) != 0 ||
	    (rc = counter_by(out, "devid_clone_suspicions_total",
		 "Devices suspected of being cloned, by the rule that raised the suspicion.",
		 "rule", clone_rule_names, sm->clone_suspicions, CLONE_NRULES)) != 0 ||
	    (rc = metrics_write_family(out, METRIC_COUNTER, "devid_clone_quarantines_total",
		 "Devices revoked (keyCompromise) by a tenant's clone policy.")) != 0)
		return rc;
	return metrics_write_sample(out, "devid_clone_quarantines_total", NULL, NULL, 0,
	    (double)counter_read(&sm->clone_quarantines));
}

/* The connector types the outbox has counted: the named slots, and "other" once used. */
static size_t
connector_slots(struct service_metrics *sm, struct connector_metrics **slots, const char **names)
{
	size_t n = 0;

	for (size_t i = 0; i < SERVICE_METRICS_MAX_TYPES; i++) {
		struct connector_metrics *c = &sm->types[i];

		if (atomic_load_explicit(&c->state, memory_order_acquire) != 2)
			break;
		slots[n] = c;
		names[n++] = c->type;
	}
	for (size_t r = 0; r < DELIVERY_NRESULTS; r++) {
		if (counter_read(&sm->other.deliveries[r]) > 0) {
			slots[n] = &sm->other;
			names[n++] = "other";
			break;
		}
	}
	return n;
}

static int
deliveries(struct dynbuf *out, struct service_metrics *sm)
{
	static const char *const type_result[] = {"connector_type", "result"};
	struct connector_metrics *slots[SERVICE_METRICS_MAX_TYPES + 1];
	const char *names[SERVICE_METRICS_MAX_TYPES + 1];
	size_t n = connector_slots(sm, slots, names);
	int rc;

	if ((rc = metrics_write_family(out, METRIC_COUNTER, "devid_deliveries_total",
		 "Deliveries of a chunk of devices to a product cloud, by how they ended.")) != 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		for (size_t r = 0; r < DELIVERY_NRESULTS && rc == 0; r++) {
			const char *v[] = {names[i], delivery_result_names[r]};

			rc = metrics_write_sample(out, "devid_deliveries_total", type_result, v, 2,
			    (double)counter_read(&slots[i]->deliveries[r]));
		}
	if (rc != 0 ||
	    (rc = metrics_write_family(out, METRIC_COUNTER, "devid_delivered_devices_total",
		 "Devices carried by those deliveries, by how the delivery ended.")) != 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		for (size_t r = 0; r < DELIVERY_NRESULTS && rc == 0; r++) {
			const char *v[] = {names[i], delivery_result_names[r]};

			rc = metrics_write_sample(out, "devid_delivered_devices_total", type_result,
			    v, 2, (double)counter_read(&slots[i]->devices[r]));
		}
	if (rc != 0 ||
	    (rc = metrics_write_family(out, METRIC_HISTOGRAM, "devid_delivery_duration_seconds",
		 "Time a connector took to deliver one chunk to its cloud.")) != 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		for (size_t r = 0; r < DELIVERY_NRESULTS && rc == 0; r++) {
			const char *v[] = {names[i], delivery_result_names[r]};

			rc = histogram(out, "devid_delivery_duration_seconds", type_result, v, 2,
			    service_delivery_bounds, &slots[i]->duration[r]);
		}
	if (rc != 0 ||
	    (rc = metrics_write_family(out, METRIC_COUNTER, "devid_jobs_dead_total",
		 "Jobs this server's outbox gave up on after their last attempt.")) != 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = metrics_write_sample(out, "devid_jobs_dead_total", type_result, &names[i], 1,
		    (double)counter_read(&slots[i]->dead));
	return rc;
}

/* The jobs gauge from the database, and whether the database answered. */
static int
jobs(struct dynbuf *out, struct service *svc)
{
	static const char *const type_state[] = {"connector_type", "state"};
	struct job_count counts[JOB_COUNTS_MAX];
	struct devid_error e;
	size_t n = 0;
	bool up;
	int rc;

	devid_error_clear(&e);
	up = service_job_counts(svc, counts, JOB_COUNTS_MAX, &n, &e) == 0;
	if ((rc = metrics_write_family(out, METRIC_GAUGE, "devid_jobs",
		 "Delivery jobs pending or dead in the database (every server's), by connector "
		 "type.")) != 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const char *v[] = {counts[i].type, counts[i].state};

		rc = metrics_write_sample(out, "devid_jobs", type_state, v, 2, (double)counts[i].n);
	}
	if (rc != 0 ||
	    (rc = metrics_write_family(out, METRIC_GAUGE, "devid_database_up",
		 "1 if the database answered this scrape's query, else 0.")) != 0)
		return rc;
	return metrics_write_sample(out, "devid_database_up", NULL, NULL, 0, up ? 1 : 0);
}

static int
pool(struct dynbuf *out, struct service *svc)
{
	struct store_pool_stats st;
	int rc;

	store_pool_stats(svc->store, &st);
	if ((rc = metrics_write_family(out, METRIC_GAUGE, "devid_db_pool_connections",
		 "Database connections this server holds open.")) != 0 ||
	    (rc = metrics_write_sample(
		 out, "devid_db_pool_connections", NULL, NULL, 0, (double)st.size)) != 0 ||
	    (rc = metrics_write_family(out, METRIC_GAUGE, "devid_db_pool_connections_in_use",
		 "Database connections in use by a request or a worker now.")) != 0 ||
	    (rc = metrics_write_sample(
		 out, "devid_db_pool_connections_in_use", NULL, NULL, 0, (double)st.in_use)) != 0 ||
	    (rc = metrics_write_family(out, METRIC_COUNTER, "devid_db_pool_waits_total",
		 "Times a request or worker found every database connection in use and "
		 "waited.")) != 0 ||
	    (rc = metrics_write_sample(
		 out, "devid_db_pool_waits_total", NULL, NULL, 0, (double)st.waits)) != 0 ||
	    (rc = metrics_write_family(out, METRIC_COUNTER, "devid_db_pool_wait_seconds_total",
		 "Time spent waiting for a free database connection.")) != 0 ||
	    (rc = metrics_write_sample(out, "devid_db_pool_wait_seconds_total", NULL, NULL, 0,
		 (double)st.wait_ns / 1e9)) != 0 ||
	    (rc = metrics_write_family(out, METRIC_COUNTER, "devid_db_checkpoints_total",
		 "SQLite: checkpoints of the write-ahead log run by the pool's checkpointer.")) !=
		0)
		return rc;
	return metrics_write_sample(
	    out, "devid_db_checkpoints_total", NULL, NULL, 0, (double)st.checkpoints);
}

int
service_metrics_collect(void *arg, struct dynbuf *out)
{
	struct service *svc = arg;
	struct service_metrics *sm = &svc->metrics;
	int rc;

	if ((rc = ingest(out, sm)) != 0 ||
	    (rc = counter_by(out, "devid_claims_total", "Claims of a batch, by their answer.",
		 "result", claim_result_names, sm->claims, CLAIM_NRESULTS)) != 0 ||
	    (rc = jobs(out, svc)) != 0 || (rc = deliveries(out, sm)) != 0 ||
	    (rc = est(out, sm)) != 0 || (rc = clone_detection(out, sm)) != 0)
		return rc;
	return pool(out, svc);
}
