/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "lib/banned.h"

static const char *const source_names[] = {"vendor", "import"};

int
store_batch_insert(struct db *db, const struct batch_rec *b, const char *descriptor, int64_t *id,
    struct devid_error *e)
{
	struct db_param p[] = {
	    DB_INT(b->vendor_id),
	    DB_TEXT(b->name),
	    DB_TEXT(b->part_number),
	    DB_INT(b->count),
	    b->claim_sha256[0] ? DB_TEXT(b->claim_sha256) : DB_NULL,
	    descriptor != NULL ? DB_TEXT(descriptor) : DB_NULL,
	    DB_TEXT(source_names[b->source]),
	    b->owner_id ? DB_INT(b->owner_id) : DB_NULL,
	    DB_INT(time(NULL)),
	    b->owner_id ? DB_INT(time(NULL)) : DB_NULL,
	};
	struct db_rows *r;
	int rc;

	rc = db_query(db,
	    "INSERT INTO batches (vendor_id, name, part_number, count, claim_sha256, descriptor,"
	    " source, owner_id, created_at, claimed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	    " RETURNING id",
	    p, sizeof(p) / sizeof(p[0]), &r, e);
	if (rc == DEVID_ECONFLICT)
		return devid_error_set(e, rc, "batch %s already exists for this vendor", b->name);
	if (rc != 0)
		return rc;
	*id = db_rows_int(r, 0, 0);
	db_rows_free(r);
	return 0;
}

#define BATCH_COLUMNS                                                                              \
	"SELECT b.id, b.vendor_id, t.name, b.name, b.part_number, b.count, b.claim_sha256,"        \
	" b.source, b.owner_id, b.created_at, b.claimed_at, b.transfer_sha256"
#define BATCH_FROM " FROM batches b JOIN tenants t ON t.id = b.vendor_id"

static void
batch_from_row(const struct db_rows *r, size_t i, struct batch_rec *b)
{
	memset(b, 0, sizeof(*b));
	b->id = db_rows_int(r, i, 0);
	b->vendor_id = db_rows_int(r, i, 1);
	snprintf(b->vendor, sizeof(b->vendor), "%s", db_rows_text(r, i, 2, NULL));
	snprintf(b->name, sizeof(b->name), "%s", db_rows_text(r, i, 3, NULL));
	snprintf(b->part_number, sizeof(b->part_number), "%s", db_rows_text(r, i, 4, NULL));
	b->count = db_rows_int(r, i, 5);
	snprintf(b->claim_sha256, sizeof(b->claim_sha256), "%s", db_rows_text(r, i, 6, NULL));
	b->source =
	    strcmp(db_rows_text(r, i, 7, NULL), "import") == 0 ? BATCH_IMPORT : BATCH_VENDOR;
	b->owner_id = db_rows_int(r, i, 8);
	b->created_at = db_rows_int(r, i, 9);
	b->claimed_at = db_rows_int(r, i, 10);
	snprintf(
	    b->transfer_sha256, sizeof(b->transfer_sha256), "%s", db_rows_text(r, i, 11, NULL));
}

int
store_batch_get(
    struct db *db, const char *vendor, const char *name, struct batch_rec *b, struct devid_error *e)
{
	struct db_param p[] = {DB_TEXT(vendor), DB_TEXT(name)};
	struct db_rows *r;
	int rc;

	memset(b, 0, sizeof(*b));
	rc = db_query(db,
	    BATCH_COLUMNS BATCH_FROM " WHERE t.name = ? AND b.name = ? AND b.state = 'complete'", p,
	    2, &r, e);
	if (rc != 0)
		return rc;
	if (db_rows_count(r) == 0) {
		db_rows_free(r);
		return devid_error_set(e, DEVID_ENOTFOUND, "no batch %s/%s", vendor, name);
	}
	batch_from_row(r, 0, b);
	db_rows_free(r);
	return 0;
}

