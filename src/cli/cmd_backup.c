/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cmd_backup.c - `devid admin backup FILE`: a consistent copy of a SQLite database taken
 * while devid serve runs on it (SQLite's online backup API, db_backup). PostgreSQL databases
 * are backed up with pg_dump (docs/operations.md).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "store/db.h"
#include "store/store.h"
#include "lib/banned.h"

static const char backup_usage[] =
    "usage: devid admin [--db URL] backup FILE\n"
    "\n"
    "Copies the SQLite database (--db or $DEVID_DB) into the new file FILE, mode 0600, with\n"
    "SQLite's online backup API: devid serve may go on reading and writing it meanwhile, and\n"
    "the copy is the whole database at one moment, checked with PRAGMA integrity_check.\n"
    "Restore by stopping devid serve and putting the copy in the database's place. A\n"
    "PostgreSQL database is backed up with pg_dump instead (docs/operations.md).\n";

int
cmd_admin_backup(int argc, char **argv)
{
	const char *w[3], *db_url = getenv("DEVID_DB");
	struct devid_error e;
	struct db *db = NULL;
	int n = admin_words(argc, argv, w, 3), version = 0;

	if (n < 1 || strcmp(w[0], "backup") != 0)
		return -1;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(backup_usage, stdout);
			return 0;
		}
		if (strcmp(argv[i], "--db") == 0 && i + 1 < argc)
			db_url = argv[i + 1];
		else if (strncmp(argv[i], "--db=", 5) == 0)
			db_url = argv[i] + 5;
	}
	if (n < 2)
		return cli_usage("admin backup", "which file should the copy go to?");
	if (n > 2)
		return cli_usage("admin backup", "one file: '%s' is one too many", w[2]);
	if (db_url == NULL)
		return cli_usage("admin backup", "no database: give --db URL or set DEVID_DB");
	devid_error_clear(&e);
	/* read only: no migration, and no schema newer than this devid knows */
	if (db_open(db_url, &db, &e) != 0 || store_schema_check(db, &e) != 0 ||
	    store_schema_version(db, &version, &e) != 0 || db_backup(db, w[1], &e) != 0) {
		fprintf(stderr, "devid admin backup: %s\n", e.msg);
		db_close(db);
		return 1;
	}
	db_close(db);
	printf("backed up %s (schema version %d) into %s\n", db_url, version, w[1]);
	return 0;
}
