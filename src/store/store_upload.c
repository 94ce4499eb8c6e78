/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/dynbuf.h"
#include "store/store.h"
#include "lib/banned.h"

/* Devices one INSERT statement carries (6 parameters each, far below either database's cap). */
#define DEVICES_PER_INSERT 128
/* The SQL text of one such statement. */
#define MAX_INSERT_SQL 8192

static const char *const kind_names[] = {"publish", "import"};

const char *
upload_kind_name(enum upload_kind k)
{
	return kind_names[k];
}

int
store_upload_open(struct db *db, const struct batch_rec *b, const char *descriptor,
    struct upload_rec *u, struct devid_error *e)
{
	struct db_param bp[] = {
	    DB_INT(b->vendor_id),
	    DB_TEXT(b->name),
	    DB_TEXT(b->part_number),
	    DB_INT(b->count),
	    descriptor != NULL ? DB_TEXT(descriptor) : DB_NULL,
	    DB_TEXT(b->source == BATCH_IMPORT ? "import" : "vendor"),
	    DB_INT(u->created_at),
	};
	struct db_rows *r = NULL;
	int rc;

	rc = db_query(db,
	    "INSERT INTO batches (vendor_id, name, part_number, count, descriptor, source,"
	    " created_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, 'uploading') RETURNING id",
	    bp, sizeof(bp) / sizeof(bp[0]), &r, e);
	if (rc == DEVID_ECONFLICT)
		return devid_error_set(e, rc, "batch %s already exists", b->name);
	if (rc != 0)
		return rc;
	u->batch_id = db_rows_int(r, 0, 0);
	db_rows_free(r);
	{
		struct db_param p[] = {
		    DB_TEXT(u->ref),
		    DB_INT(u->tenant_id),
		    DB_INT(u->batch_id),
		    DB_TEXT(kind_names[u->kind]),
		    DB_INT(u->page_size),
		    u->expected > 0 ? DB_INT(u->expected) : DB_NULL,
		    u->claim_sha256[0] ? DB_TEXT(u->claim_sha256) : DB_NULL,
		    u->descriptor_sha256[0] ? DB_TEXT(u->descriptor_sha256) : DB_NULL,
		    u->trust_id > 0 ? DB_INT(u->trust_id) : DB_NULL,
		    DB_INT(u->created_at),
		    DB_INT(u->expires_at),
		};

		rc = db_query(db,
		    "INSERT INTO uploads (ref, tenant_id, batch_id, kind, page_size, expected,"
		    " claim_sha256, descriptor_sha256, trust_id, created_at, expires_at)"
		    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
		    p, sizeof(p) / sizeof(p[0]), &r, e);
	}
	if (rc != 0)
		return rc;
	u->id = db_rows_int(r, 0, 0);
	db_rows_free(r);
	return 0;
}

#define UPLOAD_COLUMNS                                                                             \
	"SELECT u.id, u.ref, u.tenant_id, u.batch_id, b.name, u.kind, u.page_size,"                \
	" COALESCE(u.expected, 0), u.claim_sha256, u.descriptor_sha256, COALESCE(u.trust_id, 0),"  \
	" u.created_at, u.expires_at,"                                                             \
	" (SELECT COUNT(*) FROM upload_pages p WHERE p.upload_id = u.id),"                         \
	" (SELECT COALESCE(MAX(p.page), 0) FROM upload_pages p WHERE p.upload_id = u.id),"         \
	" (SELECT COALESCE(SUM(p.entries), 0) FROM upload_pages p WHERE p.upload_id = u.id)"       \
	" FROM uploads u JOIN batches b ON b.id = u.batch_id"

