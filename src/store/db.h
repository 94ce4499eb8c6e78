/* SPDX-License-Identifier: Apache-2.0 */
/*
 * db.h - one SQL connection, SQLite or PostgreSQL, behind one small interface.
 *
 * SQL is written once with '?' placeholders; the PostgreSQL driver rewrites them to $1..$n.
 * Results are fetched whole into a struct db_rows that the caller frees. A connection is used
 * by one thread at a time. Errors: DEVID_ECONFLICT for a unique or foreign-key violation,
 * DEVID_EIO for everything else the server reports, with the server's message in e.
 */
#ifndef DEVID_DB_H
#define DEVID_DB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lib/error.h"

enum db_kind { DB_SQLITE, DB_POSTGRES };

enum db_type { DB_TNULL, DB_TINT, DB_TTEXT, DB_TBLOB };

struct db_param {
	enum db_type type;
	int64_t i;
	const void *p;
	size_t n;
};

#define DB_NULL ((struct db_param){.type = DB_TNULL})
#define DB_INT(v) ((struct db_param){.type = DB_TINT, .i = (int64_t)(v)})
#define DB_TEXT(s) ((struct db_param){.type = DB_TTEXT, .p = (s), .n = strlen(s)})
#define DB_TEXTN(s, len) ((struct db_param){.type = DB_TTEXT, .p = (s), .n = (len)})
#define DB_BLOB(b, len) ((struct db_param){.type = DB_TBLOB, .p = (b), .n = (len)})

struct db;
struct db_rows;

/* url: "sqlite:PATH" or "postgres://…" / "postgresql://…". */
int db_open(const char *url, struct db **out, struct devid_error *e);
void db_close(struct db *db);
enum db_kind db_get_kind(const struct db *db);
/*
 * Copies a SQLite database into the new file path (mode 0600) with SQLite's online backup
 * API, while other connections read and write it, and checks the copy's integrity. The copy
 * is a whole database of one moment. DEVID_ECONFLICT if path exists, DEVID_EINVAL for
 * PostgreSQL (back it up with pg_dump); on failure no file is left at path.
 */
int db_backup(struct db *db, const char *path, struct devid_error *e);

/* Runs a statement; *changes (may be NULL) receives the number of rows it changed. */
int db_exec(struct db *db, const char *sql, const struct db_param *params, size_t nparams,
    int64_t *changes, struct devid_error *e);
/* Runs a query and fetches every row. */
int db_query(struct db *db, const char *sql, const struct db_param *params, size_t nparams,
    struct db_rows **out, struct devid_error *e);

/*
 * Transactions. db_begin takes the write lock at once (SQLite BEGIN IMMEDIATE). A commit
 * that fails is rolled back: either way the transaction is over.
 */
int db_begin(struct db *db, struct devid_error *e);
int db_commit(struct db *db, struct devid_error *e);
void db_rollback(struct db *db);

/*
 * SQLite: the connections of one process to one database take their turns to write on
 * lock, a mutex the caller owns and outlives them with: db_begin waits on it (at most
 * DB_WRITER_WAIT_SECS, SQLite's own busy timeout, then DEVID_EIO as SQLite's busy error),
 * and the end of the transaction hands it over. SQLite's busy handler, which polls the file
 * lock with sleeps of 1 ms and more, is left to writers in other processes. Nothing for
 * PostgreSQL, whose writers wait on each other's row locks.
 */
/*
 * SQLite's write-ahead log: on_wal_commit replaces SQLite's automatic checkpoint, which runs
 * in the committing connection (while it holds the process's writer lock) with fn(arg, pages
 * in the log), called after each commit; db_checkpoint then copies what it can of the log
 * into the database without waiting for or blocking anyone (PASSIVE). Nothing for PostgreSQL.
 */
void db_on_wal_commit(struct db *db, void (*fn)(void *arg, int pages), void *arg);
int db_checkpoint(struct db *db, struct devid_error *e);

#define DB_WRITER_WAIT_SECS 10
void db_share_writer_lock(struct db *db, pthread_mutex_t *lock);

size_t db_rows_count(const struct db_rows *r);
bool db_rows_null(const struct db_rows *r, size_t row, size_t col);
int64_t db_rows_int(const struct db_rows *r, size_t row, size_t col);
/* Borrowed from r, NUL-terminated; *len (may be NULL) excludes the NUL. "" for NULL. */
const char *db_rows_text(const struct db_rows *r, size_t row, size_t col, size_t *len);
const uint8_t *db_rows_blob(const struct db_rows *r, size_t row, size_t col, size_t *len);
void db_rows_free(struct db_rows *r);

#endif