int
store_batch_set_owner(
    struct db *db, int64_t batch_id, int64_t owner_id, bool transfer, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(owner_id), DB_INT(time(NULL)), DB_INT(batch_id)};
	int64_t changes = 0;
	int rc;

	/* the WHERE clause makes the change atomic: of two racing claims, one changes a row */
	rc = db_exec(db,
	    transfer ? "UPDATE batches SET owner_id = ?, claimed_at = ?,"
		       " claim_sha256 = transfer_sha256, transfer_sha256 = NULL"
		       " WHERE id = ? AND transfer_sha256 IS NOT NULL"
		     : "UPDATE batches SET owner_id = ?, claimed_at = ? WHERE id = ? AND owner_id "
		       "IS NULL",
	    p, 3, &changes, e);
	if (rc == 0 && changes != 1)
		rc = devid_error_set(e, DEVID_ECONFLICT, "the batch changed owner meanwhile");
	return rc;
}

int
store_batch_set_transfer(
    struct db *db, int64_t batch_id, const char *sha256_hex, struct devid_error *e)
{
	struct db_param p[] = {DB_TEXT(sha256_hex), DB_INT(batch_id)};

	return db_exec(db, "UPDATE batches SET transfer_sha256 = ? WHERE id = ?", p, 2, NULL, e);
}

int
store_batch_release(struct db *db, int64_t batch_id, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(batch_id)};

	return db_exec(db,
	    "UPDATE batches SET owner_id = NULL, claimed_at = NULL, transfer_sha256 = NULL"
	    " WHERE id = ?",
	    p, 1, NULL, e);
}

void
custody_rec_release(struct custody_rec *c)
{
	free(c->new_owner);
	c->new_owner = NULL;
}

int
store_custody_last(struct db *db, int64_t batch_id, struct custody_rec *c, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(batch_id)};
	struct db_rows *r;
	int rc;

	memset(c, 0, sizeof(*c));
	memset(c->payload_sha256, '0', 64);
	rc = db_query(db,
	    "SELECT seq, payload_sha256, manifest_sha256, new_owner FROM custody"
	    " WHERE batch_id = ? ORDER BY seq DESC LIMIT 1",
	    p, 1, &r, e);
	if (rc != 0)
		return rc;
	if (db_rows_count(r) > 0) {
		c->seq = db_rows_int(r, 0, 0);
		snprintf(c->payload_sha256, sizeof(c->payload_sha256), "%s",
		    db_rows_text(r, 0, 1, NULL));
		snprintf(c->manifest_sha256, sizeof(c->manifest_sha256), "%s",
		    db_rows_text(r, 0, 2, NULL));
		if ((c->new_owner = strdup(db_rows_text(r, 0, 3, NULL))) == NULL)
			rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
	}
	db_rows_free(r);
	return rc;
}

int
store_custody_insert(struct db *db, int64_t batch_id, const struct custody_rec *c,
    const char *event, const char *record, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(batch_id), DB_INT(c->seq), DB_TEXT(event), DB_TEXT(record),
	    DB_TEXT(c->payload_sha256), DB_TEXT(c->manifest_sha256), DB_TEXT(c->new_owner),
	    DB_INT(time(NULL))};
	int rc;

	rc = db_exec(db,
	    "INSERT INTO custody (batch_id, seq, event, record, payload_sha256, manifest_sha256,"
	    " new_owner, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	    p, 8, NULL, e);
	if (rc == DEVID_ECONFLICT)
		return devid_error_set(
		    e, rc, "custody record %lld of the batch exists already", (long long)c->seq);
	return rc;
}

int
store_custody_list(struct db *db, int64_t batch_id, struct db_rows **rows, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(batch_id)};

	return db_query(
	    db, "SELECT record FROM custody WHERE batch_id = ? ORDER BY seq", p, 1, rows, e);
}

int
store_batch_udids_each(struct db *db, int64_t batch_id,
    int (*fn)(void *arg, const char *udid, size_t len, struct devid_error *e), void *arg,
    struct devid_error *e)
{
	enum { PAGE = 1000 };
	struct db_param p[] = {DB_INT(batch_id)};
	struct db_rows *r;
	int64_t done = 0; /* the UDIDs handed to fn: they are numbered 1, 2, ... in order */
	size_t n = 0;
	int rc, drop;