static void
upload_from_row(const struct db_rows *r, size_t i, struct upload_rec *u)
{
	memset(u, 0, sizeof(*u));
	u->id = db_rows_int(r, i, 0);
	snprintf(u->ref, sizeof(u->ref), "%s", db_rows_text(r, i, 1, NULL));
	u->tenant_id = db_rows_int(r, i, 2);
	u->batch_id = db_rows_int(r, i, 3);
	snprintf(u->batch, sizeof(u->batch), "%s", db_rows_text(r, i, 4, NULL));
	u->kind =
	    strcmp(db_rows_text(r, i, 5, NULL), "import") == 0 ? UPLOAD_IMPORT : UPLOAD_PUBLISH;
	u->page_size = db_rows_int(r, i, 6);
	u->expected = db_rows_int(r, i, 7);
	snprintf(u->claim_sha256, sizeof(u->claim_sha256), "%s", db_rows_text(r, i, 8, NULL));
	snprintf(
	    u->descriptor_sha256, sizeof(u->descriptor_sha256), "%s", db_rows_text(r, i, 9, NULL));
	u->trust_id = db_rows_int(r, i, 10);
	u->created_at = db_rows_int(r, i, 11);
	u->expires_at = db_rows_int(r, i, 12);
	u->pages = db_rows_int(r, i, 13);
	u->last_page = db_rows_int(r, i, 14);
	u->entries = db_rows_int(r, i, 15);
}

/* The one upload of a query, or DEVID_ENOTFOUND naming what. */
static int
upload_one(struct db *db, const char *sql, const struct db_param *p, size_t np,
    struct upload_rec *u, const char *what, struct devid_error *e)
{
	struct db_rows *r;
	int rc;

	if ((rc = db_query(db, sql, p, np, &r, e)) != 0)
		return rc;
	if (db_rows_count(r) == 0)
		rc = devid_error_set(e, DEVID_ENOTFOUND, "no upload %s", what);
	else
		upload_from_row(r, 0, u);
	db_rows_free(r);
	return rc;
}

int
store_upload_get(struct db *db, int64_t tenant_id, const char *ref, bool lock, struct upload_rec *u,
    struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), DB_TEXT(ref)};
	int rc;

	memset(u, 0, sizeof(*u));
	if (lock && db_get_kind(db) == DB_POSTGRES &&
	    (rc = db_exec(db, "SELECT id FROM uploads WHERE tenant_id = ? AND ref = ? FOR UPDATE",
		 p, 2, NULL, e)) != 0)
		return rc;
	return upload_one(
	    db, UPLOAD_COLUMNS " WHERE u.tenant_id = ? AND u.ref = ?", p, 2, u, ref, e);
}

int
store_upload_find(
    struct db *db, int64_t tenant_id, const char *name, struct upload_rec *u, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), DB_TEXT(name)};

	memset(u, 0, sizeof(*u));
	return upload_one(
	    db, UPLOAD_COLUMNS " WHERE u.tenant_id = ? AND b.name = ?", p, 2, u, name, e);
}

int
store_upload_list(
    struct db *db, int64_t tenant_id, struct upload_rec **out, size_t *n, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id)};
	struct upload_rec *u;
	struct db_rows *r;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = db_query(
		 db, UPLOAD_COLUMNS " WHERE u.tenant_id = ? ORDER BY u.id", p, 1, &r, e)) != 0)
		return rc;
	if ((u = calloc(db_rows_count(r) + 1, sizeof(*u))) == NULL) {
		db_rows_free(r);
		return devid_error_set(e, DEVID_ENOMEM, "uploads: out of memory");
	}
	for (size_t i = 0; i < db_rows_count(r); i++)
		upload_from_row(r, i, &u[i]);
	*n = db_rows_count(r);
	*out = u;
	db_rows_free(r);
	return 0;
}

int
store_upload_page_get(
    struct db *db, int64_t upload_id, int64_t page, struct upload_page *pg, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(upload_id), DB_INT(page)};
	struct db_rows *r;
	int rc;

	memset(pg, 0, sizeof(*pg));
	if ((rc = db_query(db,
		 "SELECT page, entries, sha256 FROM upload_pages WHERE upload_id = ? AND page = ?",
		 p, 2, &r, e)) != 0)
		return rc;
	if (db_rows_count(r) == 0) {
		rc = devid_error_set(e, DEVID_ENOTFOUND, "page %lld not received", (long long)page);
	} else {
		pg->page = db_rows_int(r, 0, 0);
		pg->entries = db_rows_int(r, 0, 1);
		snprintf(pg->sha256, sizeof(pg->sha256), "%s", db_rows_text(r, 0, 2, NULL));
	}
	db_rows_free(r);
	return rc;
}

