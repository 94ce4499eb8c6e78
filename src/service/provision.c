/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "lib/claim.h"
#include "lib/json.h"
#include "lib/log.h"
#include "service/internal.h"
#include "lib/banned.h"

#define JOB_LEASE_SECS 120 /* a worker that dies gives its job back after this */
#define BACKOFF_BASE_SECS 2 /* first retry after about 2 s ... */
#define BACKOFF_CAP_SECS 300 /* ... doubling up to 5 minutes */
#define DEFAULT_MAX_ATTEMPTS 10
#define JOBS_LIST_MAX 200
#define JOB_DEVICES_PAGE 1000 /* devices a page of GET /api/v1/jobs/{id}/devices */

static bool
is_admin(const struct principal *p)
{
	return p->tenant.kind == TENANT_OEM && p->role == ROLE_ADMIN;
}

int
provision_enqueue(struct db *db, int64_t tenant_id, bool auto_only, bool remove, int64_t batch_id,
    const char *udid, int64_t total, struct devid_error *e)
{
	struct connector_rec *c = NULL;
	size_t n = 0;
	int rc;

	if ((rc = store_connector_list(db, tenant_id, auto_only, &c, &n, e)) != 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = store_job_add(db, tenant_id, c[i].id, remove, batch_id, udid, total, e);
	store_connector_list_free(c, n);
	return rc;
}

int
provision_enqueue_revoke(struct db *db, int64_t tenant_id, const char *udid, struct devid_error *e)
{
	struct connector_rec *c = NULL;
	size_t n = 0;
	int rc;

	if ((rc = store_connector_list(db, tenant_id, false, &c, &n, e)) != 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = store_job_add_reason(
		    db, tenant_id, c[i].id, true, 0, udid, 1, JOB_REASON_REVOKE, e);
	store_connector_list_free(c, n);
	return rc;
}

static const char *const *
secret_fields(const struct service *svc, const char *type)
{
	return svc->prov != NULL && svc->prov->secret_fields != NULL
	    ? svc->prov->secret_fields(type)
	    : NULL;
}

/*
 * The config as stored: a copy whose secret fields are sealed under the server's secrets
 * key (docs/secrets.md). *text NULL when out of memory.
 */
static int
connector_seal(const struct service *svc, const struct principal *p, const char *name,
    const char *type, const json_t *config, char **text, struct devid_error *e)
{
	const char *const *fields = secret_fields(svc, type);
	json_t *copy;
	int rc;

	*text = NULL;
	if (secrets_config_has(config, fields) && svc->secrets == NULL)
		return devid_error_set(e, DEVID_ECONFLICT, SECRETS_NEED_KEY_MSG);
	if ((copy = json_deep_copy(config)) == NULL)
		return 0;
	if ((rc = secrets_seal_config(svc->secrets, fields, p->tenant.name, name, copy, e)) == 0)
		*text = json_dump_compact(copy);
	secrets_wipe_config(copy, fields);
	json_decref(copy);
	return rc;
}

/*
 * PUT keeps what the caller leaves out of a secret: a copy of config where each secret field
 * of type that is absent takes the stored connector's value, opened, when name exists with
 * that type (a console never gets a secret back to send it again). *out NULL: out of memory.
 */
static int
connector_keep_secrets(struct service *svc, const struct principal *p, const char *name,
    const char *type, const json_t *config, json_t **out, struct devid_error *e)
{
	const char *const *fields = secret_fields(svc, type);
	struct connector_rec c = {0};
	json_t *stored = NULL, *v;
	bool missing = false;
	struct db *db;
	int rc = 0;

	if ((*out = json_deep_copy(config)) == NULL)
		return 0;
	for (size_t i = 0; fields != NULL && fields[i] != NULL; i++)
		missing = missing || json_object_get(config, fields[i]) == NULL;
	if (!missing)
		return 0;
	db = store_acquire(svc->store);
	rc = store_connector_get(db, p->tenant.id, name, &c, e);
	store_release(svc->store, db);
	if (rc == DEVID_ENOTFOUND) {
		devid_error_clear(e);
		return 0;
	}
	if (rc != 0 || strcmp(c.type, type) != 0)
		goto out;
	if ((stored = json_loads(c.config, 0, NULL)) == NULL) {
		rc = devid_error_set(
		    e, DEVID_EINTERNAL, "connector %s: stored config unreadable", name);
		goto out;
	}
	if ((rc = secrets_open_config(svc->secrets, fields, p->tenant.name, name, stored, e)) != 0)
		goto out;
	for (size_t i = 0; fields[i] != NULL; i++)
		if (json_object_get(*out, fields[i]) == NULL &&
		    (v = json_object_get(stored, fields[i])) != NULL && json_is_string(v))
			json_object_set_new(*out, fields[i], json_string(json_string_value(v)));
out:
	if (stored != NULL)
		secrets_wipe_config(stored, fields);
	json_decref(stored);
	connector_rec_release(&c);
	return rc;
}

int
service_connector_put(struct service *svc, const struct principal *p, const char *name,
    const json_t *body, bool *created, struct devid_error *e)
{
	const char *type, *mode;
	json_t *config, *merged = NULL, *detail = NULL;
	char *text = NULL;
	struct db *db;
	int rc;

	*created = false;
	if (!is_admin(p))
		return devid_error_set(e, DEVID_EAUTH, "only an OEM admin configures connectors");
	if (name == NULL || !claim_name_valid(name, strlen(name)))
		return devid_error_set(e, DEVID_EINVAL, "connector names match [A-Z0-9.-]{1,64}");
	if (!json_is_object(body) ||
	    json_get_str(body, "type", 1, 31, true, &type, NULL, "connector", e) != 0 ||
	    json_get_str(body, "mode", 1, 8, true, &mode, NULL, "connector", e) != 0 ||
	    json_get_obj(body, "config", true, &config, "connector", e) != 0)
		return devid_error_set(e, DEVID_EINVAL,
		    "body must be {\"type\":…,\"mode\":\"auto\"|\"manual\",\"config\":{…}}");
	if (json_only_keys(
		body, (const char *const[]){"type", "mode", "config", NULL}, "connector", e) != 0)
		return DEVID_EINVAL;
	if (strcmp(mode, "auto") != 0 && strcmp(mode, "manual") != 0)
		return devid_error_set(e, DEVID_EINVAL, "mode is auto or manual");
	if (svc->prov == NULL)
		return devid_error_set(e, DEVID_EINVAL, "no connector types are available");
	if ((rc = connector_keep_secrets(svc, p, name, type, config, &merged, e)) != 0 ||
	    merged == NULL) {
		json_decref(merged);
		return rc != 0 ? rc : devid_error_set(e, DEVID_ENOMEM, "out of memory");
	}
	if ((rc = svc->prov->validate(type, merged, e)) == 0)
		rc = connector_seal(svc, p, name, type, merged, &text, e);
	secrets_wipe_config(merged, secret_fields(svc, type));
	json_decref(merged);
	if (rc != 0)
		return rc;
	if (text == NULL ||
	    (detail = json_pack("{s:s, s:s}", "type", type, "mode", mode)) == NULL) {
		free(text);
		return devid_error_set(e, DEVID_ENOMEM, "out of memory");
	}
	db = store_acquire(svc->store);
	if ((rc = db_begin(db, e)) == 0) {
		if ((rc = store_connector_put(
			 db, p->tenant.id, name, type, mode[0] == 'a', text, created, e)) != 0 ||
		    (rc = audit_append(
			 db, p->tenant.id, p->actor, "connector.put", name, detail, e)) != 0)
			db_rollback(db);
		else
			rc = db_commit(db, e);
	}
	store_release(svc->store, db);
	json_decref(detail);
	free(text); /* its secrets are sealed */
	return rc;
}

static json_t *
connector_json(const struct service *svc, const struct connector_rec *c)
{
	json_t *config = json_loads(c->config, 0, NULL), *shown;

	shown = svc->prov != NULL && config != NULL ? svc->prov->redact(c->type, config)
						    : json_object();
	json_decref(config);
	return json_pack("{s:s, s:s, s:s, s:o}", "name", c->name, "type", c->type, "mode",
	    c->auto_mode ? "auto" : "manual", "config", shown ? shown : json_object());
}

int
service_connector_get(struct service *svc, const struct principal *p, const char *name,
    json_t **out, struct devid_error *e)
{
	struct connector_rec c;
	struct db *db;
	int rc;

	*out = NULL;
	if (!is_admin(p))
		return devid_error_set(e, DEVID_EAUTH, "only an OEM admin reads connectors");
	db = store_acquire(svc->store);
	rc = store_connector_get(db, p->tenant.id, name, &c, e);
	store_release(svc->store, db);
	if (rc == 0) {
		*out = connector_json(svc, &c);
		connector_rec_release(&c);
	}
	return rc;
}

int
service_connectors(
    struct service *svc, const struct principal *p, json_t **out, struct devid_error *e)
{
	struct connector_rec *c = NULL;
	struct db *db;
	json_t *items;
	size_t n = 0;
	int rc;

	*out = NULL;
	if (!is_admin(p))
		return devid_error_set(e, DEVID_EAUTH, "only an OEM admin reads connectors");
	db = store_acquire(svc->store);
	rc = store_connector_list(db, p->tenant.id, false, &c, &n, e);
	store_release(svc->store, db);
	if (rc != 0)
		return rc;
	items = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items, connector_json(svc, &c[i]));
	store_connector_list_free(c, n);
	*out = json_pack("{s:o}", "connectors", items);
	return 0;
}

int
service_connector_delete(
    struct service *svc, const struct principal *p, const char *name, struct devid_error *e)
{
	json_t *detail = json_object();
	struct db *db;
	int rc;

	if (!is_admin(p)) {
		json_decref(detail);
		return devid_error_set(e, DEVID_EAUTH, "only an OEM admin deletes connectors");
	}
	db = store_acquire(svc->store);
	if ((rc = db_begin(db, e)) == 0) {
		if ((rc = store_connector_delete(db, p->tenant.id, name, e)) != 0 ||
		    (rc = audit_append(
			 db, p->tenant.id, p->actor, "connector.delete", name, detail, e)) != 0)
			db_rollback(db);
		else
			rc = db_commit(db, e);
	}
	store_release(svc->store, db);
	json_decref(detail);
	return rc;
}

int
service_connector_test(struct service *svc, const struct principal *p, const char *name,
    json_t **out, struct devid_error *e)
{
	struct connector_rec c = {0};
	struct devid_error te;
	json_t *config = NULL;
	char msg[DEVID_ERROR_MAX];
	bool ok = false;
	struct db *db;
	int rc;

	*out = NULL;
	if (!is_admin(p))
		return devid_error_set(e, DEVID_EAUTH, "only an OEM admin tests connectors");
	db = store_acquire(svc->store);
	rc = store_connector_get(db, p->tenant.id, name, &c, e);
	store_release(svc->store, db);
	if (rc != 0)
		return rc;
	if (svc->prov == NULL || svc->prov->test == NULL) {
		rc = devid_error_set(e, DEVID_ECONFLICT, "no connector types are available");
		goto out;
	}
	if ((config = json_loads(c.config, 0, NULL)) == NULL) {
		rc = devid_error_set(
		    e, DEVID_EINTERNAL, "connector %s: stored config unreadable", name);
		goto out;
	}
	devid_error_clear(&te);
	/* a secret this server cannot open is an answer too: the connector cannot work here */
	if (secrets_open_config(
		svc->secrets, secret_fields(svc, c.type), p->tenant.name, c.name, config, &te) != 0)
		snprintf(msg, sizeof(msg), "%s", te.msg);
	else if ((rc = svc->prov->test(c.type, config, p->tenant.name, &ok, msg, sizeof(msg), e)) !=
	    0)
		goto out;
	if ((*out = json_pack("{s:b, s:s}", "ok", ok, "message", msg)) == NULL)
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
out:
	if (config != NULL)
		secrets_wipe_config(config, secret_fields(svc, c.type));
	json_decref(config);
	connector_rec_release(&c);
	return rc;
}

int
service_provision(struct service *svc, const struct principal *p, const json_t *body, json_t **out,
    struct devid_error *e)
{
	char vendor[MAX_NAME_LEN + 1], batch[MAX_NAME_LEN + 1];
	const char *cname, *bname = NULL, *slash;
	json_t *devices = json_object_get(body, "devices"), *v;
	struct connector_rec c;
	struct batch_rec b;
	struct device_rec d;
	struct db *db;
	size_t i, jobs = 0;
	int rc;

	*out = NULL;
	if (!is_admin(p))
		return devid_error_set(e, DEVID_EAUTH, "only an OEM admin triggers provisioning");
	if (!json_is_object(body) ||
	    json_get_str(body, "connector", 1, MAX_NAME_LEN, true, &cname, NULL, "provision", e) !=
		0 ||
	    (json_get_str(body, "batch", 3, 2 * MAX_NAME_LEN + 1, false, &bname, NULL, "provision",
		 e) == DEVID_ENOTFOUND) == (devices == NULL))
		return devid_error_set(e, DEVID_EINVAL,
		    "body must be {\"connector\":NAME,\"batch\":\"V/B\"} or "
		    "{…,\"devices\":[udid…]}");
	if (devices != NULL &&
	    (!json_is_array(devices) || json_array_size(devices) == 0 ||
		json_array_size(devices) > PUSH_CHUNK))
		return devid_error_set(
		    e, DEVID_EINVAL, "devices is a list of 1 to %d UDIDs", PUSH_CHUNK);
	db = store_acquire(svc->store);
	if ((rc = db_begin(db, e)) != 0)
		goto out;
	if ((rc = store_connector_get(db, p->tenant.id, cname, &c, e)) != 0)
		goto rollback;
	connector_rec_release(&c);
	if (bname != NULL) {
		if ((slash = strchr(bname, '/')) == NULL || slash == bname ||
		    (size_t)(slash - bname) > MAX_NAME_LEN || strlen(slash + 1) > MAX_NAME_LEN) {
			rc = devid_error_set(e, DEVID_EINVAL, "batch is VENDOR/BATCH");
			goto rollback;
		}
		snprintf(vendor, sizeof(vendor), "%.*s", (int)(slash - bname), bname);
		snprintf(batch, sizeof(batch), "%s", slash + 1);
		if ((rc = service_own_batch(db, p, true, vendor, batch, &b, e)) != 0 ||
		    (rc = store_job_add(db, p->tenant.id, c.id, false, b.id, NULL, b.count, e)) !=
			0)
			goto rollback;
		jobs = 1;
	} else {
		json_array_foreach(devices, i, v)
		{
			if (!json_is_string(v) ||
			    (rc = store_device_get(
				 db, p->tenant.id, json_string_value(v), &d, e)) != 0) {
				rc =
				    rc ? rc : devid_error_set(e, DEVID_EINVAL, "devices are UDIDs");
				goto rollback;
			}
			if ((rc = store_job_add(db, p->tenant.id, c.id, false, 0, d.udid, 1, e)) !=
			    0)
				goto rollback;
			jobs++;
		}
	}
	if ((rc = db_commit(db, e)) == 0)
		*out = json_pack("{s:s, s:I}", "connector", cname, "jobs", (json_int_t)jobs);
	goto out;
rollback:
	db_rollback(db);
out:
	store_release(svc->store, db);
	return rc;
}

/* issue 11: why a remove happens and the per-device counts, beside the job's own members */
static void
job_json_results(json_t *item, const struct job_rec *j)
{
	if (item == NULL)
		return;
	if (j->remove)
		json_object_set_new(item, "reason", json_string(j->revoke ? "revoke" : "release"));
	json_object_set_new(item, "devices",
	    json_pack("{s:I, s:I}", "ok", (json_int_t)j->ok, "failed", (json_int_t)j->failed));
}

int
service_jobs(struct service *svc, const struct principal *p, const char *state, json_t **out,
    struct devid_error *e)
{
	struct job_rec *j = NULL;
	struct db *db;
	json_t *items;
	size_t n = 0;
	int rc;

	*out = NULL;
	if (p->tenant.kind != TENANT_OEM)
		return devid_error_set(e, DEVID_EAUTH, "only an OEM token reads jobs");
	if (state != NULL && strcmp(state, "pending") != 0 && strcmp(state, "done") != 0 &&
	    strcmp(state, "dead") != 0)
		return devid_error_set(e, DEVID_EINVAL, "state is pending, done or dead");
	db = store_acquire(svc->store);
	rc = store_job_list(db, p->tenant.id, state, JOBS_LIST_MAX, &j, &n, e);
	store_release(svc->store, db);
	if (rc != 0)
		return rc;
	items = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items,
		    json_pack("{s:I, s:s, s:s, s:s?, s:s, s:I, s:I, s:I, s:s?}", "id",
			(json_int_t)j[i].id, "connector", j[i].connector, "action",
			j[i].suspicion_id != 0 ? "suspected_clone"
			    : j[i].remove      ? "remove"
					       : "add",
			"udid", j[i].udid[0] ? j[i].udid : NULL, "state", j[i].state, "delivered",
			(json_int_t)j[i].delivered, "total", (json_int_t)j[i].total, "attempts",
			(json_int_t)j[i].attempts, "lastError",
			j[i].last_error[0] ? j[i].last_error : NULL));
	for (size_t i = 0; i < n; i++)
		job_json_results(json_array_get(items, i), &j[i]);
	free(j);
	*out = json_pack("{s:o}", "jobs", items);
	return 0;
}

