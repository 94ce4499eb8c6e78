/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The store behaves the same on SQLite and PostgreSQL: migrations are idempotent, tenants and
 * tokens round-trip, names and token hashes are unique. SQLite pools: the writers of one
 * process take turns on the pool's lock, and the pool's checkpointer, not a writer, folds the
 * write-ahead log into the database. A batch's UDIDs are walked in order. Usage: test_store
 * sqlite|postgres.
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "store/store.h"
#include "test.h"
#include "lib/banned.h"

struct second_writer {
	struct store *s;
	atomic_bool began, committed;
};

/* Begins a transaction on a second pool connection, then commits it. */
static void *
second_writer(void *arg)
{
	struct second_writer *w = arg;
	struct db *db = store_acquire(w->s);
	struct devid_error e;

	devid_error_clear(&e);
	if (db_begin(db, &e) == 0) {
		atomic_store(&w->began, true);
		atomic_store(&w->committed, db_commit(db, &e) == 0);
	}
	store_release(w->s, db);
	return NULL;
}

/*
 * SQLite pool: a second writer waits for the first's commit (on the pool's lock, not in
 * SQLite's busy handler), and 40 MB written through the pool reach the database file itself
 * (the checkpointer's work: the pool's own writers no longer checkpoint).
 */
static void
sqlite_pool(const char *dir)
{
	char url[PATH_MAX + 32], path[PATH_MAX + 16];
	struct second_writer w = {0};
	static uint8_t blob[1 << 20];
	struct devid_error e;
	struct store_pool_stats ps = {0};
	struct store *s = NULL;
	struct stat st = {0};
	pthread_t t;
	struct db *db;

	snprintf(url, sizeof(url), "sqlite:%s/pool.db", dir);
	snprintf(path, sizeof(path), "%s/pool.db", dir);
	devid_error_clear(&e);
	CHECK(store_open(url, 4, &s, &e) == 0, "pool of 4: %s", e.msg);
	if (s == NULL)
		return;
	db = store_acquire(s);
	CHECK(db_exec(db, "CREATE TABLE big (b BLOB)", NULL, 0, NULL, &e) == 0, "table: %s", e.msg);
	CHECK(db_begin(db, &e) == 0, "first writer begins: %s", e.msg);
	w.s = s;
	atomic_init(&w.began, false);
	atomic_init(&w.committed, false);
	pthread_create(&t, NULL, second_writer, &w);
	usleep(300000);
	CHECK(!atomic_load(&w.began), "the second writer waits while the first holds the lock");
	CHECK(db_commit(db, &e) == 0, "first writer commits: %s", e.msg);
	pthread_join(t, NULL);
	CHECK(atomic_load(&w.began) && atomic_load(&w.committed),
	    "the second writer went on after the first's commit");

	memset(blob, 0xa5, sizeof(blob));
	for (int i = 0; i < 40; i++) {
		struct db_param p[] = {DB_BLOB(blob, sizeof(blob))};

		blob[0] = (uint8_t)i;
		CHECK(db_exec(db, "INSERT INTO big (b) VALUES (?)", p, 1, NULL, &e) == 0,
		    "insert %d: %s", i, e.msg);
	}
	store_release(s, db);
	for (int i = 0; i < 100 && (stat(path, &st) != 0 || st.st_size < (30 << 20)); i++)
		usleep(100000);
	store_pool_stats(s, &ps);
	CHECK(st.st_size >= (30 << 20) && ps.checkpoints >= 1,
	    "the checkpointer folded the log into the database (%lld bytes, %llu checkpoints)",
	    (long long)st.st_size, (unsigned long long)ps.checkpoints);
	store_close(s);
}

/* store_batch_udids_each's callback: counts the UDIDs and checks their order; stops at stop */
struct udid_walk {
	size_t n, stop;
	char last[65];
	bool ordered;
};

static int
udid_walk(void *arg, const char *udid, size_t len, struct devid_error *e)
{
	struct udid_walk *w = arg;

	if (len != 64 || strcmp(udid, w->last) <= 0)
		w->ordered = false;
	snprintf(w->last, sizeof(w->last), "%s", udid);
	if (++w->n == w->stop)
		return devid_error_set(e, DEVID_ECONFLICT, "stopped at %zu", w->n);
	return 0;
}

