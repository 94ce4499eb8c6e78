/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db_impl.h - what db.c shares with its two drivers (db_sqlite.c, db_pg.c). Not for callers.
 */
#ifndef DEVID_DB_IMPL_H
#define DEVID_DB_IMPL_H

#include <pthread.h>

#include "db.h"

struct db_cell {
	bool null;
	int64_t i; /* the value of an integer cell; for text, strtoll of it */
	uint8_t *p; /* the bytes, NUL-terminated (text of an integer for integer cells) */
	size_t n;
};

struct db_rows {
	size_t nrows, ncols;
	struct db_cell *cells; /* nrows * ncols, row-major */
};

struct db_driver {
	int (*exec)(struct db *db, const char *sql, const struct db_param *params, size_t n,
	    int64_t *changes, struct devid_error *e);
	int (*query)(struct db *db, const char *sql, const struct db_param *params, size_t n,
	    struct db_rows **out, struct devid_error *e);
	void (*close)(struct db *db);
	/* NULL: the database has its own tools (pg_dump) */
	int (*backup)(struct db *db, const char *path, struct devid_error *e);
	/* NULL: the database checkpoints on its own (PostgreSQL) */
	void (*on_wal_commit)(struct db *db, void (*fn)(void *arg, int pages), void *arg);
	int (*checkpoint)(struct db *db, struct devid_error *e);
};

struct db {
	enum db_kind kind;
	const struct db_driver *drv;
	void *conn;
	pthread_mutex_t *writer; /* db_share_writer_lock's, or NULL */
	bool writing; /* holds *writer: between db_begin and db_commit or db_rollback */
};

/* New rows with every cell NULL, or NULL when out of memory. */
struct db_rows *db_rows_new(size_t nrows, size_t ncols);
/* Copies n bytes into a cell (adds the NUL). */
int db_cell_set(struct db_cell *c, const void *p, size_t n);

int db_sqlite_open(const char *path, struct db *db, struct devid_error *e);
int db_pg_open(const char *conninfo, struct db *db, struct devid_error *e);

#endif
