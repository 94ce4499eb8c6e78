/* SPDX-License-Identifier: Apache-2.0 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "store/store.h"
#include "lib/banned.h"

struct store {
	pthread_mutex_t lock;
	pthread_cond_t freed;
	pthread_mutex_t writer; /* SQLite: the pool's writers take turns on it (db.h) */
	/* SQLite with a pool: the write-ahead log is checkpointed here, on a connection and a
	 * thread of its own, once a commit leaves it over STORE_WAL_PAGES pages */
	struct db *ckpt_db;
	pthread_t ckpt_thread;
	pthread_cond_t ckpt_wake;
	bool ckpt_due, ckpt_stop; /* under lock */
	struct db *conns[STORE_MAX_CONNS];
	bool busy[STORE_MAX_CONNS];
	int n;
	/* under lock, like busy: a scrape reads them as the pool is, at no cost to acquire */
	int in_use;
	uint64_t waits, wait_ns;
	uint64_t checkpoints;
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void
store_close(struct store *s)
{
	if (s == NULL)
		return;
	if (s->ckpt_db != NULL) {
		pthread_mutex_lock(&s->lock);
		s->ckpt_stop = true;
		pthread_cond_signal(&s->ckpt_wake);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->ckpt_thread, NULL);
		db_close(s->ckpt_db);
	}
	for (int i = 0; i < s->n; i++)
		db_close(s->conns[i]);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->freed);
	pthread_mutex_destroy(&s->writer);
	pthread_cond_destroy(&s->ckpt_wake);
	free(s);
}

/* After a commit on a pool connection (the writer still holds the writer lock): cheap. */
static void
wal_committed(void *arg, int pages)
{
	struct store *s = arg;

	if (pages < STORE_WAL_PAGES)
		return;
	pthread_mutex_lock(&s->lock);
	s->ckpt_due = true;
	pthread_cond_signal(&s->ckpt_wake);
	pthread_mutex_unlock(&s->lock);
}

static void *
checkpointer(void *arg)
{
	struct store *s = arg;
	struct devid_error e;
	int rc;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->ckpt_due && !s->ckpt_stop)
			pthread_cond_wait(&s->ckpt_wake, &s->lock);
		if (s->ckpt_stop)
			break;
		s->ckpt_due = false;
		pthread_mutex_unlock(&s->lock);
		devid_error_clear(&e);
		rc = db_checkpoint(s->ckpt_db, &e);
		if (rc != 0)
			log_warn("checkpoint failed", LOG_STR("error", e.msg));
		pthread_mutex_lock(&s->lock);
		if (rc == 0)
			s->checkpoints++;
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* The checkpointer of a SQLite pool: its connection, its thread, and the pool's hooks. */
static int
checkpointer_start(struct store *s, const char *url, struct devid_error *e)
{
	int rc;

	if ((rc = db_open(url, &s->ckpt_db, e)) != 0)
		return rc;
	if (pthread_create(&s->ckpt_thread, NULL, checkpointer, s) != 0) {
		db_close(s->ckpt_db);
		s->ckpt_db = NULL;
		return devid_error_set(e, DEVID_ENOMEM, "store: cannot start the checkpointer");
	}
	for (int i = 0; i < s->n; i++)
		db_on_wal_commit(s->conns[i], wal_committed, s);
	return 0;
}

int
store_open(const char *url, int nconns, struct store **out, struct devid_error *e)
{
	struct store *s;
	int rc;

	*out = NULL;
	if (nconns < 1 || nconns > STORE_MAX_CONNS)
		return devid_error_set(e, DEVID_EINVAL, "store: %d connections, allowed 1 to %d",
		    nconns, STORE_MAX_CONNS);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "store: out of memory");
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->freed, NULL);
	pthread_mutex_init(&s->writer, NULL);
	pthread_cond_init(&s->ckpt_wake, NULL);
	for (; s->n < nconns; s->n++) {
		if ((rc = db_open(url, &s->conns[s->n], e)) != 0)
			goto fail;
		db_share_writer_lock(s->conns[s->n], &s->writer);
	}
	if ((rc = store_migrate(s->conns[0], e)) != 0 ||
	    (nconns > 1 && db_get_kind(s->conns[0]) == DB_SQLITE &&
		(rc = checkpointer_start(s, url, e)) != 0))
		goto fail;
	*out = s;
	return 0;
