/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_ca.c - the records of operational certificates: tenant CAs, quotas, issued
 * certificates and the cached CRL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "lib/base64.h"
#include "store/store.h"
#include "lib/banned.h"

void
ca_rec_release(struct ca_rec *c)
{
	free(c->cert);
	free(c->key_uri);
	memset(c, 0, sizeof(*c));
}

void
est_device_release(struct est_device *d)
{
	free(d->cert);
	free(d->entry);
	memset(d, 0, sizeof(*d));
}

/* A copy of a blob column; DEVID_ENOMEM. */
static int
copy_blob(const struct db_rows *r, size_t row, size_t col, uint8_t **out, size_t *len)
{
	const uint8_t *p = db_rows_blob(r, row, col, len);

	if ((*out = malloc(*len ? *len : 1)) == NULL)
		return DEVID_ENOMEM;
	memcpy(*out, p, *len);
	return 0;
}

int
store_ca_add(struct db *db, int64_t tenant_id, const uint8_t *cert, size_t len, const char *key_uri,
    int validity_days, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), DB_BLOB(cert, len), DB_TEXT(key_uri),
	    DB_INT(validity_days), DB_INT(time(NULL))};
	struct db_param q[] = {DB_INT(tenant_id)};
	int rc;

	rc = db_exec(db,
	    "INSERT INTO cas (tenant_id, cert, key_uri, validity_days, created_at)"
	    " VALUES (?, ?, ?, ?, ?)",
	    p, 5, NULL, e);
	if (rc == DEVID_ECONFLICT)
		return devid_error_set(e, rc, "the tenant has an operational CA already");
	if (rc != 0)
		return rc;
	return db_exec(
	    db, "INSERT INTO quotas (tenant_id) VALUES (?) ON CONFLICT DO NOTHING", q, 1, NULL, e);
}

/*
 * A CA record from row 0 of r: cert, key_uri in columns 0 and 1; frees r. DEVID_ENOTFOUND
 * (what) when there is no row.
 */
static int
ca_rec_from(
    struct db_rows *r, int64_t tenant_id, struct ca_rec *c, const char *what, struct devid_error *e)
{
	int rc = 0;

	if (db_rows_count(r) == 0) {
		rc = devid_error_set(e, DEVID_ENOTFOUND, "%s", what);
	} else {
		c->tenant_id = tenant_id;
		if (copy_blob(r, 0, 0, &c->cert, &c->cert_len) != 0 ||
		    (c->key_uri = strdup(db_rows_text(r, 0, 1, NULL))) == NULL) {
			ca_rec_release(c);
			rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		}
	}
	db_rows_free(r);
	return rc;
}

int
store_ca_get(struct db *db, int64_t tenant_id, struct ca_rec *c, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id)};
	struct db_rows *r;
	int rc;

	memset(c, 0, sizeof(*c));
	if ((rc = db_query(db,
		 "SELECT cert, key_uri, validity_days, generation FROM cas WHERE tenant_id = ?", p,
		 1, &r, e)) != 0)
		return rc;
	if (db_rows_count(r) == 1) {
		c->validity_days = (int)db_rows_int(r, 0, 2);
		c->generation = db_rows_int(r, 0, 3);
	}
	return ca_rec_from(r, tenant_id, c, "the tenant has no operational CA", e);
}

int
store_ca_set_validity(struct db *db, int64_t tenant_id, int days, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(days), DB_INT(tenant_id)};
	int64_t n;
	int rc;

	if ((rc = db_exec(
		 db, "UPDATE cas SET validity_days = ? WHERE tenant_id = ?", p, 2, &n, e)) != 0)
		return rc;
	return n == 1 ? 0 : devid_error_set(e, DEVID_ENOTFOUND, "the tenant has no operational CA");
}

