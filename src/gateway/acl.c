/* SPDX-License-Identifier: Apache-2.0 */
/*
 * acl.c - the gateway's ACL and the events applied to it, in SQLite (src/store/db.h).
 *
 * A small pool of connections, one per thread that may use the ACL at once (a db connection
 * belongs to one thread at a time): the device port reads (one primary-key lookup per
 * request), the admin port writes (one transaction per event). WAL lets the readers go on
 * while an event commits. The schema is versioned in gateway_schema and created at start.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway/gateway.h"
#include "store/db.h"
#include "lib/xmalloc.h"
#include "lib/banned.h"

#define ACL_MAX_CONNS 64
#define ACL_SCHEMA_VERSION 1

struct acl {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned n;
	struct db **conns;
	bool *busy;
};

static const char *const schema_v1[] = {
    "CREATE TABLE gateway_acl ("
    " udid TEXT PRIMARY KEY,"
    " serial TEXT NOT NULL,"
    " batch TEXT NOT NULL,"
    " tenant TEXT NOT NULL,"
    " certificate TEXT NOT NULL,"
    " state TEXT NOT NULL CHECK (state IN ('active', 'removed')),"
    " event TEXT NOT NULL," /* the last event that changed the row */
    " updated_at INTEGER NOT NULL)",

    "CREATE TABLE gateway_events ("
    " id TEXT PRIMARY KEY,"
    " action TEXT NOT NULL CHECK (action IN ('add', 'remove')),"
    " tenant TEXT NOT NULL,"
    " devices INTEGER NOT NULL,"
    " changed INTEGER NOT NULL,"
    " received_at INTEGER NOT NULL)",
};

static struct db *
conn_take(struct acl *a)
{
	struct db *db = NULL;

	pthread_mutex_lock(&a->mu);
	while (db == NULL) {
		for (unsigned i = 0; i < a->n && db == NULL; i++) {
			if (!a->busy[i]) {
				a->busy[i] = true;
				db = a->conns[i];
			}
		}
		if (db == NULL)
			pthread_cond_wait(&a->cv, &a->mu);
	}
	pthread_mutex_unlock(&a->mu);
	return db;
}