fail:
	store_close(s);
	return rc;
}

struct db *
store_acquire(struct store *s)
{
	struct db *db = NULL;
	uint64_t waited = 0; /* when the wait began, once one did */

	pthread_mutex_lock(&s->lock);
	while (db == NULL) {
		for (int i = 0; i < s->n && db == NULL; i++) {
			if (!s->busy[i]) {
				s->busy[i] = true;
				db = s->conns[i];
			}
		}
		if (db == NULL) {
			if (waited == 0) {
				waited = now_ns();
				s->waits++;
			}
			pthread_cond_wait(&s->freed, &s->lock);
		}
	}
	s->in_use++;
	if (waited != 0)
		s->wait_ns += now_ns() - waited;
	pthread_mutex_unlock(&s->lock);
	return db;
}

void
store_release(struct store *s, struct db *db)
{
	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->n; i++) {
		if (s->conns[i] == db && s->busy[i]) {
			s->busy[i] = false;
			s->in_use--;
		}
	}
	pthread_cond_signal(&s->freed);
	pthread_mutex_unlock(&s->lock);
}

void
store_pool_stats(struct store *s, struct store_pool_stats *out)
{
	pthread_mutex_lock(&s->lock);
	out->size = s->n;
	out->in_use = s->in_use;
	out->waits = s->waits;
	out->wait_ns = s->wait_ns;
	out->checkpoints = s->checkpoints;
	pthread_mutex_unlock(&s->lock);
}

static const char *const kind_names[] = {"vendor", "oem"};
static const char *const role_names[] = {"vendor", "admin", "operator"};

const char *
tenant_kind_name(enum tenant_kind k)
{
	return kind_names[k];
}

int
tenant_kind_parse(const char *s, enum tenant_kind *out)
{
	for (size_t i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++) {
		if (strcmp(s, kind_names[i]) == 0) {
			*out = (enum tenant_kind)i;
			return 0;
		}
	}
	return DEVID_EINVAL;
}

const char *
role_name(enum role r)
{
	return role_names[r];
}

int
role_parse(const char *s, enum role *out)
{
	for (size_t i = 0; i < sizeof(role_names) / sizeof(role_names[0]); i++) {
		if (strcmp(s, role_names[i]) == 0) {
			*out = (enum role)i;
			return 0;
		}
	}
	return DEVID_EINVAL;
}

int
store_tenant_add(
    struct db *db, const char *name, enum tenant_kind kind, int64_t *id, struct devid_error *e)
{
	struct db_param p[] = {DB_TEXT(name), DB_TEXT(tenant_kind_name(kind)), DB_INT(time(NULL))};
	struct db_rows *r;
	int rc;

	rc = db_query(db,
	    "INSERT INTO tenants (name, kind, created_at) VALUES (?, ?, ?) RETURNING id", p, 3, &r,
	    e);
	if (rc == DEVID_ECONFLICT)
		return devid_error_set(e, rc, "tenant \"%s\" already exists", name);
	if (rc != 0)
		return rc;
	if (id != NULL)
		*id = db_rows_int(r, 0, 0);
	db_rows_free(r);
	return 0;
}

static int
tenant_from_row(const struct db_rows *r, size_t row, size_t col, struct tenant *t)
{
	t->id = db_rows_int(r, row, col);
	snprintf(t->name, sizeof(t->name), "%s", db_rows_text(r, row, col + 1, NULL));
	return tenant_kind_parse(db_rows_text(r, row, col + 2, NULL), &t->kind);
}

/* The one tenant a query on one key finds; what names it in the "not found" message. */
static int
tenant_find(struct db *db, const char *sql, struct db_param key, const char *what, struct tenant *t,
    struct devid_error *e)
{
	struct db_rows *r;
	int rc;

	if ((rc = db_query(db, sql, &key, 1, &r, e)) != 0)
		return rc;
	if (db_rows_count(r) == 0)
		rc = devid_error_set(e, DEVID_ENOTFOUND, "no tenant %s", what);
	else
		rc = tenant_from_row(r, 0, 0, t);
	db_rows_free(r);
	return rc;
}