int
service_job_devices(struct service *svc, const struct principal *p, int64_t id, const char *status,
    const char *after, json_t **out, struct devid_error *e)
{
	struct db_rows *r = NULL;
	struct job_rec j;
	struct db *db;
	json_t *items;
	size_t n;
	int rc;

	*out = NULL;
	if (p->tenant.kind != TENANT_OEM)
		return devid_error_set(e, DEVID_EAUTH, "only an OEM token reads jobs");
	if (status != NULL && strcmp(status, "ok") != 0 && strcmp(status, "failed") != 0)
		return devid_error_set(e, DEVID_EINVAL, "status is ok or failed");
	db = store_acquire(svc->store);
	if ((rc = store_job_get(db, p->tenant.id, id, &j, e)) == 0)
		rc = store_job_results(db, id, status, after, JOB_DEVICES_PAGE, &r, e);
	store_release(svc->store, db);
	if (rc != 0)
		return rc;
	items = json_array();
	n = db_rows_count(r);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items,
		    json_pack("{s:s, s:s, s:s?, s:o}", "udid", db_rows_text(r, i, 0, NULL),
			"status", db_rows_text(r, i, 1, NULL), "message",
			db_rows_null(r, i, 2) ? NULL : db_rows_text(r, i, 2, NULL), "at",
			json_time(db_rows_int(r, i, 3))));
	*out = json_pack("{s:I, s:o, s:s?}", "job", (json_int_t)id, "devices", items, "next",
	    n == JOB_DEVICES_PAGE ? db_rows_text(r, n - 1, 0, NULL) : NULL);
	db_rows_free(r);
	return *out != NULL ? 0 : devid_error_set(e, DEVID_ENOMEM, "out of memory");
}