int
main(int argc, char **argv)
{
	char tmp[PATH_MAX], url[PATH_MAX + 32];
	const char *h = "7f83b1657ff1fc53b92dc18148a1d65dfc2d4b1fa3d677284addd200126d9069";
	struct devid_error e;
	struct store *s = NULL;
	struct tenant t;
	struct db *db;
	int64_t id = 0, id2 = 0, tid = 0;
	struct token_rec tok;
	char want[32];
	int v = -1;
	bool pg = argc > 1 && strcmp(argv[1], "postgres") == 0;

	devid_error_clear(&e);
	tmp[0] = '\0';
	if (pg) {
		if (getenv("DEVID_TEST_PG_URL") == NULL)
			test_skip("DEVID_TEST_PG_URL not set (run under scripts/with-postgres)");
		snprintf(url, sizeof(url), "%s", getenv("DEVID_TEST_PG_URL"));
	} else {
		test_tmpdir(tmp, sizeof(tmp), "store");
		snprintf(url, sizeof(url), "sqlite:%s/devid.db", tmp);
	}
	CHECK(store_open(url, 2, &s, &e) == 0, "open and migrate: %s", e.msg);
	if (s == NULL)
		return test_done();
	db = store_acquire(s);
	CHECK(store_migrate(db, &e) == 0, "a second migration is a no-op: %s", e.msg);
	CHECK(store_schema_version(db, &v, &e) == 0 && v >= 1, "schema version %d", v);

	CHECK(store_tenant_add(db, "ACME", TENANT_VENDOR, &id, &e) == 0 && id > 0, "tenant add: %s",
	    e.msg);
	CHECK(store_tenant_add(db, "OEM1", TENANT_OEM, &id2, &e) == 0 && id2 != id,
	    "second tenant: %s", e.msg);
	CHECK(store_tenant_add(db, "ACME", TENANT_OEM, NULL, &e) == DEVID_ECONFLICT &&
		strstr(e.msg, "already exists") != NULL,
	    "duplicate tenant name: %s", e.msg);
	CHECK(store_tenant_get(db, "OEM1", &t, &e) == 0 && t.id == id2 && t.kind == TENANT_OEM &&
		strcmp(t.name, "OEM1") == 0,
	    "tenant get");
	CHECK(store_tenant_get(db, "NOPE", &t, &e) == DEVID_ENOTFOUND, "unknown tenant");

	CHECK(store_token_add(db, id2, ROLE_OPERATOR, h, NULL, 0, &tid, &e) == 0, "token add: %s",
	    e.msg);
	CHECK(store_token_add(db, id, ROLE_VENDOR, h, "other", 0, NULL, &e) == DEVID_ECONFLICT,
	    "a token hash is unique");
	CHECK(store_token_lookup(db, h, time(NULL), &tok, &e) == 0 && tok.tenant.id == id2 &&
		tok.role == ROLE_OPERATOR && tok.id == tid,
	    "token lookup: %s", e.msg);
	snprintf(want, sizeof(want), "token-%lld", (long long)tid);
	CHECK(strcmp(tok.name, want) == 0, "an unnamed token is %s, not %s", want, tok.name);
	CHECK(
	    store_token_lookup(db, "00", time(NULL), &tok, &e) == DEVID_ENOTFOUND, "unknown token");
	CHECK(store_token_add(db, 999999, ROLE_ADMIN, "ab", NULL, 0, NULL, &e) == DEVID_ECONFLICT,
	    "token of a missing tenant refused (foreign key)");
	CHECK(store_token_add(db, id2, ROLE_ADMIN, "cd", "line-1", time(NULL) + 60, NULL, &e) == 0,
	    "named token with an expiry: %s", e.msg);
	CHECK(store_token_add(db, id2, ROLE_ADMIN, "ef", "line-1", 0, NULL, &e) == DEVID_ECONFLICT,
	    "a name is unique within the tenant");
	CHECK(store_token_add(db, id, ROLE_VENDOR, "ef", "line-1", 0, NULL, &e) == 0,
	    "the same name in another tenant: %s", e.msg);
	CHECK(store_token_lookup(db, "cd", time(NULL), &tok, &e) == 0 &&
		strcmp(tok.name, "line-1") == 0,
	    "a token before its expiry: %s", e.msg);
	CHECK(store_token_lookup(db, "cd", time(NULL) + 61, &tok, &e) == DEVID_ENOTFOUND,
	    "an expired token is not found");

	CHECK(store_trust_add(db, id, "root", "signer", h, &e) == 0, "trust add: %s", e.msg);
	CHECK(store_trust_add(db, id, "root", "signer", h, &e) == DEVID_ECONFLICT,
	    "the same signer twice: %s", e.msg);

	/* a job lease: renewed only by the worker that holds it (next_at is its fencing token) */
	{
		struct connector_rec c = {0};
		struct job_rec j, j2;
		bool created;
		int64_t now = time(NULL);

		CHECK(
		    store_connector_put(db, id2, "hook", "webhook", true, "{}", &created, &e) == 0,
		    "connector put: %s", e.msg);
		CHECK(
		    store_connector_get(db, id2, "hook", &c, &e) == 0, "connector get: %s", e.msg);
		CHECK(
		    store_job_add(db, id2, c.id, false, 0, "ab", 1, &e) == 0, "job add: %s", e.msg);
		CHECK(store_job_lease(db, now, 2, &j, &e) == 0 && j.next_at == now + 2, "lease: %s",
		    e.msg);
		CHECK(store_job_lease(db, now + 1, 2, &j2, &e) == DEVID_ENOTFOUND,
		    "a leased job is not leased again within its lease");
		CHECK(store_job_renew(db, j.id, j.next_at, now + 10, &e) == 0, "renew: %s", e.msg);
		CHECK(store_job_lease(db, now + 5, 2, &j2, &e) == DEVID_ENOTFOUND,
		    "a renewed lease holds past the first one's end");
		CHECK(store_job_renew(db, j.id, j.next_at, now + 20, &e) == DEVID_ECONFLICT,
		    "a renewal from a stale lease is refused: %s", e.msg);
		CHECK(store_job_lease(db, now + 10, 2, &j2, &e) == 0 && j2.id == j.id,
		    "the job is due again when the renewed lease ran out: %s", e.msg);
		CHECK(store_job_renew(db, j.id, now + 10, now + 30, &e) == DEVID_ECONFLICT,
		    "the first worker may no longer renew it: %s", e.msg);
		CHECK(store_job_progress(db, j.id, 1, 1, true, &e) == 0, "progress: %s", e.msg);
		CHECK(store_job_renew(db, j.id, j2.next_at, now + 40, &e) == DEVID_ECONFLICT,
		    "a job that is done is not renewed");
		connector_rec_release(&c);
	}

	/* a batch's UDIDs in order, across pages of 1,000, and only that batch's */
	{
		struct db_param b[] = {DB_INT(id), DB_INT(0)};
		struct db_rows *r = NULL;
		int64_t batch[2] = {0, 0};
		struct udid_walk w;
		char udid[65];
		size_t k = 0;

		for (int i = 0; i < 2; i++) {
			b[1] = (struct db_param)DB_INT(i);
			CHECK(
			    db_exec(db,
				"INSERT INTO batches (vendor_id, name, part_number, count, source,"
				" created_at) VALUES (?, 'B' || ?, 'P', 1, 'vendor', 0)",
				b, 2, NULL, &e) == 0 &&
				db_query(db, "SELECT MAX(id) FROM batches", NULL, 0, &r, &e) == 0,
			    "batch %d: %s", i, e.msg);
			batch[i] = r != NULL ? db_rows_int(r, 0, 0) : 0;
			db_rows_free(r);
			r = NULL;
		}
		CHECK(db_begin(db, &e) == 0, "begin: %s", e.msg);
		/* 2,001 devices in batch 0, in no order (a walk of steps of 1,009 modulo 2,011), 5
		 * in 1 */
		for (size_t i = 0; i < 2006; i++) {
			k = (k + 1009) % 2011;
			snprintf(udid, sizeof(udid), "%064zx", k * 7919 + 1);

			struct db_param d[] = {DB_TEXT(udid), DB_INT(batch[i < 2001 ? 0 : 1]),
			    DB_TEXT(udid), DB_BLOB("x", 1)};

			if (db_exec(db,
				"INSERT INTO devices (udid, batch_id, serial, cert, entry)"
				" VALUES (?, ?, ?, ?, '{}')",
				d, 4, NULL, &e) != 0) {
				CHECK(0, "device %zu: %s", i, e.msg);
				break;
			}
		}
		w = (struct udid_walk){.ordered = true};
		CHECK(store_batch_udids_each(db, batch[0], udid_walk, &w, &e) == 0 && w.n == 2001 &&
			w.ordered,
		    "2,001 UDIDs, ascending (%zu, ordered %d): %s", w.n, w.ordered, e.msg);
		w = (struct udid_walk){.ordered = true, .stop = 1000};
		CHECK(store_batch_udids_each(db, batch[0], udid_walk, &w, &e) == DEVID_ECONFLICT &&
			w.n == 1000 && strstr(e.msg, "stopped at 1000") != NULL,
		    "the callback's error ends the walk and is returned: %s", e.msg);
		w = (struct udid_walk){.ordered = true};
		CHECK(store_batch_udids_each(db, batch[1], udid_walk, &w, &e) == 0 && w.n == 5 &&
			w.ordered,
		    "the temporary table was dropped, and another batch has its own 5 (%zu): %s",
		    w.n, e.msg);
		db_rollback(db);
	}

	/* a database a newer devid migrated is refused, and left as it is */
	{
		struct db_param p[] = {DB_INT(store_schema_latest() + 1), DB_INT(0)};
		struct store *s2 = NULL;

		CHECK(
		    db_exec(db, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
			p, 2, NULL, &e) == 0,
		    "a newer schema version: %s", e.msg);
		CHECK(store_migrate(db, &e) == DEVID_ECONFLICT && strstr(e.msg, "newer") != NULL,
		    "migrating a newer schema is refused: %s", e.msg);
		CHECK(store_schema_version(db, &v, &e) == 0 && v == store_schema_latest() + 1,
		    "the refused migration changed nothing (version %d)", v);
		CHECK(store_open(url, 1, &s2, &e) == DEVID_ECONFLICT && s2 == NULL,
		    "store_open refuses a newer schema: %s", e.msg);
		CHECK(db_exec(db, "DELETE FROM schema_migrations WHERE version = ?", p, 1, NULL,
			  &e) == 0,
		    "back to the known schema: %s", e.msg);
	}
	store_release(s, db);
	store_close(s);
	if (!pg)
		sqlite_pool(tmp);
	if (tmp[0] != '\0')
		test_rmdir(tmp);
	return test_done();
}
