/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "lib/banned.h"

void
connector_rec_release(struct connector_rec *c)
{
	free(c->config);
	c->config = NULL;
}

int
store_connector_put(struct db *db, int64_t tenant_id, const char *name, const char *type,
    bool auto_mode, const char *config, bool *created, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), DB_TEXT(name), DB_TEXT(type),
	    DB_TEXT(auto_mode ? "auto" : "manual"), DB_TEXT(config), DB_INT(time(NULL))};
	struct db_param q[] = {DB_INT(tenant_id), DB_TEXT(name)};
	struct db_rows *r;
	int rc;

	if ((rc = db_query(db, "SELECT id FROM connectors WHERE tenant_id = ? AND name = ?", q, 2,
		 &r, e)) != 0)
		return rc;
	*created = db_rows_count(r) == 0;
	db_rows_free(r);
	return db_exec(db,
	    "INSERT INTO connectors (tenant_id, name, type, mode, config, created_at)"
	    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, name) DO UPDATE SET"
	    " type = excluded.type, mode = excluded.mode, config = excluded.config",
	    p, 6, NULL, e);
}

#define CONNECTOR_COLUMNS "SELECT id, tenant_id, name, type, mode, config FROM connectors"

static int
connector_from_row(const struct db_rows *r, size_t i, struct connector_rec *c)
{
	memset(c, 0, sizeof(*c));
	c->id = db_rows_int(r, i, 0);
	c->tenant_id = db_rows_int(r, i, 1);
	snprintf(c->name, sizeof(c->name), "%s", db_rows_text(r, i, 2, NULL));
	snprintf(c->type, sizeof(c->type), "%s", db_rows_text(r, i, 3, NULL));
	c->auto_mode = strcmp(db_rows_text(r, i, 4, NULL), "auto") == 0;
	return (c->config = strdup(db_rows_text(r, i, 5, NULL))) != NULL ? 0 : DEVID_ENOMEM;
}

int
store_connector_get(struct db *db, int64_t tenant_id, const char *name, struct connector_rec *c,
    struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), DB_TEXT(name)};
	struct db_rows *r;
	int rc;

	memset(c, 0, sizeof(*c));
	if ((rc = db_query(
		 db, CONNECTOR_COLUMNS " WHERE tenant_id = ? AND name = ?", p, 2, &r, e)) != 0)
		return rc;
	if (db_rows_count(r) == 0)
		rc = devid_error_set(e, DEVID_ENOTFOUND, "no connector %s", name);
	else if (connector_from_row(r, 0, c) != 0)
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
	db_rows_free(r);
	return rc;
}

void
store_connector_list_free(struct connector_rec *c, size_t n)
{
	for (size_t i = 0; c != NULL && i < n; i++)
		connector_rec_release(&c[i]);
	free(c);
}

int
store_connector_list(struct db *db, int64_t tenant_id, bool auto_only, struct connector_rec **out,
    size_t *n, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), DB_INT(auto_only)};
	struct connector_rec *c;
	struct db_rows *r;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = db_query(db,
		 CONNECTOR_COLUMNS
		 " WHERE tenant_id = ? AND (? = 0 OR mode = 'auto') ORDER BY name",
		 p, 2, &r, e)) != 0)
		return rc;
	if ((c = calloc(db_rows_count(r) + 1, sizeof(*c))) == NULL) {
		db_rows_free(r);
		return devid_error_set(e, DEVID_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < db_rows_count(r); i++) {
		if (connector_from_row(r, i, &c[i]) != 0) {
			store_connector_list_free(c, i + 1);
			db_rows_free(r);
			return devid_error_set(e, DEVID_ENOMEM, "out of memory");
		}
	}
	*n = db_rows_count(r);
	*out = c;
	db_rows_free(r);
	return 0;
}

int
store_connector_delete(struct db *db, int64_t tenant_id, const char *name, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), DB_TEXT(name)};
	int64_t changes = 0;
	int rc;

	rc = db_exec(
	    db, "DELETE FROM connectors WHERE tenant_id = ? AND name = ?", p, 2, &changes, e);
	if (rc == 0 && changes == 0)
		rc = devid_error_set(e, DEVID_ENOTFOUND, "no connector %s", name);
	return rc;
}

