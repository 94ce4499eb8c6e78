/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_trust.c - trusted vendor roots and manifest signers: whose they are (a devid vendor's
 * own, or an OEM's for its imports), their removal, and which one admitted each batch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"
#include "lib/banned.h"

#define TRUST_COLUMNS                                                                              \
	"SELECT v.id, v.vendor_id, t.name, v.owner_id, v.root_pem, v.signer_pem,"                  \
	" v.signer_sha256, v.created_at, v.removed_at FROM vendor_trust v"                         \
	" JOIN tenants t ON t.id = v.vendor_id"

void
store_trust_list_free(struct trust_rec *t, size_t n)
{
	for (size_t i = 0; t != NULL && i < n; i++) {
		free(t[i].root_pem);
		free(t[i].signer_pem);
	}
	free(t);
}

/* The rows of a TRUST_COLUMNS query as an array of n records (*out NULL when n is 0). */
static int
trust_from_rows(struct db_rows *r, struct trust_rec **out, size_t *n, struct devid_error *e)
{
	struct trust_rec *t;

	*out = NULL;
	*n = 0;
	if ((t = calloc(db_rows_count(r) + 1, sizeof(*t))) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "trust: out of memory");
	for (size_t i = 0; i < db_rows_count(r); i++) {
		t[i].id = db_rows_int(r, i, 0);
		t[i].vendor_id = db_rows_int(r, i, 1);
		snprintf(t[i].vendor, sizeof(t[i].vendor), "%s", db_rows_text(r, i, 2, NULL));
		t[i].owner_id = db_rows_int(r, i, 3);
		t[i].root_pem = strdup(db_rows_text(r, i, 4, NULL));
		t[i].signer_pem = strdup(db_rows_text(r, i, 5, NULL));
		snprintf(t[i].signer_sha256, sizeof(t[i].signer_sha256), "%s",
		    db_rows_text(r, i, 6, NULL));
		t[i].created_at = db_rows_int(r, i, 7);
		t[i].removed_at = db_rows_int(r, i, 8);
		if (t[i].root_pem == NULL || t[i].signer_pem == NULL) {
			store_trust_list_free(t, i + 1);
			return devid_error_set(e, DEVID_ENOMEM, "trust: out of memory");
		}
	}
	*n = db_rows_count(r);
	*out = t;
	return 0;
}

int
store_trust_list(
    struct db *db, int64_t vendor_id, struct trust_rec **out, size_t *n, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(vendor_id), DB_INT(vendor_id)};
	struct db_rows *r;
	int rc;

	*out = NULL;
	*n = 0;
	rc = db_query(
	    db, TRUST_COLUMNS " WHERE ? = 0 OR v.vendor_id = ? ORDER BY v.id", p, 2, &r, e);
	if (rc != 0)
		return rc;
	rc = trust_from_rows(r, out, n, e);
	db_rows_free(r);
	return rc;
}

/* The one record a query finds, or DEVID_ENOTFOUND saying what. */
static int
trust_one(struct db *db, const char *sql, int64_t key, const char *what, struct trust_rec **out,
    struct devid_error *e)
{
	struct db_param p[] = {DB_INT(key)};
	struct db_rows *r;
	size_t n = 0;
	int rc;

	*out = NULL;
	if ((rc = db_query(db, sql, p, 1, &r, e)) != 0)
		return rc;
	if (db_rows_count(r) == 0)
		rc = devid_error_set(e, DEVID_ENOTFOUND, "%s", what);
	else
		rc = trust_from_rows(r, out, &n, e);
	db_rows_free(r);
	return rc;
}

int
store_trust_get(struct db *db, int64_t id, struct trust_rec **out, struct devid_error *e)
{
	char what[48];

	snprintf(what, sizeof(what), "no trust %lld", (long long)id);
	return trust_one(db, TRUST_COLUMNS " WHERE v.id = ?", id, what, out, e);
}

int
store_batch_trust(struct db *db, int64_t batch_id, struct trust_rec **out, struct devid_error *e)
{
	return trust_one(db, TRUST_COLUMNS " JOIN batches b ON b.trust_id = v.id WHERE b.id = ?",
	    batch_id, "the trust that admitted the batch is not known", out, e);
}

int
store_trust_put(struct db *db, int64_t vendor_id, int64_t owner_id, const char *root_pem,
    const char *signer_pem, const char *signer_sha256_hex, int64_t *id, bool *readded,
    struct devid_error *e)
{
	struct db_param key[] = {DB_INT(vendor_id), DB_TEXT(signer_sha256_hex)};
	struct db_rows *r;
	int rc;

	*readded = false;
	/* UNIQUE (vendor_id, signer_sha256) holds removed signers too: those come back */
	rc = db_query(db,
	    "SELECT id, removed_at FROM vendor_trust WHERE vendor_id = ? AND signer_sha256 = ?",
	    key, 2, &r, e);
	if (rc != 0)
		return rc;
	if (db_rows_count(r) > 0) {
		struct db_param p[] = {DB_TEXT(root_pem), DB_INT(db_rows_int(r, 0, 0))};
		bool removed = !db_rows_null(r, 0, 1);

		*id = db_rows_int(r, 0, 0);
		db_rows_free(r);
		if (!removed)
			return devid_error_set(e, DEVID_ECONFLICT,
			    "this manifest signer is already trusted (trust %lld)", (long long)*id);
		*readded = true;
		return db_exec(db,
		    "UPDATE vendor_trust SET removed_at = NULL, root_pem = ? WHERE id = ?", p, 2,
		    NULL, e);
	}
	db_rows_free(r);
	{
		struct db_param p[] = {DB_INT(vendor_id), owner_id ? DB_INT(owner_id) : DB_NULL,
		    DB_TEXT(root_pem), DB_TEXT(signer_pem), DB_TEXT(signer_sha256_hex),
		    DB_INT(time(NULL))};

		rc = db_query(db,
		    "INSERT INTO vendor_trust (vendor_id, owner_id, root_pem, signer_pem,"
		    " signer_sha256, created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
		    p, 6, &r, e);
	}
	if (rc == DEVID_ECONFLICT)
		return devid_error_set(e, rc, "this manifest signer is already trusted");
	if (rc != 0)
		return rc;
	*id = db_rows_int(r, 0, 0);
	db_rows_free(r);
	return 0;
}

int
store_trust_remove(struct db *db, int64_t id, int64_t now, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(now), DB_INT(id)};
	int64_t changes = 0;
	int rc;

	rc = db_exec(db,
	    "UPDATE vendor_trust SET removed_at = ? WHERE id = ? AND removed_at IS NULL", p, 2,
	    &changes, e);
	if (rc == 0 && changes != 1)
		rc = devid_error_set(e, DEVID_ENOTFOUND, "no trust %lld in force", (long long)id);
	return rc;
}

int
store_batch_set_trust(struct db *db, int64_t batch_id, int64_t trust_id, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(trust_id), DB_INT(batch_id)};

	return db_exec(db, "UPDATE batches SET trust_id = ? WHERE id = ?", p, 2, NULL, e);
}