int
store_ca_rotate(struct db *db, int64_t tenant_id, int64_t current, const uint8_t *cert, size_t len,
    const char *key_uri, const uint8_t *new_with_old, size_t nwo_len, const uint8_t *old_with_new,
    size_t own_len, struct devid_error *e)
{
	int64_t now = time(NULL), n = 0;
	struct db_param keep[] = {DB_BLOB(new_with_old, nwo_len), DB_BLOB(old_with_new, own_len),
	    DB_INT(now), DB_INT(tenant_id), DB_INT(current)};
	struct db_param next[] = {
	    DB_BLOB(cert, len), DB_TEXT(key_uri), DB_INT(now), DB_INT(tenant_id), DB_INT(current)};
	int rc;

	rc = db_exec(db,
	    "INSERT INTO cas_retired (tenant_id, generation, cert, key_uri, crl_number,"
	    " new_with_old, old_with_new, retired_at)"
	    " SELECT tenant_id, generation, cert, key_uri, crl_number, ?, ?, ? FROM cas"
	    " WHERE tenant_id = ? AND generation = ?",
	    keep, 5, &n, e);
	if (rc == 0 && n == 1)
		rc = db_exec(db,
		    "UPDATE cas SET cert = ?, key_uri = ?, created_at = ?, crl_number = 0,"
		    " generation = generation + 1 WHERE tenant_id = ? AND generation = ?",
		    next, 5, &n, e);
	if (rc == DEVID_ECONFLICT || (rc == 0 && n != 1))
		return devid_error_set(e, DEVID_ECONFLICT,
		    "the operational CA changed meanwhile (another rotation): try again");
	return rc;
}

int
store_ca_retired_get(
    struct db *db, int64_t tenant_id, int64_t generation, struct ca_rec *c, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), DB_INT(generation)};
	struct db_rows *r;
	int rc;

	memset(c, 0, sizeof(*c));
	c->generation = generation;
	if ((rc = db_query(db,
		 "SELECT cert, key_uri FROM cas_retired WHERE tenant_id = ? AND generation = ?", p,
		 2, &r, e)) != 0)
		return rc;
	return ca_rec_from(r, tenant_id, c, "no such retired CA", e);
}

int
store_ca_retired_live(
    struct db *db, int64_t tenant_id, int64_t now, struct db_rows **rows, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), DB_INT(now)};

	return db_query(db,
	    "SELECT r.generation, r.cert, r.new_with_old, r.old_with_new FROM cas_retired r"
	    " WHERE r.tenant_id = ? AND EXISTS (SELECT 1 FROM certificates c"
	    " WHERE c.tenant_id = r.tenant_id AND c.ca_generation = r.generation"
	    " AND c.not_after > ?) ORDER BY r.generation DESC",
	    p, 2, rows, e);
}

int
store_quota_set(struct db *db, int64_t tenant_id, int64_t max, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), max < 0 ? DB_NULL : DB_INT(max)};

	return db_exec(db,
	    "INSERT INTO quotas (tenant_id, max_devices) VALUES (?, ?)"
	    " ON CONFLICT (tenant_id) DO UPDATE SET max_devices = excluded.max_devices",
	    p, 2, NULL, e);
}

int
store_quota_get(
    struct db *db, int64_t tenant_id, int64_t *max, int64_t *used, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id)};
	struct db_rows *r;
	int rc;

	*max = -1;
	*used = 0;
	if ((rc = db_query(
		 db, "SELECT max_devices, used FROM quotas WHERE tenant_id = ?", p, 1, &r, e)) != 0)
		return rc;
	if (db_rows_count(r) == 1) {
		*max = db_rows_null(r, 0, 0) ? -1 : db_rows_int(r, 0, 0);
		*used = db_rows_int(r, 0, 1);
	}
	db_rows_free(r);
	return 0;
}

