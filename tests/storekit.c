/* SPDX-License-Identifier: Apache-2.0 */
#include "store/db.h"
#include "storekit.h"
#include "lib/banned.h"

int64_t
storekit_count(struct store *s, const char *sql)
{
	struct db *db = store_acquire(s);
	struct db_rows *r;
	int64_t n = -1;

	if (db_query(db, sql, NULL, 0, &r, NULL) == 0) {
		n = db_rows_int(r, 0, 0);
		db_rows_free(r);
	}
	store_release(s, db);
	return n;
}