static void
conn_give(struct acl *a, struct db *db)
{
	pthread_mutex_lock(&a->mu);
	for (unsigned i = 0; i < a->n; i++) {
		if (a->conns[i] == db)
			a->busy[i] = false;
	}
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

/* Creates the schema, or checks the one there is, in one transaction. */
static int
schema_ensure(struct db *db, const char *path, struct devid_error *e)
{
	struct db_rows *r = NULL;
	struct db_param p[] = {DB_INT(ACL_SCHEMA_VERSION), DB_INT(time(NULL))};
	int64_t have;
	int rc;

	if ((rc = db_begin(db, e)) != 0)
		goto out;
	if ((rc = db_exec(db,
		 "CREATE TABLE IF NOT EXISTS gateway_schema (version INTEGER PRIMARY KEY,"
		 " applied_at INTEGER NOT NULL)",
		 NULL, 0, NULL, e)) != 0 ||
	    (rc = db_query(
		 db, "SELECT COALESCE(MAX(version), 0) FROM gateway_schema", NULL, 0, &r, e)) != 0)
		goto rollback;
	have = db_rows_int(r, 0, 0);
	if (have > ACL_SCHEMA_VERSION) {
		rc = devid_error_set(e, DEVID_EINVAL,
		    "%s: gateway schema version %lld is newer than this devid's (%d)", path,
		    (long long)have, ACL_SCHEMA_VERSION);
		goto rollback;
	}
	if (have < 1) {
		for (size_t i = 0; i < sizeof(schema_v1) / sizeof(schema_v1[0]); i++) {
			if ((rc = db_exec(db, schema_v1[i], NULL, 0, NULL, e)) != 0)
				goto rollback;
		}
		if ((rc = db_exec(db,
			 "INSERT INTO gateway_schema (version, applied_at) VALUES (?, ?)", p, 2,
			 NULL, e)) != 0)
			goto rollback;
	}
	rc = db_commit(db, e);
	goto out;
rollback:
	db_rollback(db);
out:
	db_rows_free(r);
	return rc;
}

int
acl_open(const char *path, unsigned nconns, struct acl **out, struct devid_error *e)
{
	struct acl *a = NULL;
	char *url = NULL;
	size_t n;
	int rc = DEVID_EINVAL;

	*out = NULL;
	if (nconns < 1 || nconns > ACL_MAX_CONNS) {
		devid_error_set(
		    e, rc, "acl: %u connections, allowed 1 to %d", nconns, ACL_MAX_CONNS);
		goto out;
	}
	if (path == NULL || *path == '\0') {
		devid_error_set(e, rc, "acl: no database path");
		goto out;
	}
	n = strlen(path) + sizeof("sqlite:");
	url = xmalloc(n);
	snprintf(url, n, "sqlite:%s", path);
	a = xcalloc(1, sizeof(*a));
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	a->conns = xcalloc(nconns, sizeof(*a->conns));
	a->busy = xcalloc(nconns, sizeof(*a->busy));
	for (; a->n < nconns; a->n++) {
		if ((rc = db_open(url, &a->conns[a->n], e)) != 0) {
			devid_error_prefix(e, "acl");
			goto out;
		}
	}
	if ((rc = schema_ensure(a->conns[0], path, e)) != 0) {
		devid_error_prefix(e, "acl: %s", path);
		goto out;
	}
	*out = a;
	a = NULL;
	rc = 0;
out:
	acl_close(a);
	free(url);
	return rc;
}

void
acl_close(struct acl *a)
{
	if (a == NULL)
		return;
	for (unsigned i = 0; i < a->n; i++)
		db_close(a->conns[i]);
	free(a->conns);
	free(a->busy);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

int
acl_lookup(struct acl *a, const char *udid, enum acl_state *state, char tenant[MAX_NAME_LEN + 1],
    struct devid_error *e)
{
	struct db_param p[] = {DB_TEXT(udid)};
	struct db_rows *r = NULL;
	struct db *db = conn_take(a);
	int rc;

	*state = ACL_ABSENT;
	if (tenant != NULL)
		tenant[0] = '\0';
	rc = db_query(db, "SELECT state, tenant FROM gateway_acl WHERE udid = ?", p, 1, &r, e);
	conn_give(a, db);
	if (rc != 0)
		return rc;
	if (db_rows_count(r) == 1) {
		*state =
		    strcmp(db_rows_text(r, 0, 0, NULL), "active") == 0 ? ACL_ACTIVE : ACL_REMOVED;
		/* the events' parser admits only [A-Z0-9.-]{1,64}: it fits */
		if (tenant != NULL)
			snprintf(tenant, MAX_NAME_LEN + 1, "%s", db_rows_text(r, 0, 1, NULL));
	}
	db_rows_free(r);
	return 0;
}

/* One device of an event, inside the caller's transaction; *changed if its row was written. */
static int
device_apply(struct db *db, const struct gateway_event *ev, const struct gateway_device *d,
    int64_t now, bool *changed, struct devid_error *e)
{
	/* add: insert, or take the row over (re-activated, for this tenant, these details) */
	static const char add_sql[] =
	    "INSERT INTO gateway_acl (udid, serial, batch, tenant, certificate, state, event,"
	    " updated_at) VALUES (?, ?, ?, ?, ?, 'active', ?, ?)"
	    " ON CONFLICT (udid) DO UPDATE SET serial = excluded.serial,"
	    " batch = excluded.batch, tenant = excluded.tenant,"
	    " certificate = excluded.certificate, state = 'active', event = excluded.event,"
	    " updated_at = excluded.updated_at";
	/* remove: a tombstone if absent; only the row's own tenant may remove it */
	static const char remove_sql[] =
	    "INSERT INTO gateway_acl (udid, serial, batch, tenant, certificate, state, event,"
	    " updated_at) VALUES (?, ?, ?, ?, ?, 'removed', ?, ?)"
	    " ON CONFLICT (udid) DO UPDATE SET state = 'removed', event = excluded.event,"
	    " updated_at = excluded.updated_at WHERE gateway_acl.tenant = excluded.tenant";
	struct db_param p[] = {DB_TEXT(d->udid), DB_TEXT(d->serial), DB_TEXT(d->batch),
	    DB_TEXT(ev->tenant), DB_TEXTN(d->certificate, d->certificate_len), DB_TEXT(ev->id),
	    DB_INT(now)};
	int64_t n = 0;
	int rc;

	rc = db_exec(db, ev->action == GATEWAY_ADD ? add_sql : remove_sql, p, 7, &n, e);
	*changed = rc == 0 && n > 0;
	return rc;
}

int
acl_apply(
    struct acl *a, const struct gateway_event *ev, struct acl_result *r, struct devid_error *e)
{
	int64_t now = time(NULL);
	struct db_param ep[] = {DB_TEXT(ev->id), DB_TEXT(gateway_action_name(ev->action)),
	    DB_TEXT(ev->tenant), DB_INT(ev->ndevices), DB_INT(now)};
	struct db *db = conn_take(a);
	bool changed;
	int rc;

	memset(r, 0, sizeof(*r));
	if ((rc = db_begin(db, e)) != 0)
		goto out;
	/* the event's record first: a repeat stops here, whatever its body says */
	rc = db_exec(db,
	    "INSERT INTO gateway_events (id, action, tenant, devices, changed, received_at)"
	    " VALUES (?, ?, ?, ?, 0, ?)",
	    ep, 5, NULL, e);
	if (rc == DEVID_ECONFLICT) {
		db_rollback(db);
		devid_error_clear(e);
		r->duplicate = true;
		rc = 0;
		goto out;
	}
	if (rc != 0)
		goto rollback;
	for (size_t i = 0; i < ev->ndevices; i++) {
		if ((rc = device_apply(db, ev, &ev->devices[i], now, &changed, e)) != 0)
			goto rollback;
		if (changed)
			r->changed++;
		else
			r->skipped++;
	}
	{
		struct db_param up[] = {DB_INT(r->changed), DB_TEXT(ev->id)};

		if ((rc = db_exec(db, "UPDATE gateway_events SET changed = ? WHERE id = ?", up, 2,
			 NULL, e)) != 0)
			goto rollback;
	}
	if ((rc = db_commit(db, e)) != 0)
		goto rollback;
	goto out;
rollback:
	db_rollback(db);
	r->changed = r->skipped = 0;
out:
	conn_give(a, db);
	return rc;
}

int
acl_list(struct acl *a, json_t **out, struct devid_error *e)
{
	struct db_rows *r = NULL;
	struct db *db = conn_take(a);
	json_t *devs = NULL, *o;
	int rc;

	*out = NULL;
	rc =
	    db_query(db, "SELECT udid, serial, batch, tenant, state FROM gateway_acl ORDER BY udid",
		NULL, 0, &r, e);
	conn_give(a, db);
	if (rc != 0)
		goto out;
	rc = DEVID_ENOMEM;
	if ((devs = json_array()) == NULL)
		goto nomem;
	for (size_t i = 0; i < db_rows_count(r); i++) {
		o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "udid", db_rows_text(r, i, 0, NULL),
		    "serial", db_rows_text(r, i, 1, NULL), "batch", db_rows_text(r, i, 2, NULL),
		    "tenant", db_rows_text(r, i, 3, NULL), "state", db_rows_text(r, i, 4, NULL));
		if (o == NULL || json_array_append_new(devs, o) != 0)
			goto nomem;
	}
	if ((*out = json_object()) == NULL || json_object_set(*out, "devices", devs) != 0) {
		json_decref(*out);
		*out = NULL;
		goto nomem;
	}
	rc = 0;
	goto out;
nomem:
	devid_error_set(e, rc, "acl: out of memory");
out:
	json_decref(devs);
	db_rows_free(r);
	return rc;
}