/*
 * What the outbox lends a connector for one chunk (struct delivery's throttle, result, ctx):
 * the worker's database connection, the job's lease, and each device's outcome, written with
 * the job's progress once the chunk ends.
 */
struct outbox_ctx {
	struct db *db;
	int64_t job_id, connector_id;
	int64_t held_until; /* the lease: the job's next_at while this worker holds it */
	int64_t lease; /* seconds */
	int64_t retry_after; /* seconds the cloud asked for (delivery.defer), 0: none */
	bool lost; /* another worker took the job: this one must not touch it again */
	size_t n;
	signed char status[PUSH_CHUNK]; /* -1 no outcome, else enum delivery_status */
	char *message[PUSH_CHUNK];
};

#define THROTTLE_STEP_MS 50 /* a waiting worker looks at its bucket this often */

/*
 * delivery.hold: the job stays this worker's through a wait of secs (and a lease after it);
 * renewed only when less than half a lease would be left after the wait, not every call.
 * DEVID_ECONFLICT, and lost set, when another worker took the job meanwhile.
 */
static int
outbox_hold(void *arg, double secs, struct devid_error *e)
{
	struct outbox_ctx *x = arg;
	int64_t now = time(NULL), wait = secs > 0.0 ? (int64_t)secs + 1 : 0, until;
	int rc;

	if (x->held_until - now >= wait + (x->lease + 1) / 2)
		return 0;
	until = now + wait + x->lease;
	if ((rc = store_job_renew(x->db, x->job_id, x->held_until, until, e)) == 0)
		x->held_until = until;
	else if (rc == DEVID_ECONFLICT)
		x->lost = true;
	return rc;
}

