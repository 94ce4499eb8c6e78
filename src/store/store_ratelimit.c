/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_ratelimit.c - token buckets in the database, so that every server of one database
 * counts against the same limits (claims per token and per address, connectors' rates).
 *
 * A bucket is one row: its name (the key) and its theoretical arrival time (GCRA, ITU-T I.371):
 * `tat`, in milliseconds, is when the bucket would be full again. An action at `now` is allowed
 * when max(tat, now) + interval - now <= burst * interval, i.e. when tat <= now + (burst - 1) *
 * interval, and then tat becomes max(tat, now) + interval. Check and take are one INSERT ...
 * ON CONFLICT DO UPDATE ... WHERE: atomic on SQLite and PostgreSQL alike, and a refused
 * action changes nothing.
 */
#include <stdio.h>
#include <string.h>

#include "store/store.h"
#include "lib/banned.h"

int
store_rate_take(struct db *db, const char *key, int64_t now_ms, int64_t interval_ms, int64_t burst,
    int64_t *wait_ms, struct devid_error *e)
{
	int64_t limit = now_ms + (burst - 1) * interval_ms, n = 0;
	struct db_param p[] = {DB_TEXT(key), DB_INT(now_ms + interval_ms), DB_INT(now_ms),
	    DB_INT(now_ms), DB_INT(interval_ms), DB_INT(limit)};
	struct db_param q[] = {DB_TEXT(key)};
	struct db_rows *r;
	int rc;

	*wait_ms = 0;
	if (interval_ms < 1 || burst < 1)
		return devid_error_set(e, DEVID_EINTERNAL, "rate limit: interval and burst >= 1");
	if ((rc = db_exec(db,
		 "INSERT INTO rate_buckets (name, tat) VALUES (?, ?) ON CONFLICT (name) DO UPDATE"
		 " SET tat = CASE WHEN rate_buckets.tat > ? THEN rate_buckets.tat ELSE ? END + ?"
		 " WHERE rate_buckets.tat <= ?",
		 p, 6, &n, e)) != 0)
		return rc;
	if (n == 1)
		return 0;
	/* refused: how long until one more fits (read after the fact, for Retry-After only) */
	if ((rc = db_query(db, "SELECT tat FROM rate_buckets WHERE name = ?", q, 1, &r, e)) != 0)
		return rc;
	*wait_ms = db_rows_count(r) == 1 ? db_rows_int(r, 0, 0) - limit : 1;
	if (*wait_ms < 1)
		*wait_ms = 1;
	db_rows_free(r);
	return 0;
}

int
store_rate_prune(struct db *db, int64_t now_ms, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(now_ms), DB_INT(now_ms)};

	/*
	 * A bucket whose tat has passed is full: it carries no state. On PostgreSQL the rows
	 * another transaction holds are skipped, not waited for: that one may be taking one of
	 * them while it waits to take a row this transaction took or deleted, a deadlock.
	 */
	if (db_get_kind(db) == DB_POSTGRES)
		return db_exec(db,
		    "DELETE FROM rate_buckets WHERE tat <= ? AND name IN (SELECT name"
		    " FROM rate_buckets WHERE tat <= ? FOR UPDATE SKIP LOCKED)",
		    p, 2, NULL, e);
	return db_exec(db, "DELETE FROM rate_buckets WHERE tat <= ?", p, 1, NULL, e);
}