	/* INTEGER PRIMARY KEY: SQLite's rowid, so that a page is a range of it; in PostgreSQL,
	 * its index */
	if ((rc = db_exec(db,
		 "CREATE TEMPORARY TABLE batch_udids (n INTEGER PRIMARY KEY, udid TEXT NOT NULL)",
		 NULL, 0, NULL, e)) != 0)
		return rc;
	rc = db_exec(db,
	    "INSERT INTO batch_udids (n, udid) SELECT ROW_NUMBER() OVER (ORDER BY udid), udid"
	    " FROM devices WHERE batch_id = ?",
	    p, 1, NULL, e);
	while (rc == 0) {
		struct db_param q[] = {DB_INT(done), DB_INT(PAGE)};

		if ((rc = db_query(db,
			 "SELECT udid FROM batch_udids WHERE n > ? ORDER BY n LIMIT ?", q, 2, &r,
			 e)) != 0)
			break;
		n = db_rows_count(r);
		for (size_t i = 0; i < n && rc == 0; i++) {
			size_t len;
			const char *u = db_rows_text(r, i, 0, &len);

			rc = fn(arg, u, len, e);
		}
		db_rows_free(r);
		done += (int64_t)n;
		if (n < PAGE)
			break;
	}
	drop = db_exec(db, "DROP TABLE batch_udids", NULL, 0, NULL, rc == 0 ? e : NULL);
	return rc != 0 ? rc : drop;
}

int
store_device_where(struct db *db, const char *udid, char vendor[MAX_NAME_LEN + 1],
    char batch[MAX_NAME_LEN + 1], bool *uploading, struct devid_error *e)
{
	struct db_param p[] = {DB_TEXT(udid)};
	struct db_rows *r;
	int rc;

	rc = db_query(db,
	    "SELECT t.name, b.name, b.state FROM devices d JOIN batches b ON b.id = d.batch_id"
	    " JOIN tenants t ON t.id = b.vendor_id WHERE d.udid = ?",
	    p, 1, &r, e);
	if (rc != 0)
		return rc;
	if (db_rows_count(r) == 0)
		rc = devid_error_set(e, DEVID_ENOTFOUND, "no chip %s", udid);
	else {
		snprintf(vendor, MAX_NAME_LEN + 1, "%s", db_rows_text(r, 0, 0, NULL));
		snprintf(batch, MAX_NAME_LEN + 1, "%s", db_rows_text(r, 0, 1, NULL));
		if (uploading != NULL)
			*uploading = strcmp(db_rows_text(r, 0, 2, NULL), "uploading") == 0;
	}
	db_rows_free(r);
	return rc;
}

int
store_audit_last(
    struct db *db, int64_t tenant_id, int64_t *seq, char hash[65], struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id)};
	struct db_rows *r;
	int rc;

	/*
	 * PostgreSQL: lock the tenant row so concurrent appends (even across servers) queue.
	 * FOR NO KEY UPDATE, not FOR UPDATE: it does not wait for the FOR KEY SHARE locks that
	 * inserting a row referencing the tenant takes, so a transaction that wrote a job or a
	 * certificate before its audit record cannot deadlock with another doing the same.
	 */
	if (db_get_kind(db) == DB_POSTGRES &&
	    (rc = db_exec(
		 db, "SELECT id FROM tenants WHERE id = ? FOR NO KEY UPDATE", p, 1, NULL, e)) != 0)
		return rc;
	rc = db_query(db,
	    "SELECT seq, hash FROM audit WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1", p, 1, &r,
	    e);
	if (rc != 0)
		return rc;
	if (db_rows_count(r) == 0) {
		*seq = 0;
		memset(hash, '0', 64);
		hash[64] = '\0';
	} else {
		*seq = db_rows_int(r, 0, 0);
		snprintf(hash, 65, "%s", db_rows_text(r, 0, 1, NULL));
	}
	db_rows_free(r);
	return 0;
}