/* delivery.defer: the cloud asked to come back after secs. */
static void
outbox_defer(void *arg, int64_t secs)
{
	struct outbox_ctx *x = arg;

	if (secs > x->retry_after)
		x->retry_after = secs;
}

static void
sleep_ms(int64_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0)
		;
}

/*
 * delivery.throttle: one request of `call` at per_second (burst: one second's worth), from
 * the bucket "connector:<id>:<call>" every server of the database shares. Renews the lease
 * as it goes; a wait the lease cannot cover fails the chunk (retried later, whole).
 */
static int
outbox_throttle(void *arg, const char *call, double per_second, struct devid_error *e)
{
	struct outbox_ctx *x = arg;
	char key[MAX_NAME_LEN + 48];
	int64_t interval, burst, wait_ms, now;
	int rc;

	if (!(per_second > 0.0) || per_second > 1e6)
		return devid_error_set(e, DEVID_EINVAL, "throttle %s: rate %g", call, per_second);
	interval = per_second >= 1000.0 ? 1 : (int64_t)(1000.0 / per_second + 0.5);
	burst = per_second < 1.0 ? 1 : (int64_t)per_second;
	snprintf(key, sizeof(key), "connector:%lld:%.*s", (long long)x->connector_id, MAX_NAME_LEN,
	    call);
	for (;;) {
		now = service_now_ms();
		/* a third of the lease gone: take it again, so a slow cloud's chunk keeps its
		 * worker (a connector's own waits between two calls stay below a third) */
		if (now / 1000 + (2 * x->lease) / 3 > x->held_until &&
		    (rc = outbox_hold(x, 0.0, e)) != 0)
			return rc;
		if ((rc = store_rate_take(x->db, key, now, interval, burst, &wait_ms, e)) != 0)
			return rc;
		if (wait_ms == 0)
			return 0;
		if (wait_ms / 1000 >= x->lease / 2)
			return devid_error_set(e, DEVID_ELIMIT,
			    "throttle %s: the next request is %lld ms away, beyond the job's lease",
			    call, (long long)wait_ms);
		sleep_ms(wait_ms < THROTTLE_STEP_MS ? wait_ms : THROTTLE_STEP_MS);
	}
}