int
store_quota_take(struct db *db, int64_t tenant_id, int64_t device_id, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), DB_INT(device_id)};
	int64_t n;
	int rc;

	if ((rc = db_exec(db,
		 "INSERT INTO cert_holders (tenant_id, device_id) VALUES (?, ?) ON CONFLICT DO "
		 "NOTHING",
		 p, 2, &n, e)) != 0)
		return rc;
	if (n == 0)
		return 0; /* a holder already: renewing never needs quota */
	if ((rc = db_exec(db, "INSERT INTO quotas (tenant_id) VALUES (?) ON CONFLICT DO NOTHING", p,
		 1, NULL, e)) != 0 ||
	    (rc = db_exec(db,
		 "UPDATE quotas SET used = used + 1 WHERE tenant_id = ?"
		 " AND (max_devices IS NULL OR used < max_devices)",
		 p, 1, &n, e)) != 0)
		return rc;
	return n == 1
	    ? 0
	    : devid_error_set(e, DEVID_ELIMIT,
		  "the tenant's quota of devices with an operational certificate is used up");
}

int
store_est_device(struct db *db, const char *udid, struct est_device *d,
    char owner_name[MAX_NAME_LEN + 1], struct ca_rec *ca, struct devid_error *e)
{
	struct db_param p[] = {DB_TEXT(udid)};
	struct db_rows *r;
	int rc;

	memset(d, 0, sizeof(*d));
	memset(ca, 0, sizeof(*ca));
	owner_name[0] = '\0';
	if ((rc = db_query(db,
		 "SELECT d.id, b.owner_id, b.vendor_id, d.state, d.serial, d.cert, d.entry, t.name,"
		 " c.cert, c.key_uri, c.validity_days, c.generation, d.kind FROM devices d"
		 " JOIN batches b ON b.id = d.batch_id"
		 " LEFT JOIN tenants t ON t.id = b.owner_id"
		 " LEFT JOIN cas c ON c.tenant_id = b.owner_id WHERE d.udid = ?",
		 p, 1, &r, e)) != 0)
		return rc;
	if (db_rows_count(r) == 0) {
		db_rows_free(r);
		return devid_error_set(e, DEVID_ENOTFOUND, "no such device");
	}
	d->id = db_rows_int(r, 0, 0);
	d->owner_id = db_rows_null(r, 0, 1) ? 0 : db_rows_int(r, 0, 1);
	d->vendor_id = db_rows_int(r, 0, 2);
	d->revoked = strcmp(db_rows_text(r, 0, 3, NULL), "revoked") == 0;
	d->tpm = strcmp(db_rows_text(r, 0, 12, NULL), "tpm") == 0;
	snprintf(d->serial, sizeof(d->serial), "%s", db_rows_text(r, 0, 4, NULL));
	snprintf(owner_name, MAX_NAME_LEN + 1, "%s", db_rows_text(r, 0, 7, NULL));
	rc = copy_blob(r, 0, 5, &d->cert, &d->cert_len);
	if (rc == 0 && (d->entry = strdup(db_rows_text(r, 0, 6, NULL))) == NULL)
		rc = DEVID_ENOMEM;
	if (rc == 0 && !db_rows_null(r, 0, 8)) {
		ca->tenant_id = d->owner_id;
		ca->validity_days = (int)db_rows_int(r, 0, 10);
		ca->generation = db_rows_int(r, 0, 11);
		rc = copy_blob(r, 0, 8, &ca->cert, &ca->cert_len);
		if (rc == 0 && (ca->key_uri = strdup(db_rows_text(r, 0, 9, NULL))) == NULL)
			rc = DEVID_ENOMEM;
	}
	db_rows_free(r);
	if (rc != 0) {
		est_device_release(d);
		ca_rec_release(ca);
		return devid_error_set(e, rc, "out of memory");
	}
	return 0;
}

