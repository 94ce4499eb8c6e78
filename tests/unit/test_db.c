/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The database layer behaves the same on SQLite and PostgreSQL: types round-trip (blobs with
 * NUL bytes included), '?' placeholders, unique violations are DEVID_ECONFLICT, a rolled-back
 * transaction leaves nothing; a new SQLite database and its -wal and -shm files are 0600 even
 * under a permissive umask. Usage: test_db sqlite|postgres (postgres reads
 * DEVID_TEST_PG_URL, set by scripts/with-postgres).
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/db.h"
#include "test.h"
#include "lib/banned.h"

int
main(int argc, char **argv)
{
	char tmp[PATH_MAX], url[PATH_MAX + 32];
	const uint8_t blob[] = {0, 1, 2, 0xff, 0, 'x'};
	struct devid_error e;
	struct db_rows *r = NULL;
	struct db *db = NULL;
	const uint8_t *b;
	int64_t changes = -1;
	size_t n;
	bool pg = argc > 1 && strcmp(argv[1], "postgres") == 0;

	devid_error_clear(&e);
	tmp[0] = '\0';
	umask(022); /* the usual umask: SQLite alone would make the files 0644 */
	if (pg) {
		const char *u = getenv("DEVID_TEST_PG_URL");

		if (u == NULL)
			test_skip("DEVID_TEST_PG_URL not set (run under scripts/with-postgres)");
		snprintf(url, sizeof(url), "%s", u);
	} else {
		test_tmpdir(tmp, sizeof(tmp), "db");
		snprintf(url, sizeof(url), "sqlite:%s/t.db", tmp);
	}
	CHECK(db_open(url, &db, &e) == 0, "open %s: %s", url, e.msg);
	if (db == NULL)
		return test_done();
	CHECK(db_get_kind(db) == (pg ? DB_POSTGRES : DB_SQLITE), "kind");
	db_exec(db, "DROP TABLE IF EXISTS t", NULL, 0, NULL, &e);
	CHECK(db_exec(db,
		  pg ? "CREATE TABLE t (k TEXT PRIMARY KEY, i BIGINT, b BYTEA, s TEXT)"
		     : "CREATE TABLE t (k TEXT PRIMARY KEY, i BIGINT, b BLOB, s TEXT)",
		  NULL, 0, NULL, &e) == 0,
	    "create: %s", e.msg);
	{
		struct db_param p[] = {
		    DB_TEXT("a"), DB_INT(-9000000000LL), DB_BLOB(blob, sizeof(blob)), DB_NULL};

		CHECK(db_exec(db, "INSERT INTO t (k, i, b, s) VALUES (?, ?, ?, ?)", p, 4, &changes,
			  &e) == 0 &&
			changes == 1,
		    "insert: %s", e.msg);
		CHECK(db_exec(db, "INSERT INTO t (k, i, b, s) VALUES (?, ?, ?, ?)", p, 4, NULL,
			  &e) == DEVID_ECONFLICT,
		    "duplicate key is a conflict: %s", e.msg);
	}
	{
		struct db_param p[] = {DB_TEXT("a")};

		CHECK(db_query(db, "SELECT k, i, b, s, 'what?' FROM t WHERE k = ?", p, 1, &r, &e) ==
			0,
		    "select: %s", e.msg);
		CHECK(db_rows_count(r) == 1, "one row");
		CHECK(strcmp(db_rows_text(r, 0, 0, NULL), "a") == 0, "text");
		CHECK(db_rows_int(r, 0, 1) == -9000000000LL, "int64 %lld",
		    (long long)db_rows_int(r, 0, 1));
		b = db_rows_blob(r, 0, 2, &n);
		CHECK(n == sizeof(blob) && memcmp(b, blob, n) == 0,
		    "blob with NULs round-trips (%zu)", n);
		CHECK(db_rows_null(r, 0, 3) && !db_rows_null(r, 0, 0), "NULL");
		CHECK(strcmp(db_rows_text(r, 0, 4, NULL), "what?") == 0,
		    "'?' inside a literal is not a placeholder");
		db_rows_free(r);
	}
	/* a rolled-back transaction leaves nothing */
	{
		struct db_param p[] = {DB_TEXT("b"), DB_INT(2), DB_BLOB("", 0), DB_TEXT("x")};

		CHECK(db_begin(db, &e) == 0, "begin: %s", e.msg);
		CHECK(db_exec(db, "INSERT INTO t (k, i, b, s) VALUES (?, ?, ?, ?)", p, 4, NULL,
			  &e) == 0,
		    "insert in tx");
		db_rollback(db);
		CHECK(db_query(db, "SELECT COUNT(*) FROM t", NULL, 0, &r, &e) == 0 &&
			db_rows_int(r, 0, 0) == 1,
		    "rollback leaves one row");
		db_rows_free(r);
		CHECK(db_begin(db, &e) == 0 &&
			db_exec(db, "INSERT INTO t (k, i, b, s) VALUES (?, ?, ?, ?)", p, 4, NULL,
			    &e) == 0 &&
			db_commit(db, &e) == 0,
		    "commit: %s", e.msg);
		CHECK(db_query(db, "SELECT b, s FROM t WHERE k = 'b'", NULL, 0, &r, &e) == 0 &&
			db_rows_count(r) == 1,
		    "committed row visible");
		b = db_rows_blob(r, 0, 0, &n);
		CHECK(n == 0 && !db_rows_null(r, 0, 0), "empty blob is not NULL");
		db_rows_free(r);
	}
	CHECK(db_exec(db, "SELECT * FROM no_such_table", NULL, 0, NULL, &e) == DEVID_EIO &&
		strstr(e.msg, "no_such_table") != NULL,
	    "server error carried: %s", e.msg);
	if (!pg) {
		/* the database, its WAL and its shared memory: nobody but the owner reads them */
		static const char *const sfx[] = {"", "-wal", "-shm"};
		char path[PATH_MAX + 16];
		struct stat st;

		for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
			snprintf(path, sizeof(path), "%s/t.db%s", tmp, sfx[i]);
			CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600,
			    "%s is mode 0600 (it is %o)", path, (unsigned)(st.st_mode & 0777));
		}
	}
	db_exec(db, "DROP TABLE t", NULL, 0, NULL, &e);
	db_close(db);
	if (tmp[0] != '\0')
		test_rmdir(tmp);
	return test_done();
}