int
store_upload_pages(
    struct db *db, int64_t upload_id, struct upload_page **out, size_t *n, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(upload_id)};
	struct upload_page *v;
	struct db_rows *r;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = db_query(db,
		 "SELECT page, entries, sha256 FROM upload_pages WHERE upload_id = ? ORDER BY page",
		 p, 1, &r, e)) != 0)
		return rc;
	if ((v = calloc(db_rows_count(r) + 1, sizeof(*v))) == NULL) {
		db_rows_free(r);
		return devid_error_set(e, DEVID_ENOMEM, "upload pages: out of memory");
	}
	for (size_t i = 0; i < db_rows_count(r); i++) {
		v[i].page = db_rows_int(r, i, 0);
		v[i].entries = db_rows_int(r, i, 1);
		snprintf(v[i].sha256, sizeof(v[i].sha256), "%s", db_rows_text(r, i, 2, NULL));
	}
	*n = db_rows_count(r);
	*out = v;
	db_rows_free(r);
	return 0;
}

int
store_upload_page_add(struct db *db, int64_t upload_id, const struct upload_page *pg, int64_t now,
    int64_t expires_at, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(upload_id), DB_INT(pg->page), DB_INT(pg->entries),
	    DB_TEXT(pg->sha256), DB_INT(now)};
	struct db_param x[] = {DB_INT(expires_at), DB_INT(upload_id)};
	int rc;

	rc = db_exec(db,
	    "INSERT INTO upload_pages (upload_id, page, entries, sha256, received_at)"
	    " VALUES (?, ?, ?, ?, ?)",
	    p, 5, NULL, e);
	if (rc == DEVID_ECONFLICT)
		return devid_error_set(
		    e, rc, "page %lld was received meanwhile", (long long)pg->page);
	if (rc != 0)
		return rc;
	return db_exec(db, "UPDATE uploads SET expires_at = ? WHERE id = ?", x, 2, NULL, e);
}

int
store_upload_set_trust(struct db *db, int64_t upload_id, int64_t trust_id, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(trust_id), DB_INT(upload_id)};

	return db_exec(db, "UPDATE uploads SET trust_id = ? WHERE id = ?", p, 2, NULL, e);
}

int
store_upload_missing(struct db *db, int64_t upload_id, int64_t last, int64_t *missing,
    size_t max_missing, size_t *nmissing, int64_t *entries, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(upload_id), DB_INT(last)};
	struct db_rows *r;
	int64_t want = 1;
	int rc;

	*nmissing = 0;
	*entries = 0;
	/* the pages arrive in any order: the gaps in the sorted list are the missing ones */
	if ((rc = db_query(db,
		 "SELECT page, entries FROM upload_pages WHERE upload_id = ? AND page <= ?"
		 " ORDER BY page",
		 p, 2, &r, e)) != 0)
		return rc;
	for (size_t i = 0; i <= db_rows_count(r); i++) {
		int64_t have = i < db_rows_count(r) ? db_rows_int(r, i, 0) : last + 1;

		for (; want < have; want++) {
			if (*nmissing < max_missing)
				missing[*nmissing] = want;
			(*nmissing)++;
		}
		want = have + 1;
		if (i < db_rows_count(r))
			*entries += db_rows_int(r, i, 1);
	}
	db_rows_free(r);
	return 0;
}

int
store_upload_short_page(struct db *db, int64_t upload_id, int64_t last, int64_t page_size,
    struct upload_page *pg, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(upload_id), DB_INT(last), DB_INT(page_size)};
	struct db_rows *r;
	int rc;

	memset(pg, 0, sizeof(*pg));
	if ((rc = db_query(db,
		 "SELECT page, entries, sha256 FROM upload_pages WHERE upload_id = ? AND page < ?"
		 " AND entries <> ? ORDER BY page LIMIT 1",
		 p, 3, &r, e)) != 0)
		return rc;
	if (db_rows_count(r) == 0) {
		rc = devid_error_set(e, DEVID_ENOTFOUND, "every page is whole");
	} else {
		pg->page = db_rows_int(r, 0, 0);
		pg->entries = db_rows_int(r, 0, 1);
		snprintf(pg->sha256, sizeof(pg->sha256), "%s", db_rows_text(r, 0, 2, NULL));
	}
	db_rows_free(r);
	return rc;
}