/* delivery.result: kept until the chunk ends; the last outcome of a device counts. */
static void
outbox_result(void *arg, size_t i, enum delivery_status status, const char *message)
{
	struct outbox_ctx *x = arg;

	if (i >= x->n)
		return;
	free(x->message[i]);
	x->message[i] = message != NULL ? strndup(message, 255) : NULL;
	x->status[i] = (signed char)status;
}

/* The outcomes of the chunk, inside the caller's transaction. */
static int
outbox_results_store(
    struct outbox_ctx *x, const struct delivery_device *dev, int64_t now, struct devid_error *e)
{
	int rc = 0;

	for (size_t i = 0; i < x->n && rc == 0; i++)
		if (x->status[i] >= 0)
			rc = store_job_result(x->db, x->job_id, dev[i].udid,
			    x->status[i] == DELIVERY_OK ? "ok" : "failed", x->message[i], now, e);
	return rc;
}

static void
outbox_ctx_release(struct outbox_ctx *x)
{
	for (size_t i = 0; x != NULL && i < x->n; i++) {
		free(x->message[i]);
		x->message[i] = NULL;
	}
}

/*
 * Each connector's own rate ("ratePerSecond" in its config: requests a second, a burst of
 * one second's worth), kept in the database: every server of it throttles against the same
 * bucket. 0 when a request may go now, else the whole seconds to wait (at least 1).
 */