int
store_audit_insert(struct db *db, const struct audit_rec *a, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(a->tenant_id), DB_INT(a->seq), DB_INT(a->at),
	    DB_TEXT(a->actor), DB_TEXT(a->action), DB_TEXT(a->object), DB_TEXT(a->detail),
	    DB_TEXT(a->prev_hash), DB_TEXT(a->hash)};

	return db_exec(db,
	    "INSERT INTO audit (tenant_id, seq, at, actor, action, object, detail, prev_hash, hash)"
	    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
	    p, 9, NULL, e);
}

int
store_audit_list(struct db *db, int64_t tenant_id, int64_t after, size_t limit,
    struct audit_rec **out, size_t *n, struct db_rows **rows, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), DB_INT(after), DB_INT((int64_t)limit)};
	struct audit_rec *a;
	struct db_rows *r;
	int rc;

	*out = NULL;
	*n = 0;
	*rows = NULL;
	rc = db_query(db,
	    "SELECT seq, at, actor, action, object, detail, prev_hash, hash FROM audit"
	    " WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?",
	    p, 3, &r, e);
	if (rc != 0)
		return rc;
	if ((a = calloc(db_rows_count(r) + 1, sizeof(*a))) == NULL) {
		db_rows_free(r);
		return devid_error_set(e, DEVID_ENOMEM, "audit: out of memory");
	}
	for (size_t i = 0; i < db_rows_count(r); i++) {
		a[i].tenant_id = tenant_id;
		a[i].seq = db_rows_int(r, i, 0);
		a[i].at = db_rows_int(r, i, 1);
		a[i].actor = db_rows_text(r, i, 2, NULL);
		a[i].action = db_rows_text(r, i, 3, NULL);
		a[i].object = db_rows_text(r, i, 4, NULL);
		a[i].detail = db_rows_text(r, i, 5, NULL);
		snprintf(a[i].prev_hash, sizeof(a[i].prev_hash), "%s", db_rows_text(r, i, 6, NULL));
		snprintf(a[i].hash, sizeof(a[i].hash), "%s", db_rows_text(r, i, 7, NULL));
	}
	*out = a;
	*n = db_rows_count(r);
	*rows = r;
	return 0;
}

static void
device_from_row(const struct db_rows *r, size_t i, struct device_rec *d)
{
	memset(d, 0, sizeof(*d));
	d->id = db_rows_int(r, i, 0);
	snprintf(d->udid, sizeof(d->udid), "%s", db_rows_text(r, i, 1, NULL));
	snprintf(d->serial, sizeof(d->serial), "%s", db_rows_text(r, i, 2, NULL));
	snprintf(d->vendor, sizeof(d->vendor), "%s", db_rows_text(r, i, 3, NULL));
	snprintf(d->batch, sizeof(d->batch), "%s", db_rows_text(r, i, 4, NULL));
	d->revoked = strcmp(db_rows_text(r, i, 5, NULL), "revoked") == 0;
	d->revoked_at = db_rows_int(r, i, 6);
	d->revoke_reason = (int)db_rows_int(r, i, 7);
	d->tpm = strcmp(db_rows_text(r, i, 8, NULL), "tpm") == 0;
}

#define DEVICE_COLUMNS                                                                             \
	"SELECT d.id, d.udid, d.serial, t.name, b.name, d.state, d.revoked_at, d.revoke_reason,"   \
	" d.kind FROM devices d"                                                                   \
	" JOIN batches b ON b.id = d.batch_id JOIN tenants t ON t.id = b.vendor_id"

int
store_device_list(struct db *db, int64_t owner_id, const char *vendor, const char *batch,
    const char *state, const struct device_search *q, int64_t after, size_t limit,
    struct device_rec **out, size_t *n, struct devid_error *e)
{
	const char *udid = q != NULL ? q->udid_prefix : NULL;
	const char *serial = q != NULL ? q->serial_prefix : NULL;
	char udid_hi[UDID_HEX_LEN_MAX + 2], serial_hi[MAX_SERIAL_LEN + 1], sql[1024];
	struct device_rec *d;
	struct db_rows *r;
	size_t len;
	int rc;