int
store_device_owner(
    struct db *db, int64_t device_id, int64_t *owner_id, bool *revoked, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(device_id)};
	struct db_rows *r;
	int rc;

	/* SQLite: the transaction holds the write lock already (BEGIN IMMEDIATE) */
	if ((rc = db_query(db,
		 db_get_kind(db) == DB_POSTGRES ? "SELECT b.owner_id, d.state FROM devices d JOIN "
						  "batches b ON b.id = d.batch_id"
						  " WHERE d.id = ? FOR SHARE"
						: "SELECT b.owner_id, d.state FROM devices d JOIN "
						  "batches b ON b.id = d.batch_id"
						  " WHERE d.id = ?",
		 p, 1, &r, e)) != 0)
		return rc;
	if (db_rows_count(r) == 0) {
		db_rows_free(r);
		return devid_error_set(e, DEVID_ENOTFOUND, "no such device");
	}
	*owner_id = db_rows_null(r, 0, 0) ? 0 : db_rows_int(r, 0, 0);
	*revoked = strcmp(db_rows_text(r, 0, 1, NULL), "revoked") == 0;
	db_rows_free(r);
	return 0;
}

int
store_cert_add(struct db *db, int64_t tenant_id, int64_t generation, int64_t device_id,
    const char *serial, const uint8_t *der, size_t len, int64_t not_after, struct devid_error *e)
{
	uint8_t md[SHA256_DIGEST_LENGTH];
	char hex[2 * SHA256_DIGEST_LENGTH + 1];
	struct db_param p[] = {DB_INT(tenant_id), DB_INT(generation), DB_INT(device_id),
	    DB_TEXT(serial), DB_BLOB(der, len), DB_INT(not_after), DB_INT(time(NULL)),
	    DB_TEXTN(hex, 2 * SHA256_DIGEST_LENGTH)};
	int rc;

	SHA256(der, len, md);
	hex_encode(md, sizeof(md), hex);
	rc = db_exec(db,
	    "INSERT INTO certificates (tenant_id, ca_generation, device_id, serial, cert,"
	    " not_after, issued_at, sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	    p, 8, NULL, e);
	if (rc == DEVID_ECONFLICT)
		return devid_error_set(e, rc, "serial %s was issued before", serial);
	return rc;
}

int
store_cert_issued(struct db *db, int64_t tenant_id, int64_t device_id, const char *serial,
    bool *issued, bool *revoked, struct devid_error *e)
{
	struct db_param p[] = {DB_TEXT(serial), DB_INT(tenant_id), DB_INT(device_id)};
	struct db_rows *r;
	int rc;

	if ((rc = db_query(db,
		 "SELECT revoked_at FROM certificates WHERE serial = ? AND tenant_id = ?"
		 " AND device_id = ?",
		 p, 3, &r, e)) != 0)
		return rc;
	*issued = db_rows_count(r) == 1;
	*revoked = *issued && !db_rows_null(r, 0, 0);
	db_rows_free(r);
	return 0;
}

#define CRL_FROM                                                                                   \
	" FROM certificates c WHERE c.tenant_id = ? AND c.ca_generation = ?"                       \
	" AND c.revoked_at IS NOT NULL AND c.not_after > ?"

int
store_crl_entries(struct db *db, int64_t tenant_id, int64_t generation, int64_t now,
    struct db_rows **rows, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), DB_INT(generation), DB_INT(now)};

	return db_query(db,
	    "SELECT c.serial, c.revoked_at, COALESCE(c.reason, 0)" CRL_FROM " ORDER BY c.id", p, 3,
	    rows, e);
}

int
store_crl_state(struct db *db, int64_t tenant_id, int64_t generation, int64_t now, int64_t *count,
    int64_t *last_revoked_at, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), DB_INT(generation), DB_INT(now)};
	struct db_rows *r;
	int rc;

	if ((rc = db_query(db, "SELECT COUNT(*), MAX(c.revoked_at)" CRL_FROM, p, 3, &r, e)) != 0)
		return rc;
	*count = db_rows_int(r, 0, 0);
	*last_revoked_at = db_rows_null(r, 0, 1) ? 0 : db_rows_int(r, 0, 1);
	db_rows_free(r);
	return 0;
}