static int
rate_wait(struct db *db, int64_t connector_id, double rate, int64_t *wait, struct devid_error *e)
{
	char key[48];
	int64_t interval = rate >= 1000.0 ? 1 : (int64_t)(1000.0 / rate + 0.5);
	int64_t burst = rate < 1.0 ? 1 : (int64_t)rate, wait_ms;
	int rc;

	*wait = 0;
	snprintf(key, sizeof(key), "connector:%lld", (long long)connector_id);
	if ((rc = store_rate_take(db, key, service_now_ms(), interval, burst, &wait_ms, e)) == 0 &&
	    wait_ms > 0)
		*wait = (wait_ms + 999) / 1000;
	return rc;
}

/*
 * One line per delivered or failed chunk, written once its outcome is committed. error is
 * the connector's message (what GET /api/v1/jobs shows as lastError): connectors never put a
 * secret or a token in it.
 */
static void
outbox_log(const struct job_rec *j, const struct connector_rec *c, const struct delivery *dl,
    bool delivered, const struct outbox_ctx *x, int64_t retry_in, int max, const char *error)
{
	if (delivered)
		log_info("delivery ok", LOG_INT("job", j->id), LOG_STR("tenant", dl->tenant),
		    LOG_STR("connector", c->name), LOG_STR("type", c->type),
		    LOG_STR("event", dl->event_id), LOG_INT("devices", dl->n));
	else if (x->lost)
		log_warn("delivery lease lost", LOG_INT("job", j->id),
		    LOG_STR("tenant", dl->tenant), LOG_STR("connector", c->name),
		    LOG_STR("type", c->type), LOG_STR("event", dl->event_id),
		    LOG_STR("error", error));
	else if (x->retry_after > 0)
		log_info("delivery deferred", LOG_INT("job", j->id), LOG_STR("tenant", dl->tenant),
		    LOG_STR("connector", c->name), LOG_STR("type", c->type),
		    LOG_STR("event", dl->event_id), LOG_INT("retry_in_s", retry_in),
		    LOG_STR("error", error));
	else if (j->attempts >= max)
		log_error("delivery job dead", LOG_INT("job", j->id), LOG_STR("tenant", dl->tenant),
		    LOG_STR("connector", c->name), LOG_STR("type", c->type),
		    LOG_STR("event", dl->event_id), LOG_INT("attempt", j->attempts),
		    LOG_INT("max_attempts", max), LOG_STR("error", error));
	else
		log_warn("delivery failed", LOG_INT("job", j->id), LOG_STR("tenant", dl->tenant),
		    LOG_STR("connector", c->name), LOG_STR("type", c->type),
		    LOG_STR("event", dl->event_id), LOG_INT("attempt", j->attempts),
		    LOG_INT("max_attempts", max), LOG_INT("retry_in_s", retry_in),
		    LOG_STR("error", error));
}