int
store_job_add(struct db *db, int64_t tenant_id, int64_t connector_id, bool remove, int64_t batch_id,
    const char *udid, int64_t total, struct devid_error *e)
{
	return store_job_add_reason(
	    db, tenant_id, connector_id, remove, batch_id, udid, total, NULL, e);
}

int
store_job_add_reason(struct db *db, int64_t tenant_id, int64_t connector_id, bool remove,
    int64_t batch_id, const char *udid, int64_t total, const char *reason, struct devid_error *e)
{
	int64_t now = time(NULL);
	struct db_param p[] = {DB_INT(tenant_id), DB_INT(connector_id),
	    DB_TEXT(remove ? "remove" : "add"), batch_id ? DB_INT(batch_id) : DB_NULL,
	    udid ? DB_TEXT(udid) : DB_NULL, DB_INT(now), DB_INT(total), DB_INT(now), DB_INT(now),
	    reason ? DB_TEXT(reason) : DB_NULL};

	return db_exec(db,
	    "INSERT INTO jobs (tenant_id, connector_id, action, batch_id, udid, next_at, total,"
	    " created_at, updated_at, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
	    p, 10, NULL, e);
}

#define JOB_COLUMNS                                                                                \
	"SELECT j.id, j.tenant_id, j.connector_id, c.name, j.action, j.batch_id, j.udid, j.state," \
	" j.attempts, j.next_at, j.cursor, j.delivered, j.total, j.last_error, j.reason,"          \
	" (SELECT COUNT(*) FROM job_devices x WHERE x.job_id = j.id AND x.status = 'ok'),"         \
	" (SELECT COUNT(*) FROM job_devices x WHERE x.job_id = j.id AND x.status = 'failed'),"     \
	" COALESCE(j.suspicion_id, 0)"                                                             \
	" FROM jobs j JOIN connectors c ON c.id = j.connector_id"

static void
job_from_row(const struct db_rows *r, size_t i, struct job_rec *j)
{
	memset(j, 0, sizeof(*j));
	j->id = db_rows_int(r, i, 0);
	j->tenant_id = db_rows_int(r, i, 1);
	j->connector_id = db_rows_int(r, i, 2);
	snprintf(j->connector, sizeof(j->connector), "%s", db_rows_text(r, i, 3, NULL));
	j->remove = strcmp(db_rows_text(r, i, 4, NULL), "remove") == 0;
	j->batch_id = db_rows_int(r, i, 5);
	snprintf(j->udid, sizeof(j->udid), "%s", db_rows_text(r, i, 6, NULL));
	snprintf(j->state, sizeof(j->state), "%s", db_rows_text(r, i, 7, NULL));
	j->attempts = db_rows_int(r, i, 8);
	j->next_at = db_rows_int(r, i, 9);
	j->cursor = db_rows_int(r, i, 10);
	j->delivered = db_rows_int(r, i, 11);
	j->total = db_rows_int(r, i, 12);
	snprintf(j->last_error, sizeof(j->last_error), "%s", db_rows_text(r, i, 13, NULL));
	j->revoke = strcmp(db_rows_text(r, i, 14, NULL), JOB_REASON_REVOKE) == 0;
	j->ok = db_rows_int(r, i, 15);
	j->failed = db_rows_int(r, i, 16);
	j->suspicion_id = db_rows_int(r, i, 17);
}