/*
 * "INSERT ... VALUES (?, ?, ?, ?, ?, ?), ... ON CONFLICT DO NOTHING RETURNING udid" for n
 * rows.
 */
static int
insert_sql(size_t n, struct dynbuf *sql)
{
	int rc = dynbuf_addstr(
	    sql, "INSERT INTO devices (udid, batch_id, serial, cert, entry, kind) VALUES");

	for (size_t i = 0; i < n && rc == 0; i++)
		rc = dynbuf_addstr(sql, i == 0 ? " (?, ?, ?, ?, ?, ?)" : ", (?, ?, ?, ?, ?, ?)");
	/* no conflict target: the UDID's unique index and the batch's serials' alike */
	if (rc == 0)
		rc = dynbuf_addstr(sql, " ON CONFLICT DO NOTHING RETURNING udid");
	return rc;
}

static int
udid_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Flags the rows of v[0..n) whose UDID r (the rows inserted) does not hold. */
static int
flag_refused(
    const struct device_new *v, size_t n, const struct db_rows *r, bool *refused, size_t *nrefused)
{
	const char **in;
	size_t k = db_rows_count(r);

	if ((in = calloc(k + 1, sizeof(*in))) == NULL)
		return DEVID_ENOMEM;
	for (size_t i = 0; i < k; i++)
		in[i] = db_rows_text(r, i, 0, NULL);
	qsort(in, k, sizeof(*in), udid_cmp);
	for (size_t i = 0; i < n; i++)
		if (bsearch(&v[i].udid, in, k, sizeof(*in), udid_cmp) == NULL) {
			refused[i] = true;
			(*nrefused)++;
		}
	free(in);
	return 0;
}

int
store_devices_insert(struct db *db, int64_t batch_id, const struct device_new *v, size_t n,
    bool *refused, size_t *nrefused, struct devid_error *e)
{
	struct db_param p[DEVICES_PER_INSERT * 6];
	struct dynbuf sql;
	struct db_rows *r;
	size_t k, sql_rows = 0;
	int rc = 0;

	*nrefused = 0;
	dynbuf_init(&sql, MAX_INSERT_SQL);
	for (size_t at = 0; at < n && rc == 0; at += k) {
		k = n - at < DEVICES_PER_INSERT ? n - at : DEVICES_PER_INSERT;
		if (k != sql_rows) {
			dynbuf_reset(&sql);
			if (insert_sql(k, &sql) != 0) {
				rc = devid_error_set(e, DEVID_ENOMEM, "devices: out of memory");
				break;
			}
			sql_rows = k;
		}
		for (size_t i = 0; i < k; i++) {
			const struct device_new *d = &v[at + i];

			refused[at + i] = false;
			p[6 * i] = DB_TEXT(d->udid);
			p[6 * i + 1] = DB_INT(batch_id);
			p[6 * i + 2] = DB_TEXT(d->serial);
			p[6 * i + 3] = DB_BLOB(d->cert, d->cert_len);
			p[6 * i + 4] = DB_TEXT(d->entry);
			p[6 * i + 5] = DB_TEXT(d->tpm ? "tpm" : "chip");
		}
		if ((rc = db_query(db, dynbuf_str(&sql), p, 6 * k, &r, e)) != 0)
			break;
		if (db_rows_count(r) != k &&
		    flag_refused(v + at, k, r, refused + at, nrefused) != 0)
			rc = devid_error_set(e, DEVID_ENOMEM, "devices: out of memory");
		db_rows_free(r);
	}
	dynbuf_release(&sql);
	return rc;
}

int
store_device_serial_in(struct db *db, int64_t batch_id, const char *serial, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(batch_id), DB_TEXT(serial)};
	struct db_rows *r;
	int rc;

	if ((rc = db_query(
		 db, "SELECT 1 FROM devices WHERE batch_id = ? AND serial = ?", p, 2, &r, e)) != 0)
		return rc;
	rc = db_rows_count(r) > 0;
	db_rows_free(r);
	return rc;
}