/* Seconds until the next attempt: BASE * 2^(attempts-1), capped, times 0.5 to 1.5. */
static int64_t
backoff(int64_t attempts)
{
	int64_t d = BACKOFF_BASE_SECS;
	unsigned char r = 128;

	for (int64_t i = 1; i < attempts && d < BACKOFF_CAP_SECS; i++)
		d *= 2;
	if (d > BACKOFF_CAP_SECS)
		d = BACKOFF_CAP_SECS;
	RAND_bytes(&r, 1);
	return d / 2 + (d * r) / 255;
}

int
service_job_counts(
    struct service *svc, struct job_count *out, size_t max, size_t *n, struct devid_error *e)
{
	struct db_rows *r = NULL;
	struct db *db = store_acquire(svc->store);
	int rc = store_job_counts(db, &r, e);

	store_release(svc->store, db);
	*n = 0;
	if (rc != 0)
		return rc;
	for (size_t i = 0; i < db_rows_count(r) && *n < max; i++, (*n)++) {
		snprintf(out[i].type, sizeof(out[i].type), "%s", db_rows_text(r, i, 0, NULL));
		snprintf(out[i].state, sizeof(out[i].state), "%s", db_rows_text(r, i, 1, NULL));
		out[i].n = db_rows_int(r, i, 2);
	}
	db_rows_free(r);
	return 0;
}

/* One delivery of n devices that took ns, and whether its job is dead now. */
static void
outbox_count(struct service_metrics *sm, const char *type, enum delivery_result result, size_t n,
    int64_t ns, bool dead)
{
	struct connector_metrics *cm = connector_metrics_get(sm, type);

	counter_add(&cm->deliveries[result], 1);
	counter_add(&cm->devices[result], n);
	latency_observe(&cm->duration[result], service_delivery_bounds, ns);
	if (dead)
		counter_add(&cm->dead, 1);
}