int
store_crl_get(
    struct db *db, int64_t tenant_id, int64_t generation, struct crl_rec *c, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), DB_INT(generation)};
	struct db_rows *r;
	int rc;

	memset(c, 0, sizeof(*c));
	if ((rc = db_query(db,
		 "SELECT number, revoked, last_revoked_at, this_update, der FROM ca_crls"
		 " WHERE tenant_id = ? AND generation = ?",
		 p, 2, &r, e)) != 0)
		return rc;
	if (db_rows_count(r) == 0) {
		db_rows_free(r);
		return devid_error_set(e, DEVID_ENOTFOUND, "no CRL yet");
	}
	c->number = db_rows_int(r, 0, 0);
	c->revoked = db_rows_int(r, 0, 1);
	c->last_revoked_at = db_rows_int(r, 0, 2);
	c->this_update = db_rows_int(r, 0, 3);
	rc = copy_blob(r, 0, 4, &c->der, &c->len);
	db_rows_free(r);
	return rc != 0 ? devid_error_set(e, rc, "out of memory") : 0;
}

int
store_crl_put(struct db *db, int64_t tenant_id, int64_t generation, const struct crl_rec *c,
    bool *stored, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), DB_INT(generation), DB_INT(c->number),
	    DB_INT(c->revoked), DB_INT(c->last_revoked_at), DB_INT(c->this_update),
	    DB_BLOB(c->der, c->len)};
	int64_t n = 0;
	int rc;

	/* the cached CRL's number only grows, whichever server stores last */
	rc = db_exec(db,
	    "INSERT INTO ca_crls (tenant_id, generation, number, revoked, last_revoked_at,"
	    " this_update, der) VALUES (?, ?, ?, ?, ?, ?, ?)"
	    " ON CONFLICT (tenant_id, generation) DO UPDATE SET"
	    " number = excluded.number, revoked = excluded.revoked,"
	    " last_revoked_at = excluded.last_revoked_at, this_update = excluded.this_update,"
	    " der = excluded.der WHERE ca_crls.number < excluded.number",
	    p, 7, &n, e);
	*stored = rc == 0 && n == 1;
	return rc;
}

int
store_crl_number_next(
    struct db *db, int64_t tenant_id, int64_t generation, int64_t *number, struct devid_error *e)
{
	static const char *const sql[] = {
	    "UPDATE cas SET crl_number = crl_number + 1 WHERE tenant_id = ? AND generation = ?"
	    " RETURNING crl_number",
	    "UPDATE cas_retired SET crl_number = crl_number + 1 WHERE tenant_id = ?"
	    " AND generation = ? RETURNING crl_number",
	};
	struct db_param p[] = {DB_INT(tenant_id), DB_INT(generation)};
	struct db_rows *r;
	int rc;

	*number = 0;
	for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++) {
		if ((rc = db_query(db, sql[i], p, 2, &r, e)) != 0)
			return rc;
		if (db_rows_count(r) == 1)
			*number = db_rows_int(r, 0, 0);
		db_rows_free(r);
		if (*number != 0)
			return 0;
	}
	return devid_error_set(e, DEVID_ENOTFOUND, "the tenant has no such operational CA");
}

int
store_cert_revoke(struct db *db, int64_t tenant_id, int64_t device_id, int64_t batch_id, int64_t at,
    int reason, int64_t *n, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(at), DB_INT(reason), DB_INT(tenant_id),
	    DB_INT(device_id ? device_id : batch_id)};

	return db_exec(db,
	    device_id != 0 ? "UPDATE certificates SET revoked_at = ?, reason = ?"
			     " WHERE tenant_id = ? AND device_id = ? AND revoked_at IS NULL"
			   : "UPDATE certificates SET revoked_at = ?, reason = ?"
			     " WHERE tenant_id = ? AND revoked_at IS NULL"
			     " AND device_id IN (SELECT id FROM devices WHERE batch_id = ?)",
	    p, 4, n, e);
}