int
store_job_lease(struct db *db, int64_t now, int64_t lease, struct job_rec *j, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(now)};
	struct db_rows *r = NULL;
	int rc;

	if ((rc = db_begin(db, e)) != 0)
		return rc;
	/* several servers share the work: a job another one holds is skipped, not waited for */
	rc = db_query(db,
	    db_get_kind(db) == DB_POSTGRES
		? "SELECT id FROM jobs WHERE state = 'pending' AND next_at <= ? ORDER BY id LIMIT 1"
		  " FOR UPDATE SKIP LOCKED"
		: "SELECT id FROM jobs WHERE state = 'pending' AND next_at <= ? ORDER BY id LIMIT "
		  "1",
	    p, 1, &r, e);
	if (rc != 0)
		goto rollback;
	if (db_rows_count(r) == 0) {
		rc = DEVID_ENOTFOUND;
		goto rollback;
	}
	{
		struct db_param u[] = {DB_INT(now + lease), DB_INT(db_rows_int(r, 0, 0))};

		if ((rc = db_exec(db, "UPDATE jobs SET next_at = ? WHERE id = ?", u, 2, NULL, e)) !=
		    0)
			goto rollback;
	}
	{
		struct db_param q[] = {DB_INT(db_rows_int(r, 0, 0))};

		db_rows_free(r);
		r = NULL;
		if ((rc = db_query(db, JOB_COLUMNS " WHERE j.id = ?", q, 1, &r, e)) != 0)
			goto rollback;
	}
	job_from_row(r, 0, j);
	db_rows_free(r);
	return db_commit(db, e);
rollback:
	db_rows_free(r);
	db_rollback(db);
	return rc;
}

int
store_job_progress(
    struct db *db, int64_t id, int64_t cursor, int64_t delivered, bool done, struct devid_error *e)
{
	int64_t now = time(NULL);
	struct db_param p[] = {DB_INT(cursor), DB_INT(delivered),
	    DB_TEXT(done ? "done" : "pending"), DB_INT(now), DB_INT(now), DB_INT(id)};

	return db_exec(db,
	    "UPDATE jobs SET cursor = ?, delivered = ?, state = ?, attempts = 0, last_error = NULL,"
	    " next_at = ?, updated_at = ? WHERE id = ?",
	    p, 6, NULL, e);
}

int
store_job_defer(struct db *db, int64_t id, int64_t next_at, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(next_at), DB_INT(id)};

	return db_exec(db, "UPDATE jobs SET next_at = ? WHERE id = ?", p, 2, NULL, e);
}

int
store_job_renew(struct db *db, int64_t id, int64_t held, int64_t next_at, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(next_at), DB_INT(id), DB_INT(held)};
	int64_t changed = 0;
	int rc;

	/* next_at is the lease's fencing token: only the worker that set it may move it */
	if ((rc = db_exec(db,
		 "UPDATE jobs SET next_at = ? WHERE id = ? AND next_at = ? AND state = 'pending'",
		 p, 3, &changed, e)) != 0)
		return rc;
	if (changed != 1)
		return devid_error_set(e, DEVID_ECONFLICT,
		    "job %lld: the lease ran out and another worker holds the job", (long long)id);
	return 0;
}

int
store_job_fail(struct db *db, int64_t id, int64_t attempts, int64_t next_at, bool dead,
    const char *error, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(attempts), DB_INT(next_at),
	    DB_TEXT(dead ? "dead" : "pending"), DB_TEXT(error), DB_INT(time(NULL)), DB_INT(id)};

	return db_exec(db,
	    "UPDATE jobs SET attempts = ?, next_at = ?, state = ?, last_error = ?, updated_at = ?"
	    " WHERE id = ?",
	    p, 6, NULL, e);
}

int
store_job_cancel_batch(struct db *db, int64_t batch_id, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(time(NULL)), DB_INT(batch_id)};

	return db_exec(db,
	    "UPDATE jobs SET state = 'dead', last_error = 'the batch was released', updated_at = ?"
	    " WHERE batch_id = ? AND action = 'add' AND state = 'pending'",
	    p, 2, NULL, e);
}

int
store_job_counts(struct db *db, struct db_rows **rows, struct devid_error *e)
{
	return db_query(db,
	    "SELECT c.type, j.state, COUNT(*) FROM jobs j JOIN connectors c ON c.id = "
	    "j.connector_id"
	    " WHERE j.state IN ('pending', 'dead') GROUP BY c.type, j.state ORDER BY c.type, "
	    "j.state",
	    NULL, 0, rows, e);
}