int
service_outbox_step(struct service *svc, struct devid_error *e)
{
	struct delivery_device dev[PUSH_CHUNK];
	struct delivery dl = {0};
	struct outbox_ctx *x = NULL;
	struct connector_rec c = {0};
	struct tenant t;
	struct db_rows *r = NULL;
	struct job_rec j;
	struct devid_error de;
	json_t *config = NULL, *suspicion = NULL;
	char event[64];
	struct db *db;
	int64_t now = time(NULL), last, started, took,
		lease = svc->job_lease > 0 ? svc->job_lease : JOB_LEASE_SECS;
	size_t n = 0, len;
	int rc, max = svc->max_attempts > 0 ? svc->max_attempts : DEFAULT_MAX_ATTEMPTS;
	enum delivery_result result = DELIVERY_RESULT_FAILED;
	int64_t retry_in = 0;
	bool delivered, dead = false;

	if (svc->prov == NULL)
		return 0;
	db = store_acquire(svc->store);
	rc = store_job_lease(db, now, lease, &j, e);
	if (rc == DEVID_ENOTFOUND) {
		rc = 0;
		goto out;
	}
	if (rc != 0)
		goto out;
	rc = DEVID_EINTERNAL;
	if (store_tenant_by_id(db, j.tenant_id, &t, e) != 0 ||
	    store_connector_get(db, j.tenant_id, j.connector, &c, e) != 0 ||
	    (config = json_loads(c.config, 0, NULL)) == NULL ||
	    store_job_devices(db, &j, j.cursor, PUSH_CHUNK, &r, e) != 0 ||
	    (j.suspicion_id != 0 && clone_notice_json(db, j.suspicion_id, &suspicion, e) != 0))
		goto out;
	n = db_rows_count(r);
	if (n == 0) {
		rc = store_job_progress(db, j.id, j.cursor, j.delivered, true, e);
		goto worked;
	}
	for (size_t i = 0; i < n; i++) {
		dev[i].udid = db_rows_text(r, i, 1, NULL);
		dev[i].serial = db_rows_text(r, i, 2, NULL);
		dev[i].cert_der = db_rows_blob(r, i, 3, &len);
		dev[i].cert_len = len;
		dev[i].batch = db_rows_text(r, i, 4, NULL);
		dev[i].tpm = strcmp(db_rows_text(r, i, 5, NULL), "tpm") == 0;
	}
	last = db_rows_int(r, n - 1, 0);
	/* the id names the job and the chunk: a retry carries the same one */
	snprintf(event, sizeof(event), "devid-%lld-%lld", (long long)j.id, (long long)j.cursor);
	dl = (struct delivery){.event_id = event,
	    .remove = j.remove,
	    .revoke = j.remove && j.revoke,
	    .tenant = t.name,
	    .connector = c.name,
	    .suspicion = suspicion,
	    .devices = dev,
	    .n = n};
	/* issue 11: revoke vs release, per-call throttle, per-device outcomes */
	if ((x = calloc(1, sizeof(*x))) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto out;
	}
	*x = (struct outbox_ctx){.db = db,
	    .job_id = j.id,
	    .connector_id = c.id,
	    .held_until = j.next_at,
	    .lease = lease,
	    .n = n};
	memset(x->status, -1, sizeof(x->status));
	dl.throttle = outbox_throttle;
	dl.result = outbox_result;
	dl.hold = outbox_hold;
	dl.defer = outbox_defer;
	dl.ctx = x;
	if (json_is_number(json_object_get(config, "ratePerSecond")) &&
	    json_number_value(json_object_get(config, "ratePerSecond")) > 0.0) {
		int64_t wait;

		if ((rc = rate_wait(db, c.id,
			 json_number_value(json_object_get(config, "ratePerSecond")), &wait, e)) !=
		    0)
			goto out;
		if (wait > 0) {
			/* the cloud's rate: this job waits its turn, no attempt is counted */
			rc = store_job_defer(db, j.id, now + wait, e);
			goto worked;
		}
	}
	devid_error_clear(&de);
	started = monotonic_ns();
	delivered = secrets_open_config(svc->secrets, secret_fields(svc, c.type), t.name, c.name,
			config, &de) == 0 &&
	    svc->prov->deliver(c.type, config, &dl, &de) == 0;
	took = monotonic_ns() - started; /* the delivery's own time, without the commit */
	now = time(NULL);
	/* the outcomes and the job's next state commit together: a crash leaves neither */
	if ((rc = db_begin(db, e)) != 0)
		goto out;
	if ((rc = outbox_results_store(x, dev, now, e)) != 0)
		;
	else if (delivered) {
		rc =
		    store_job_progress(db, j.id, last, j.delivered + (int64_t)n, n < PUSH_CHUNK, e);
	} else if (x->lost) {
		/* the lease ran out and another worker delivers the chunk: it is theirs now */
		result = DELIVERY_RESULT_DEFERRED;
	} else if (x->retry_after > 0) {
		/* the cloud said when to come back: the job waits that long, no attempt counted */
		result = DELIVERY_RESULT_DEFERRED;
		retry_in = x->retry_after;
		rc = store_job_defer(db, j.id, (int64_t)time(NULL) + retry_in, e);
	} else {
		/* from the end of this delivery, which may have lasted long past `now` */
		j.attempts++;
		dead = j.attempts >= max;
		retry_in = backoff(j.attempts);
		rc = store_job_fail(
		    db, j.id, j.attempts, (int64_t)time(NULL) + retry_in, dead, de.msg, e);
	}
	if (rc != 0)
		db_rollback(db);
	else if ((rc = db_commit(db, e)) == 0)
		outbox_log(&j, &c, &dl, delivered, x, retry_in, max, de.msg);
	outbox_count(&svc->metrics, c.type, delivered ? DELIVERY_RESULT_OK : result, n, took,
	    rc == 0 && dead);
worked:
	if (rc == 0)
		rc = 1;
out:
	if (config != NULL)
		secrets_wipe_config(config, secret_fields(svc, c.type));
	json_decref(config);
	json_decref(suspicion);
	connector_rec_release(&c);
	outbox_ctx_release(x);
	free(x);
	db_rows_free(r);
	store_release(svc->store, db);
	return rc;
}
