/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The outbox's contract with connectors (struct delivery: throttle, result, revoke), on SQLite
 * and on PostgreSQL, through a fake connector type that does what the test tells it:
 * - result: each device's outcome is stored with the job's progress, shown by
 *   service_job_devices (filtered by status, another tenant's job not found) and counted by
 *   service_jobs; a chunk retried whole overwrites the outcomes (one row a device), and a
 *   failed chunk keeps what it learnt.
 * - revoke: a remove written by a revoke says so, one written by a release does not.
 * - throttle: per-call buckets in the database hold a connector to its rate (burst, then one
 *   per interval), renew the job's lease while they wait, and fail at once when a wait would
 *   outrun the lease.
 * Usage: test_outbox sqlite|postgres.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "service/service.h"
#include "factory/factory.h"
#include "lib/base64.h"
#include "lib/x509.h"
#include "reelkit.h"
#include "test.h"
#include "lib/banned.h"

static char tmp[PATH_MAX];
static struct store *st;

/* what the fake connector does on its next delivery, and what it saw */
struct fake {
	int rc; /* returned */
	const char *fail_udid; /* this device's result is failed (NULL: none) */
	int calls; /* throttle calls per device */
	double rate;
	int throttle_rc; /* the last throttle's return */
	bool remove, revoke;
	size_t n;
	int deliveries;
	int64_t job_next_at; /* jobs.next_at read at the end of the delivery */
};
static struct fake fake;

static int
fake_validate(const char *type, const json_t *config, struct devid_error *e)
{
	(void)config;
	return strcmp(type, "fake") == 0 ? 0 : devid_error_set(e, DEVID_EINVAL, "not fake");
}

static json_t *
fake_redact(const char *type, const json_t *config)
{
	(void)type;
	return json_deep_copy(config);
}

static int
fake_deliver(
    const char *type, const json_t *config, const struct delivery *d, struct devid_error *e)
{
	(void)type;
	(void)config;
	fake.deliveries++;
	fake.remove = d->remove;
	fake.revoke = d->revoke;
	fake.n = d->n;
	fake.throttle_rc = 0;
	for (size_t i = 0; i < d->n; i++) {
		bool failed =
		    fake.fail_udid != NULL && strcmp(d->devices[i].udid, fake.fail_udid) == 0;

		for (int c = 0; c < fake.calls && fake.throttle_rc == 0; c++)
			fake.throttle_rc = d->throttle(d->ctx, "CallA", fake.rate, e);
		if (fake.throttle_rc != 0)
			return fake.throttle_rc;
		d->result(
		    d->ctx, i, failed ? DELIVERY_FAILED : DELIVERY_OK, failed ? "nope" : NULL);
	}
	{
		struct db *db = store_acquire(st);
		struct db_rows *r;

		if (db_query(db, "SELECT MAX(next_at) FROM jobs WHERE state = 'pending'", NULL, 0,
			&r, NULL) == 0) {
			fake.job_next_at = db_rows_int(r, 0, 0);
			db_rows_free(r);
		}
		store_release(st, db);
	}
	return fake.rc != 0 ? devid_error_set(e, fake.rc, "fake: told to fail") : 0;
}

static const struct provisioner fake_prov = {
    .validate = fake_validate, .redact = fake_redact, .deliver = fake_deliver};

static int64_t
count(const char *sql)
{
	struct db *db = store_acquire(st);
	struct db_rows *r;
	int64_t n = -1;

	if (db_query(db, sql, NULL, 0, &r, NULL) == 0) {
		n = db_rows_int(r, 0, 0);
		db_rows_free(r);
	}
	store_release(st, db);
	return n;
}

static void
exec(const char *sql)
{
	struct db *db = store_acquire(st);

	if (db_exec(db, sql, NULL, 0, NULL, NULL) != 0)
		exit(1);
	store_release(st, db);
}

/* The newest job of the tenant, as service_jobs shows it (new reference). */
static json_t *
newest_job(struct service *svc, const struct principal *p)
{
	struct devid_error e;
	json_t *out = NULL, *j;

	if (service_jobs(svc, p, NULL, &out, &e) != 0)
		return NULL;
	j = json_incref(json_array_get(json_object_get(out, "jobs"), 0));
	json_decref(out);
	return j;
}

static int64_t
counted(const json_t *job, const char *what)
{
	return json_integer_value(json_object_get(json_object_get(job, "devices"), what));
}

static size_t
listed(struct service *svc, const struct principal *p, int64_t id, const char *status, json_t **out)
{
	struct devid_error e;

	*out = NULL;
	if (service_job_devices(svc, p, id, status, NULL, out, &e) != 0)
		return (size_t)-1;
	return json_array_size(json_object_get(*out, "devices"));
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
	char url[PATH_MAX + 16], vdir[PATH_MAX * 2], out[PATH_MAX * 2], *root, *signer, hex[65];
	struct mint_opts o = {.batch = "B1", .count = 3, .threads = 1};
	struct service svc = {.verify_threads = 1, .prov = &fake_prov, .job_lease = 3};
	struct principal vendor = {0}, oem = {0}, oem2 = {0};
	struct manifest_report mr;
	struct mint_result res;
	struct devid_error e;
	struct batch_rec b;
	struct db *db;
	json_t *body, *job, *list;
	char *text, *code, first_udid[80] = "", fail_udid[80] = "";
	uint8_t md[32];
	X509 *sc;
	bool changed, pg = argc > 1 && strcmp(argv[1], "postgres") == 0;
	int64_t id;

	devid_error_clear(&e);
	if (pg && getenv("DEVID_TEST_PG_URL") == NULL)
		test_skip("DEVID_TEST_PG_URL not set (run under scripts/with-postgres)");
	test_tmpdir(tmp, sizeof(tmp), "outbox");
	reelkit_workdir(tmp);
	if (pg)
		snprintf(url, sizeof(url), "%s", getenv("DEVID_TEST_PG_URL"));
	else
		snprintf(url, sizeof(url), "sqlite:%s/devid.db", tmp);
	snprintf(vdir, sizeof(vdir), "%s/v", tmp);
	snprintf(out, sizeof(out), "%s/B1", tmp);
	o.dir = vdir;
	o.out = out;
	if (vendor_init(vdir, "ACME", &e) != 0 || vendor_mint(&o, &res, &e) != 0) {
		printf("vendor: %s\n", e.msg);
		return 1;
	}
	if (store_open(url, 2, &st, &e) != 0) {
		printf("store: %s\n", e.msg);
		return 1;
	}
	svc.store = st;
	root = reelkit_read_text(reelkit_path("v", "root.pem"));
	signer = reelkit_read_text(reelkit_path("v", "signer.pem"));
	sc = x509_load_pem_file(reelkit_path("v", "signer.pem"), &e);
	x509_sha256(sc, md);
	hex_encode(md, 32, hex);
	X509_free(sc);
	db = store_acquire(st);
	if (store_tenant_add(db, "ACME", TENANT_VENDOR, &vendor.tenant.id, &e) != 0 ||
	    store_tenant_add(db, "OEM1", TENANT_OEM, &oem.tenant.id, &e) != 0 ||
	    store_tenant_add(db, "OEM2", TENANT_OEM, &oem2.tenant.id, &e) != 0 ||
	    store_trust_add(db, vendor.tenant.id, root, signer, hex, &e) != 0) {
		printf("set-up: %s\n", e.msg);
		return 1;
	}
	store_release(st, db);
	free(root);
	free(signer);
	snprintf(vendor.tenant.name, sizeof(vendor.tenant.name), "ACME");
	vendor.tenant.kind = TENANT_VENDOR;
	vendor.role = ROLE_VENDOR;
	snprintf(oem.tenant.name, sizeof(oem.tenant.name), "OEM1");
	oem.tenant.kind = TENANT_OEM;
	oem.role = ROLE_ADMIN;
	snprintf(oem.token_id, sizeof(oem.token_id), "0001");
	snprintf(oem.actor, sizeof(oem.actor), "token:1:test");
	snprintf(oem2.tenant.name, sizeof(oem2.tenant.name), "OEM2");
	oem2.tenant.kind = TENANT_OEM;
	oem2.role = ROLE_ADMIN;
	snprintf(oem2.token_id, sizeof(oem2.token_id), "0002");

	body = json_pack("{s:o, s:o}", "descriptor",
	    reelkit_load_json(reelkit_path("B1", "batch.json")), "manifest",
	    reelkit_load_json(reelkit_path("B1", "manifest.json")));
	text = json_dumps(body, JSON_COMPACT);
	CHECK(service_publish(&svc, &vendor, (const uint8_t *)text, strlen(text), &mr, &e) == 0,
	    "publish: %s", e.msg);
	manifest_report_release(&mr);
	free(text);
	json_decref(body);
	body = json_pack("{s:s, s:s, s:{}}", "type", "fake", "mode", "auto", "config");
	CHECK(service_connector_put(&svc, &oem, "FAKE", body, &changed, &e) == 0, "connector: %s",
	    e.msg);
	json_decref(body);
	{
		struct db_rows *r;

		db = store_acquire(st);
		db_query(db, "SELECT udid FROM devices ORDER BY id", NULL, 0, &r, NULL);
		snprintf(first_udid, sizeof(first_udid), "%s", db_rows_text(r, 0, 0, NULL));
		snprintf(fail_udid, sizeof(fail_udid), "%s", db_rows_text(r, 1, 0, NULL));
		db_rows_free(r);
		store_release(st, db);
	}
	code = reelkit_read_text(reelkit_path("B1", "claim.txt"));
	code[strcspn(code, "\n")] = '\0';
	CHECK(service_claim(&svc, &oem, "127.0.0.1", (const uint8_t *)code, strlen(code), &b,
		  &changed, NULL, &e) == 0,
	    "claim: %s", e.msg);
	free(code);

	/* 1. an add: one device failed, the connector moves on; outcomes stored and counted */
	fake = (struct fake){.fail_udid = fail_udid, .calls = 1, .rate = 1000};
	CHECK(service_outbox_step(&svc, &e) == 1, "step: %s", e.msg);
	CHECK(fake.deliveries == 1 && fake.n == 3 && !fake.remove && !fake.revoke,
	    "the add delivered 3 devices (%zu, remove %d revoke %d)", fake.n, fake.remove,
	    fake.revoke);
	job = newest_job(&svc, &oem);
	id = json_integer_value(json_object_get(job, "id"));
	CHECK(job != NULL &&
		strcmp(json_string_value(json_object_get(job, "state")), "done") == 0 &&
		counted(job, "ok") == 2 && counted(job, "failed") == 1 &&
		json_object_get(job, "reason") == NULL,
	    "the add job: done, 2 ok, 1 failed, no reason: %s", job ? json_dumps(job, 0) : "none");
	json_decref(job);
	CHECK(listed(&svc, &oem, id, "failed", &list) == 1 &&
		strcmp(json_string_value(json_object_get(
			   json_array_get(json_object_get(list, "devices"), 0), "udid")),
		    fail_udid) == 0 &&
		strcmp(json_string_value(json_object_get(
			   json_array_get(json_object_get(list, "devices"), 0), "message")),
		    "nope") == 0,
	    "?status=failed lists the failed device with its message");
	json_decref(list);
	CHECK(listed(&svc, &oem, id, "ok", &list) == 2, "?status=ok lists 2");
	json_decref(list);
	CHECK(listed(&svc, &oem, id, NULL, &list) == 3, "all 3 listed");
	json_decref(list);
	CHECK(service_job_devices(&svc, &oem2, id, NULL, NULL, &list, &e) == DEVID_ENOTFOUND,
	    "another tenant's job is not found");
	CHECK(service_job_devices(&svc, &oem, id + 1000, NULL, NULL, &list, &e) == DEVID_ENOTFOUND,
	    "a missing job is not found");
	CHECK(service_job_devices(&svc, &oem, id, "pending", NULL, &list, &e) == DEVID_EINVAL,
	    "status is ok or failed");

	/* 2. a chunk that fails keeps its outcomes; its retry overwrites them, one row each */
	body = json_pack("{s:s, s:s}", "connector", "FAKE", "batch", "ACME/B1");
	CHECK(service_provision(&svc, &oem, body, &list, &e) == 0, "trigger: %s", e.msg);
	json_decref(body);
	json_decref(list);
	fake = (struct fake){.rc = DEVID_EIO, .fail_udid = fail_udid, .calls = 1, .rate = 1000};
	CHECK(service_outbox_step(&svc, &e) == 1, "step: %s", e.msg);
	job = newest_job(&svc, &oem);
	id = json_integer_value(json_object_get(job, "id"));
	CHECK(strcmp(json_string_value(json_object_get(job, "state")), "pending") == 0 &&
		json_integer_value(json_object_get(job, "attempts")) == 1 &&
		counted(job, "ok") == 2 && counted(job, "failed") == 1,
	    "a failed chunk: pending, 1 attempt, its outcomes kept: %s", json_dumps(job, 0));
	json_decref(job);
	exec("UPDATE jobs SET next_at = 0 WHERE state = 'pending'");
	fake = (struct fake){.calls = 1, .rate = 1000};
	CHECK(service_outbox_step(&svc, &e) == 1 && fake.deliveries == 1, "retry: %s", e.msg);
	job = newest_job(&svc, &oem);
	CHECK(strcmp(json_string_value(json_object_get(job, "state")), "done") == 0 &&
		counted(job, "ok") == 3 && counted(job, "failed") == 0,
	    "the retry: done, 3 ok: %s", json_dumps(job, 0));
	json_decref(job);
	{
		char sql[128];

		snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM job_devices WHERE job_id = %lld",
		    (long long)id);
		CHECK(count(sql) == 3, "one row a device after a retry (%lld)",
		    (long long)count(sql));
	}

	/* 3. throttle: burst then the rate, from a bucket in the database; the lease renewed */
	body = json_pack("{s:s, s:s}", "connector", "FAKE", "batch", "ACME/B1");
	CHECK(service_provision(&svc, &oem, body, &list, &e) == 0, "trigger: %s", e.msg);
	json_decref(body);
	json_decref(list);
	{
		double t0 = now_s(), dt;
		int64_t started = time(NULL);

		/* 3 devices x 12 calls at 10/s, burst 10: 26 calls wait, 100 ms each */
		fake = (struct fake){.calls = 12, .rate = 10};
		CHECK(
		    service_outbox_step(&svc, &e) == 1 && fake.throttle_rc == 0, "step: %s", e.msg);
		dt = now_s() - t0;
		CHECK(dt >= 2.5 && dt < 8.0, "36 calls at 10/s with a burst of 10 took %.2f s", dt);
		CHECK(
		    count(
			"SELECT COUNT(*) FROM rate_buckets WHERE name LIKE 'connector:%:CallA'") ==
			1,
		    "the bucket is named by connector and call");
		CHECK(fake.job_next_at >= started + 3 + 1,
		    "the lease (3 s) was renewed while the chunk waited (next_at %lld, start %lld)",
		    (long long)fake.job_next_at, (long long)started);
	}
	/* a wait beyond the lease fails the chunk at once, with the reason */
	body = json_pack("{s:s, s:s}", "connector", "FAKE", "batch", "ACME/B1");
	CHECK(service_provision(&svc, &oem, body, &list, &e) == 0, "trigger: %s", e.msg);
	json_decref(body);
	json_decref(list);
	{
		double t0 = now_s(), dt;

		exec("DELETE FROM rate_buckets");
		fake = (struct fake){.calls = 2, .rate = 0.01};
		CHECK(service_outbox_step(&svc, &e) == 1 && fake.throttle_rc == DEVID_ELIMIT,
		    "a wait of 100 s is refused (%d)", fake.throttle_rc);
		dt = now_s() - t0;
		CHECK(dt < 2.0, "... at once (%.2f s)", dt);
		job = newest_job(&svc, &oem);
		CHECK(strstr(json_string_value(json_object_get(job, "lastError")), "lease") != NULL,
		    "lastError names the lease: %s", json_dumps(job, 0));
		json_decref(job);
		exec("UPDATE jobs SET state = 'dead' WHERE state = 'pending'");
	}

	/* 4. revoke vs release */
	fake = (struct fake){.calls = 1, .rate = 1000};
	CHECK(service_revoke(&svc, &oem, first_udid, NULL, &e) == 0, "revoke: %s", e.msg);
	CHECK(service_outbox_step(&svc, &e) == 1 && fake.remove && fake.revoke && fake.n == 1,
	    "a revoke's remove says revoke");
	job = newest_job(&svc, &oem);
	CHECK(strcmp(json_string_value(json_object_get(job, "reason")), "revoke") == 0,
	    "the job shows reason revoke: %s", json_dumps(job, 0));
	json_decref(job);
	fake = (struct fake){.calls = 1, .rate = 1000};
	CHECK(service_release(&svc, &oem, "ACME", "B1", &e) == 0, "release: %s", e.msg);
	CHECK(service_outbox_step(&svc, &e) == 1 && fake.remove && !fake.revoke && fake.n == 3,
	    "a release's remove does not say revoke (%zu devices)", fake.n);
	job = newest_job(&svc, &oem);
	CHECK(strcmp(json_string_value(json_object_get(job, "reason")), "release") == 0,
	    "the job shows reason release: %s", json_dumps(job, 0));
	json_decref(job);

	store_close(st);
	test_rmdir(tmp);
	return test_done();
}