int
store_job_list(struct db *db, int64_t tenant_id, const char *state, size_t limit,
    struct job_rec **out, size_t *n, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), state ? DB_TEXT(state) : DB_NULL,
	    state ? DB_TEXT(state) : DB_NULL, DB_INT((int64_t)limit)};
	struct job_rec *j;
	struct db_rows *r;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = db_query(db,
		 JOB_COLUMNS " WHERE j.tenant_id = ? AND (CAST(? AS TEXT) IS NULL OR j.state = ?)"
			     " ORDER BY j.id DESC LIMIT ?",
		 p, 4, &r, e)) != 0)
		return rc;
	if ((j = calloc(db_rows_count(r) + 1, sizeof(*j))) == NULL) {
		db_rows_free(r);
		return devid_error_set(e, DEVID_ENOMEM, "out of memory");
	}
	for (size_t i = 0; i < db_rows_count(r); i++)
		job_from_row(r, i, &j[i]);
	*n = db_rows_count(r);
	*out = j;
	db_rows_free(r);
	return 0;
}

int
store_job_devices(struct db *db, const struct job_rec *j, int64_t after, size_t limit,
    struct db_rows **rows, struct devid_error *e)
{
	if (j->batch_id != 0) {
		struct db_param p[] = {
		    DB_INT(j->batch_id), DB_INT(after), DB_INT(j->remove), DB_INT((int64_t)limit)};

		return db_query(db,
		    "SELECT d.id, d.udid, d.serial, d.cert, b.name, d.kind FROM devices d"
		    " JOIN batches b ON b.id = d.batch_id WHERE d.batch_id = ? AND d.id > ?"
		    " AND (? = 1 OR d.state = 'active') ORDER BY d.id LIMIT ?",
		    p, 4, rows, e);
	} else {
		/* an add of a device revoked since the job was written delivers nothing; a
		 * notice is about the device whatever its state (a quarantine revoked it) */
		struct db_param p[] = {
		    DB_TEXT(j->udid), DB_INT(after), DB_INT(j->remove || j->suspicion_id != 0)};

		return db_query(db,
		    "SELECT d.id, d.udid, d.serial, d.cert, b.name, d.kind FROM devices d"
		    " JOIN batches b ON b.id = d.batch_id WHERE d.udid = ? AND d.id > ?"
		    " AND (? = 1 OR d.state = 'active')",
		    p, 3, rows, e);
	}
}

int
store_job_get(
    struct db *db, int64_t tenant_id, int64_t id, struct job_rec *j, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(id), DB_INT(tenant_id)};
	struct db_rows *r;
	int rc;

	memset(j, 0, sizeof(*j));
	if ((rc = db_query(db, JOB_COLUMNS " WHERE j.id = ? AND j.tenant_id = ?", p, 2, &r, e)) !=
	    0)
		return rc;
	if (db_rows_count(r) == 0)
		rc = devid_error_set(e, DEVID_ENOTFOUND, "no job %lld", (long long)id);
	else
		job_from_row(r, 0, j);
	db_rows_free(r);
	return rc;
}

int
store_job_result(struct db *db, int64_t job_id, const char *udid, const char *status,
    const char *message, int64_t at, struct devid_error *e)
{
	char msg[256];

	/* kept short: a cloud's message says why, the rest is noise */
	snprintf(msg, sizeof(msg), "%s", message != NULL ? message : "");
	{
		struct db_param p[] = {DB_INT(job_id), DB_TEXT(udid), DB_TEXT(status),
		    message != NULL ? DB_TEXT(msg) : DB_NULL, DB_INT(at)};

		return db_exec(db,
		    "INSERT INTO job_devices (job_id, udid, status, message, at)"
		    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (job_id, udid) DO UPDATE SET"
		    " status = excluded.status, message = excluded.message, at = excluded.at",
		    p, 5, NULL, e);
	}
}

int
store_job_results(struct db *db, int64_t job_id, const char *status, const char *after,
    size_t limit, struct db_rows **rows, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(job_id), status ? DB_TEXT(status) : DB_NULL,
	    status ? DB_TEXT(status) : DB_NULL, DB_TEXT(after ? after : ""),
	    DB_INT((int64_t)limit)};

	return db_query(db,
	    "SELECT udid, status, message, at FROM job_devices WHERE job_id = ?"
	    " AND (CAST(? AS TEXT) IS NULL OR status = ?) AND udid > ? ORDER BY udid LIMIT ?",
	    p, 5, rows, e);
}
