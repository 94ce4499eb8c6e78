/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db_impl.h"
#include "lib/banned.h"

int
db_open(const char *url, struct db **out, struct devid_error *e)
{
	struct db *db;
	int rc;

	*out = NULL;
	if ((db = calloc(1, sizeof(*db))) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "database: out of memory");
	if (strncmp(url, "sqlite:", 7) == 0)
		rc = db_sqlite_open(url + 7, db, e);
	else if (strncmp(url, "postgres://", 11) == 0 || strncmp(url, "postgresql://", 13) == 0)
		rc = db_pg_open(url, db, e);
	else
		rc = devid_error_set(
		    e, DEVID_EINVAL, "database URL must be sqlite:PATH or postgres://...");
	if (rc != 0) {
		free(db);
		return rc;
	}
	*out = db;
	return 0;
}

void
db_close(struct db *db)
{
	if (db == NULL)
		return;
	db->drv->close(db);
	free(db);
}

int
db_backup(struct db *db, const char *path, struct devid_error *e)
{
	if (db->drv->backup == NULL)
		return devid_error_set(e, DEVID_EINVAL,
		    "a PostgreSQL database is backed up with pg_dump (docs/operations.md)");
	return db->drv->backup(db, path, e);
}

enum db_kind
db_get_kind(const struct db *db)
{
	return db->kind;
}

int
db_exec(struct db *db, const char *sql, const struct db_param *params, size_t nparams,
    int64_t *changes, struct devid_error *e)
{
	return db->drv->exec(db, sql, params, nparams, changes, e);
}

int
db_query(struct db *db, const char *sql, const struct db_param *params, size_t nparams,
    struct db_rows **out, struct devid_error *e)
{
	return db->drv->query(db, sql, params, nparams, out, e);
}

void
db_on_wal_commit(struct db *db, void (*fn)(void *arg, int pages), void *arg)
{
	if (db->drv->on_wal_commit != NULL)
		db->drv->on_wal_commit(db, fn, arg);
}

int
db_checkpoint(struct db *db, struct devid_error *e)
{
	return db->drv->checkpoint != NULL ? db->drv->checkpoint(db, e) : 0;
}

void
db_share_writer_lock(struct db *db, pthread_mutex_t *lock)
{
	if (db->kind == DB_SQLITE)
		db->writer = lock;
}

static void
writer_release(struct db *db)
{
	if (db->writing) {
		db->writing = false;
		pthread_mutex_unlock(db->writer);
	}
}

int
db_begin(struct db *db, struct devid_error *e)
{
	struct timespec until;
	int rc;

	if (db->writer != NULL) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += DB_WRITER_WAIT_SECS;
		if (pthread_mutex_timedlock(db->writer, &until) != 0)
			return devid_error_set(e, DEVID_EIO,
			    "database: busy (another writer of this process held it for %d s)",
			    DB_WRITER_WAIT_SECS);
		db->writing = true;
	}
	/* SQLite: take the write lock now, so two writers never deadlock on an upgrade */
	rc = db_exec(db, db->kind == DB_SQLITE ? "BEGIN IMMEDIATE" : "BEGIN", NULL, 0, NULL, e);
	if (rc != 0)
		writer_release(db);
	return rc;
}

int
db_commit(struct db *db, struct devid_error *e)
{
	int rc = db_exec(db, "COMMIT", NULL, 0, NULL, e);

	/* a COMMIT that failed may leave the transaction open (SQLITE_BUSY): end it */
	if (rc != 0)
		db_exec(db, "ROLLBACK", NULL, 0, NULL, NULL);
	writer_release(db);
	return rc;
}

void
db_rollback(struct db *db)
{
	db_exec(db, "ROLLBACK", NULL, 0, NULL, NULL);
	writer_release(db);
}

struct db_rows *
db_rows_new(size_t nrows, size_t ncols)
{
	struct db_rows *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->nrows = nrows;
	r->ncols = ncols;
	if (nrows > 0 && ncols > 0 &&
	    (r->cells = calloc(nrows * ncols, sizeof(*r->cells))) == NULL) {
		free(r);
		return NULL;
	}
	for (size_t i = 0; i < nrows * ncols; i++)
		r->cells[i].null = true;
	return r;
}

int
db_cell_set(struct db_cell *c, const void *p, size_t n)
{
	if ((c->p = malloc(n + 1)) == NULL)
		return DEVID_ENOMEM;
	if (n > 0)
		memcpy(c->p, p, n);
	c->p[n] = '\0';
	c->n = n;
	c->null = false;
	return 0;
}

static const struct db_cell *
cell(const struct db_rows *r, size_t row, size_t col)
{
	if (r == NULL || row >= r->nrows || col >= r->ncols)
		return NULL;
	return &r->cells[row * r->ncols + col];
}

size_t
db_rows_count(const struct db_rows *r)
{
	return r != NULL ? r->nrows : 0;
}

bool
db_rows_null(const struct db_rows *r, size_t row, size_t col)
{
	const struct db_cell *c = cell(r, row, col);

	return c == NULL || c->null;
}

int64_t
db_rows_int(const struct db_rows *r, size_t row, size_t col)
{
	const struct db_cell *c = cell(r, row, col);

	return c == NULL || c->null ? 0 : c->i;
}

const char *
db_rows_text(const struct db_rows *r, size_t row, size_t col, size_t *len)
{
	const struct db_cell *c = cell(r, row, col);

	if (len != NULL)
		*len = c == NULL || c->null ? 0 : c->n;
	return c == NULL || c->null ? "" : (const char *)c->p;
}

const uint8_t *
db_rows_blob(const struct db_rows *r, size_t row, size_t col, size_t *len)
{
	return (const uint8_t *)db_rows_text(r, row, col, len);
}

void
db_rows_free(struct db_rows *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->nrows * r->ncols; i++)
		free(r->cells[i].p);
	free(r->cells);
	free(r);
}
