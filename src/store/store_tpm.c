/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_tpm.c - the pending activations of TPM enrollment by credential activation
 * (store.h, schema v13).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "lib/banned.h"

void
tpm_activation_rec_release(struct tpm_activation_rec *a)
{
	free(a->csr);
	a->csr = NULL;
	a->csr_len = 0;
}

int
store_tpm_activation_put(struct db *db, const struct tpm_activation_rec *a, struct devid_error *e)
{
	struct db_param del[] = {DB_INT(a->device_id), DB_INT(a->created_at)};
	struct db_param p[] = {
	    DB_TEXT(a->ref),
	    DB_INT(a->device_id),
	    DB_INT(a->tenant_id),
	    DB_TEXT(a->ak_name),
	    DB_TEXT(a->secret_sha256),
	    DB_BLOB(a->csr, a->csr_len),
	    DB_INT(a->created_at),
	    DB_INT(a->expires_at),
	};
	int rc;

	if ((rc = db_exec(db, "DELETE FROM tpm_activations WHERE device_id = ? OR expires_at <= ?",
		 del, 2, NULL, e)) != 0)
		return rc;
	rc = db_exec(db,
	    "INSERT INTO tpm_activations (ref, device_id, tenant_id, ak_name, secret_sha256, csr,"
	    " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
	    p, sizeof(p) / sizeof(p[0]), NULL, e);
	if (rc == DEVID_ECONFLICT)
		devid_error_set(e, rc, "activation %s exists", a->ref);
	return rc;
}

/* Copies a text column into out (size n), refusing one that does not fit. */
static int
text_col(const struct db_rows *r, size_t col, char *out, size_t n, struct devid_error *e)
{
	size_t len;
	const char *s = db_rows_text(r, 0, col, &len);

	if (s == NULL || len >= n)
		return devid_error_set(e, DEVID_EINTERNAL, "tpm_activations: column %zu", col);
	memcpy(out, s, len);
	out[len] = '\0';
	return 0;
}

int
store_tpm_activation_take(
    struct db *db, const char *ref, struct tpm_activation_rec *a, struct devid_error *e)
{
	struct db_param p[] = {DB_TEXT(ref)};
	struct db_rows *r = NULL;
	const uint8_t *csr;
	int rc;

	memset(a, 0, sizeof(*a));
	if ((rc = db_query(db,
		 "DELETE FROM tpm_activations WHERE ref = ? RETURNING device_id, tenant_id,"
		 " ak_name, secret_sha256, csr, created_at, expires_at",
		 p, 1, &r, e)) != 0)
		return rc;
	if (db_rows_count(r) == 0) {
		rc = devid_error_set(e, DEVID_ENOTFOUND, "no pending activation %s", ref);
		goto out;
	}
	snprintf(a->ref, sizeof(a->ref), "%s", ref);
	a->device_id = db_rows_int(r, 0, 0);
	a->tenant_id = db_rows_int(r, 0, 1);
	a->created_at = db_rows_int(r, 0, 5);
	a->expires_at = db_rows_int(r, 0, 6);
	if ((rc = text_col(r, 2, a->ak_name, sizeof(a->ak_name), e)) != 0 ||
	    (rc = text_col(r, 3, a->secret_sha256, sizeof(a->secret_sha256), e)) != 0)
		goto out;
	csr = db_rows_blob(r, 0, 4, &a->csr_len);
	if (csr == NULL || a->csr_len == 0 || (a->csr = malloc(a->csr_len)) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "tpm_activations: csr");
		goto out;
	}
	memcpy(a->csr, csr, a->csr_len);
	db_rows_free(r);
	r = NULL;
	{
		struct db_param d[] = {DB_INT(a->device_id)};

		if ((rc = db_query(db, "SELECT udid FROM devices WHERE id = ?", d, 1, &r, e)) != 0)
			goto out;
	}
	if (db_rows_count(r) == 0) {
		rc = devid_error_set(e, DEVID_ENOTFOUND, "activation %s: no such device", ref);
		goto out;
	}
	rc = text_col(r, 0, a->udid, sizeof(a->udid), e);
out:
	if (rc != 0)
		tpm_activation_rec_release(a);
	db_rows_free(r);
	return rc;
}