	*out = NULL;
	*n = 0;
	/* prefixes as ranges: [p, p "g") holds the hex strings starting with p; [p, p with its
	 * last byte plus one) the strings starting with p, in byte order */
	if (udid != NULL)
		snprintf(udid_hi, sizeof(udid_hi), "%sg", udid);
	if (serial != NULL) {
		snprintf(serial_hi, sizeof(serial_hi), "%s", serial);
		if ((len = strlen(serial_hi)) == 0 || (unsigned char)serial_hi[len - 1] >= 0x7f)
			return devid_error_set(e, DEVID_EINVAL, "q: not printable ASCII");
		serial_hi[len - 1]++;
	}
	/* UDIDs are hex, which every collation orders as bytes; serials are compared as bytes */
	snprintf(sql, sizeof(sql),
	    DEVICE_COLUMNS " WHERE b.owner_id = ? AND d.id > ?"
			   " AND (CAST(? AS TEXT) IS NULL OR t.name = ?) AND (CAST(? AS TEXT) IS "
			   "NULL OR b.name = ?)"
			   " AND (CAST(? AS TEXT) IS NULL OR d.state = ?)"
			   " AND (CAST(? AS TEXT) IS NULL OR (d.udid >= ? AND d.udid < ?)"
			   " OR (d.serial%s >= ? AND d.serial%s < ?)) ORDER BY d.id LIMIT ?",
	    db_get_kind(db) == DB_POSTGRES ? " COLLATE \"C\"" : "",
	    db_get_kind(db) == DB_POSTGRES ? " COLLATE \"C\"" : "");
	{
		struct db_param p[] = {DB_INT(owner_id), DB_INT(after),
		    vendor ? DB_TEXT(vendor) : DB_NULL, vendor ? DB_TEXT(vendor) : DB_NULL,
		    batch ? DB_TEXT(batch) : DB_NULL, batch ? DB_TEXT(batch) : DB_NULL,
		    state ? DB_TEXT(state) : DB_NULL, state ? DB_TEXT(state) : DB_NULL,
		    serial ? DB_TEXT(serial) : DB_NULL, udid ? DB_TEXT(udid) : DB_NULL,
		    udid ? DB_TEXT(udid_hi) : DB_NULL, serial ? DB_TEXT(serial) : DB_NULL,
		    serial ? DB_TEXT(serial_hi) : DB_NULL, DB_INT((int64_t)limit)};

		rc = db_query(db, sql, p, sizeof(p) / sizeof(p[0]), &r, e);
	}
	if (rc != 0)
		return rc;
	if ((d = calloc(db_rows_count(r) + 1, sizeof(*d))) == NULL) {
		db_rows_free(r);
		return devid_error_set(e, DEVID_ENOMEM, "devices: out of memory");
	}
	for (size_t i = 0; i < db_rows_count(r); i++)
		device_from_row(r, i, &d[i]);
	*n = db_rows_count(r);
	*out = d;
	db_rows_free(r);
	return 0;
}

int
store_device_get(
    struct db *db, int64_t owner_id, const char *udid, struct device_rec *d, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(owner_id), DB_TEXT(udid)};
	struct db_rows *r;
	int rc;

	rc = db_query(db, DEVICE_COLUMNS " WHERE b.owner_id = ? AND d.udid = ?", p, 2, &r, e);
	if (rc != 0)
		return rc;
	if (db_rows_count(r) == 0)
		rc = devid_error_set(e, DEVID_ENOTFOUND, "no device %s", udid);
	else
		device_from_row(r, 0, d);
	db_rows_free(r);
	return rc;
}

int
store_device_revoke(struct db *db, int64_t device_id, int64_t at, int reason, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(at), DB_INT(reason), DB_INT(device_id)};

	return db_exec(db,
	    "UPDATE devices SET state = 'revoked', revoked_at = ?, revoke_reason = ?"
	    " WHERE id = ? AND state = 'active'",
	    p, 3, NULL, e);
}

