/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The VFS that gathers SQLite's writes (src/store/db_sqlite_vfs.h) loses and reorders
 * nothing: a transaction of 600 rows of 3 KB (WAL frames, many to a gathered write), with a
 * statement of 300 rows that fails on a UNIQUE constraint at its last (its statement journal
 * written to a file and read back to undo it), is seen whole by a second connection as soon as it
 * commits and not at all before; a rolled-back transaction leaves nothing; after a checkpoint
 * copies the WAL into the database, SQLite's own VFS reads every row back intact and finds the file
 * sound.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "store/db_sqlite_vfs.h"
#include "test.h"
#include "lib/banned.h"

#define ROWS 600
#define ROW_BYTES 3000

static sqlite3 *
open_db(const char *path, const char *vfs)
{
	sqlite3 *h = NULL;

	CHECK(
	    sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs) == SQLITE_OK,
	    "open %s with %s", path, vfs != NULL ? vfs : "the default VFS");
	CHECK(sqlite3_exec(h, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL,
		  NULL) == SQLITE_OK,
	    "WAL, synchronous=FULL");
	return h;
}

static int64_t
count(sqlite3 *h, const char *sql)
{
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return n;
}

/* Row i's bytes: a pattern no two rows share. */
static void
row_bytes(int i, unsigned char *b)
{
	for (int j = 0; j < ROW_BYTES; j++)
		b[j] = (unsigned char)(i * 31 + j * 7 + (j >> 8));
	memcpy(b, &i, sizeof(i));
}

/* Inserts rows [from, to) in one statement each; false on the first failure. */
static bool
insert(sqlite3 *h, int from, int to)
{
	unsigned char b[ROW_BYTES];
	sqlite3_stmt *st = NULL;
	bool ok =
	    sqlite3_prepare_v2(h, "INSERT INTO t (k, v) VALUES (?, ?)", -1, &st, NULL) == SQLITE_OK;

	for (int i = from; ok && i < to; i++) {
		row_bytes(i, b);
		ok = sqlite3_bind_int(st, 1, i) == SQLITE_OK &&
		    sqlite3_bind_blob(st, 2, b, sizeof(b), SQLITE_TRANSIENT) == SQLITE_OK &&
		    sqlite3_step(st) == SQLITE_DONE && sqlite3_reset(st) == SQLITE_OK;
	}
	sqlite3_finalize(st);
	return ok;
}

/* Every row k in [0, n) holds row_bytes(k), and there are no others. */
static bool
rows_intact(sqlite3 *h, int n)
{
	unsigned char want[ROW_BYTES];
	sqlite3_stmt *st = NULL;
	int seen = 0;
	bool ok =
	    sqlite3_prepare_v2(h, "SELECT k, v FROM t ORDER BY k", -1, &st, NULL) == SQLITE_OK;

	while (ok && sqlite3_step(st) == SQLITE_ROW) {
		row_bytes(seen, want);
		ok = sqlite3_column_int(st, 0) == seen &&
		    sqlite3_column_bytes(st, 1) == ROW_BYTES &&
		    memcmp(sqlite3_column_blob(st, 1), want, ROW_BYTES) == 0;
		seen++;
	}
	sqlite3_finalize(st);
	return ok && seen == n;
}

int
main(void)
{
	char dir[] = "/tmp/devid-test-vfs-XXXXXX", path[PATH_MAX];
	sqlite3 *a, *b, *plain;

	CHECK(db_sqlite_vfs_register() == SQLITE_OK, "the VFS registers");
	CHECK(db_sqlite_vfs_register() == SQLITE_OK, "and again, once");
	if (mkdtemp(dir) == NULL)
		test_skip("no temporary directory");
	snprintf(path, sizeof(path), "%s/t.db", dir);
	a = open_db(path, GATHER_VFS);
	b = open_db(path, GATHER_VFS);
	CHECK(sqlite3_exec(a, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL UNIQUE)",
		  NULL, NULL, NULL) == SQLITE_OK,
	    "create");

	/* one transaction: half the rows, a duplicate refused, the other half */
	CHECK(sqlite3_exec(a, "BEGIN", NULL, NULL, NULL) == SQLITE_OK, "begin");
	CHECK(insert(a, 0, ROWS / 2), "first %d rows", ROWS / 2);
	/*
	 * 299 rows of new random values, then row 299's own value again: the statement's
	 * journal outgrows memory (64 KiB) into a file, and is read back to undo it
	 */
	CHECK(sqlite3_exec(a,
		  "INSERT INTO t (k, v) SELECT k + 100000, CASE WHEN k < 299 THEN randomblob(3000) "
		  "ELSE v END FROM t ORDER BY k",
		  NULL, NULL, NULL) == SQLITE_CONSTRAINT_UNIQUE ||
		sqlite3_extended_errcode(a) == SQLITE_CONSTRAINT_UNIQUE,
	    "a statement ending in a duplicate value is refused: %s", sqlite3_errmsg(a));
	CHECK(count(a, "SELECT COUNT(*) FROM t") == ROWS / 2, "and undone whole");
	CHECK(insert(a, ROWS / 2, ROWS), "other %d rows", ROWS / 2);
	CHECK(count(b, "SELECT COUNT(*) FROM t") == 0, "nothing visible before the commit");
	CHECK(sqlite3_exec(a, "COMMIT", NULL, NULL, NULL) == SQLITE_OK, "commit");
	CHECK(rows_intact(b, ROWS), "the other connection reads all %d rows intact", ROWS);

	/* a rolled-back transaction leaves nothing */
	CHECK(sqlite3_exec(a, "BEGIN", NULL, NULL, NULL) == SQLITE_OK &&
		insert(a, ROWS, 2 * ROWS) &&
		sqlite3_exec(a, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK,
	    "a transaction rolled back");
	CHECK(count(b, "SELECT COUNT(*) FROM t") == ROWS, "the rollback left nothing");

	/* the WAL copied into the database, read by SQLite's own VFS */
	CHECK(sqlite3_exec(b, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) == SQLITE_OK,
	    "checkpoint");
	sqlite3_close(a);
	sqlite3_close(b);
	plain = open_db(path, NULL);
	CHECK(rows_intact(plain, ROWS), "SQLite's own VFS reads all %d rows intact", ROWS);
	{
		sqlite3_stmt *st = NULL;

		CHECK(sqlite3_prepare_v2(plain, "PRAGMA integrity_check", -1, &st, NULL) ==
			    SQLITE_OK &&
			sqlite3_step(st) == SQLITE_ROW &&
			strcmp((const char *)sqlite3_column_text(st, 0), "ok") == 0,
		    "integrity_check: ok");
		sqlite3_finalize(st);
	}
	sqlite3_close(plain);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	CHECK(system(path) == 0, "remove %s", dir);
	return test_done();
}