int
store_tenant_get(struct db *db, const char *name, struct tenant *t, struct devid_error *e)
{
	char what[MAX_NAME_LEN + 3];

	snprintf(what, sizeof(what), "\"%s\"", name);
	return tenant_find(
	    db, "SELECT id, name, kind FROM tenants WHERE name = ?", DB_TEXT(name), what, t, e);
}

int
store_tenant_by_id(struct db *db, int64_t id, struct tenant *t, struct devid_error *e)
{
	char what[24];

	snprintf(what, sizeof(what), "%lld", (long long)id);
	return tenant_find(
	    db, "SELECT id, name, kind FROM tenants WHERE id = ?", DB_INT(id), what, t, e);
}

int
store_token_add(struct db *db, int64_t tenant_id, enum role role, const char *sha256_hex,
    const char *name, int64_t expires_at, int64_t *id, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), DB_TEXT(role_name(role)), DB_TEXT(sha256_hex),
	    DB_INT(time(NULL)), name != NULL ? DB_TEXT(name) : DB_NULL,
	    expires_at > 0 ? DB_INT(expires_at) : DB_NULL};
	struct db_rows *r;
	int64_t tid;
	int rc;

	rc = db_query(db,
	    "INSERT INTO tokens (tenant_id, role, token_sha256, created_at, name, expires_at)"
	    " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
	    p, 6, &r, e);
	if (rc == DEVID_ECONFLICT)
		return devid_error_set(
		    e, rc, "the tenant has a token named \"%s\" already", name != NULL ? name : "");
	if (rc != 0)
		return rc;
	tid = db_rows_int(r, 0, 0);
	db_rows_free(r);
	if (name == NULL) {
		struct db_param q[] = {DB_INT(tid)};

		rc = db_exec(db,
		    "UPDATE tokens SET name = 'token-' || CAST(id AS TEXT) WHERE id = ?", q, 1,
		    NULL, e);
		if (rc != 0)
			return rc;
	}
	if (id != NULL)
		*id = tid;
	return 0;
}

int
store_token_lookup(struct db *db, const char *sha256_hex, int64_t now, struct token_rec *tok,
    struct devid_error *e)
{
	struct db_param p[] = {DB_TEXT(sha256_hex), DB_INT(now)};
	struct db_rows *r;
	int rc;

	memset(tok, 0, sizeof(*tok));
	rc = db_query(db,
	    "SELECT t.id, t.name, t.kind, k.role, k.id, k.name, k.last_used_at FROM tokens k"
	    " JOIN tenants t ON t.id = k.tenant_id"
	    " WHERE k.token_sha256 = ? AND k.revoked_at IS NULL"
	    " AND (k.expires_at IS NULL OR k.expires_at > ?)",
	    p, 2, &r, e);
	if (rc != 0)
		return rc;
	if (db_rows_count(r) == 0)
		rc = devid_error_set(e, DEVID_ENOTFOUND, "unknown token");
	else if ((rc = tenant_from_row(r, 0, 0, &tok->tenant)) == 0 &&
	    (rc = role_parse(db_rows_text(r, 0, 3, NULL), &tok->role)) == 0) {
		tok->id = db_rows_int(r, 0, 4);
		snprintf(tok->name, sizeof(tok->name), "%s", db_rows_text(r, 0, 5, NULL));
		tok->last_used_at = db_rows_int(r, 0, 6);
	}
	db_rows_free(r);
	return rc;
}

int
store_trust_add(struct db *db, int64_t vendor_id, const char *root_pem, const char *signer_pem,
    const char *signer_sha256_hex, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(vendor_id), DB_TEXT(root_pem), DB_TEXT(signer_pem),
	    DB_TEXT(signer_sha256_hex), DB_INT(time(NULL))};
	int rc;

	rc = db_exec(db,
	    "INSERT INTO vendor_trust (vendor_id, root_pem, signer_pem, signer_sha256, created_at)"
	    " VALUES (?, ?, ?, ?, ?)",
	    p, 5, NULL, e);
	if (rc == DEVID_ECONFLICT)
		devid_error_set(e, rc, "this manifest signer is already trusted for the vendor");
	return rc;
}