int
store_batch_list(struct db *db, int64_t owner_id, int64_t after, size_t limit,
    struct batch_rec **out, size_t *n, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(owner_id), DB_INT(after), DB_INT((int64_t)limit)};
	struct batch_rec *b;
	struct db_rows *r;
	int rc;

	*out = NULL;
	*n = 0;
	/* one query for the page, its devices counted by the devices_batch index */
	rc = db_query(db,
	    BATCH_COLUMNS ", (SELECT COUNT(*) FROM devices d WHERE d.batch_id = b.id AND"
			  " d.state = 'active'), (SELECT COUNT(*) FROM devices d WHERE"
			  " d.batch_id = b.id AND d.state = 'revoked')" BATCH_FROM
			  " WHERE b.owner_id = ? AND b.id > ? AND b.state = 'complete'"
			  " ORDER BY b.id LIMIT ?",
	    p, 3, &r, e);
	if (rc != 0)
		return rc;
	if ((b = calloc(db_rows_count(r) + 1, sizeof(*b))) == NULL) {
		db_rows_free(r);
		return devid_error_set(e, DEVID_ENOMEM, "batches: out of memory");
	}
	for (size_t i = 0; i < db_rows_count(r); i++) {
		batch_from_row(r, i, &b[i]);
		b[i].active = db_rows_int(r, i, 12);
		b[i].revoked = db_rows_int(r, i, 13);
	}
	*n = db_rows_count(r);
	*out = b;
	db_rows_free(r);
	return 0;
}

int
store_batch_counts(struct db *db, struct batch_rec *b, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(b->id)};
	struct db_rows *r;
	int rc;

	rc = db_query(db,
	    "SELECT COALESCE(SUM(CASE WHEN state = 'active' THEN 1 ELSE 0 END), 0),"
	    " COALESCE(SUM(CASE WHEN state = 'revoked' THEN 1 ELSE 0 END), 0)"
	    " FROM devices WHERE batch_id = ?",
	    p, 1, &r, e);
	if (rc != 0)
		return rc;
	b->active = db_rows_int(r, 0, 0);
	b->revoked = db_rows_int(r, 0, 1);
	db_rows_free(r);
	return 0;
}

int
store_manifest_page(struct db *db, int64_t batch_id, int64_t after, size_t limit,
    struct db_rows **rows, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(batch_id), DB_INT(after), DB_INT((int64_t)limit)};

	return db_query(db,
	    "SELECT udid, serial, cert, entry, id FROM devices WHERE batch_id = ? AND id > ?"
	    " ORDER BY id LIMIT ?",
	    p, 3, rows, e);
}

int
store_device_cert(struct db *db, int64_t device_id, struct db_rows **rows, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(device_id)};

	return db_query(db, "SELECT cert FROM devices WHERE id = ?", p, 1, rows, e);
}

int
store_device_clouds(struct db *db, int64_t tenant_id, int64_t device_id, size_t limit,
    struct db_rows **rows, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(device_id), DB_INT(tenant_id), DB_INT(device_id),
	    DB_INT(device_id), DB_INT((int64_t)limit)};

	/* the jobs that carry the device: its own, and its batch's */
	return db_query(db,
	    "SELECT c.name, c.type, j.action, jd.status, j.id, COALESCE(jd.at, j.created_at),"
	    " jd.message FROM jobs j JOIN connectors c ON c.id = j.connector_id"
	    " LEFT JOIN job_devices jd ON jd.job_id = j.id"
	    " AND jd.udid = (SELECT udid FROM devices WHERE id = ?)"
	    " WHERE j.tenant_id = ?"
	    " AND (j.udid = (SELECT udid FROM devices WHERE id = ?)"
	    " OR j.batch_id = (SELECT batch_id FROM devices WHERE id = ?))"
	    " AND (jd.status IS NOT NULL OR j.state = 'pending')"
	    " ORDER BY COALESCE(jd.at, j.created_at) DESC, j.id DESC LIMIT ?",
	    p, 5, rows, e);
}

int
store_device_certs(struct db *db, int64_t tenant_id, int64_t device_id, size_t limit,
    struct db_rows **rows, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), DB_INT(device_id), DB_INT((int64_t)limit)};

	return db_query(db,
	    "SELECT serial, cert, not_after, revoked_at, reason FROM certificates"
	    " WHERE tenant_id = ? AND device_id = ? ORDER BY issued_at DESC, id DESC LIMIT ?",
	    p, 3, rows, e);
}