int
store_upload_commit(struct db *db, const struct upload_rec *u, int64_t count,
    const char *claim_sha256, int64_t owner_id, int64_t trust_id, int64_t now,
    struct devid_error *e)
{
	struct db_param p[] = {
	    DB_INT(count),
	    claim_sha256 != NULL ? DB_TEXT(claim_sha256) : DB_NULL,
	    owner_id > 0 ? DB_INT(owner_id) : DB_NULL,
	    owner_id > 0 ? DB_INT(now) : DB_NULL,
	    DB_INT(now),
	    trust_id > 0 ? DB_INT(trust_id) : DB_NULL,
	    DB_INT(u->batch_id),
	};
	int64_t changes = 0;
	int rc;

	rc = db_exec(db,
	    "UPDATE batches SET state = 'complete', count = ?, claim_sha256 = ?, owner_id = ?,"
	    " claimed_at = ?, created_at = ?, trust_id = ? WHERE id = ? AND state = 'uploading'",
	    p, sizeof(p) / sizeof(p[0]), &changes, e);
	if (rc == 0 && changes != 1)
		rc = devid_error_set(
		    e, DEVID_ECONFLICT, "the upload of batch %s ended meanwhile", u->batch);
	if (rc == 0)
		rc = store_upload_drop(db, u->id, e);
	return rc;
}

int
store_upload_drop(struct db *db, int64_t upload_id, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(upload_id)};
	int rc;

	if ((rc = db_exec(db, "DELETE FROM upload_pages WHERE upload_id = ?", p, 1, NULL, e)) != 0)
		return rc;
	return db_exec(db, "DELETE FROM uploads WHERE id = ?", p, 1, NULL, e);
}

/* The first column of up to max rows of sql, as ids. */
static int
ids_of(struct db *db, const char *sql, const struct db_param *p, size_t np, int64_t *ids, size_t *n,
    struct devid_error *e)
{
	struct db_rows *r;
	int rc;

	*n = 0;
	if ((rc = db_query(db, sql, p, np, &r, e)) != 0)
		return rc;
	for (size_t i = 0; i < db_rows_count(r); i++)
		ids[(*n)++] = db_rows_int(r, i, 0);
	db_rows_free(r);
	return 0;
}

int
store_upload_expired(
    struct db *db, int64_t now, int64_t *ids, size_t max, size_t *n, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(now), DB_INT((int64_t)max)};

	return ids_of(db,
	    "SELECT id FROM uploads WHERE expires_at <= ? ORDER BY expires_at, id LIMIT ?", p, 2,
	    ids, n, e);
}

int
store_batch_orphans(struct db *db, int64_t *ids, size_t max, size_t *n, struct devid_error *e)
{
	struct db_param p[] = {DB_INT((int64_t)max)};

	return ids_of(db,
	    "SELECT b.id FROM batches b WHERE b.state = 'uploading'"
	    " AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.batch_id = b.id) ORDER BY b.id LIMIT "
	    "?",
	    p, 1, ids, n, e);
}

int
store_batch_orphan_purge(
    struct db *db, int64_t batch_id, size_t chunk, bool *done, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(batch_id), DB_INT((int64_t)chunk)};
	struct db_param b[] = {DB_INT(batch_id), DB_INT(batch_id)};
	int64_t changes = 0;
	int rc;

	*done = false;
	if ((rc = db_exec(db,
		 "DELETE FROM devices WHERE id IN (SELECT id FROM devices WHERE batch_id = ?"
		 " LIMIT ?)",
		 p, 2, &changes, e)) != 0)
		return rc;
	if ((size_t)changes >= chunk)
		return 0;
	/* still an orphan being uploaded: never a batch that an upload holds or that completed */
	rc = db_exec(db,
	    "DELETE FROM batches WHERE id = ? AND state = 'uploading'"
	    " AND NOT EXISTS (SELECT 1 FROM uploads WHERE batch_id = ?)",
	    b, 2, NULL, e);
	*done = rc == 0;
	return rc;
}
