/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_token.c - tenants and their tokens as an administrator sees them: listed, found,
 * revoked, and their last use. A token's secret is never stored, and its hash never leaves
 * this file except for lookup (store.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "lib/banned.h"

int
store_tenant_list(struct db *db, struct tenant_info **out, size_t *n, struct devid_error *e)
{
	struct tenant_info *t;
	struct db_rows *r;
	int rc;

	*out = NULL;
	*n = 0;
	rc = db_query(
	    db, "SELECT id, name, kind, created_at FROM tenants ORDER BY name", NULL, 0, &r, e);
	if (rc != 0)
		return rc;
	if ((t = calloc(db_rows_count(r) + 1, sizeof(*t))) == NULL) {
		db_rows_free(r);
		return devid_error_set(e, DEVID_ENOMEM, "tenants: out of memory");
	}
	for (size_t i = 0; i < db_rows_count(r); i++) {
		t[i].t.id = db_rows_int(r, i, 0);
		snprintf(t[i].t.name, sizeof(t[i].t.name), "%s", db_rows_text(r, i, 1, NULL));
		if (tenant_kind_parse(db_rows_text(r, i, 2, NULL), &t[i].t.kind) != 0)
			t[i].t.kind = TENANT_OEM;
		t[i].created_at = db_rows_int(r, i, 3);
	}
	*n = db_rows_count(r);
	*out = t;
	db_rows_free(r);
	return 0;
}

#define TOKEN_COLUMNS                                                                              \
	"SELECT id, tenant_id, name, role, created_at, expires_at, last_used_at, revoked_at"       \
	" FROM tokens"

static void
token_from_row(const struct db_rows *r, size_t i, struct token_info *t)
{
	memset(t, 0, sizeof(*t));
	t->id = db_rows_int(r, i, 0);
	t->tenant_id = db_rows_int(r, i, 1);
	snprintf(t->name, sizeof(t->name), "%s", db_rows_text(r, i, 2, NULL));
	if (role_parse(db_rows_text(r, i, 3, NULL), &t->role) != 0)
		t->role = ROLE_OPERATOR;
	t->created_at = db_rows_int(r, i, 4);
	t->expires_at = db_rows_int(r, i, 5);
	t->last_used_at = db_rows_int(r, i, 6);
	t->revoked_at = db_rows_int(r, i, 7);
}

int
store_token_list(
    struct db *db, int64_t tenant_id, struct token_info **out, size_t *n, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id)};
	struct token_info *t;
	struct db_rows *r;
	int rc;

	*out = NULL;
	*n = 0;
	rc = db_query(db, TOKEN_COLUMNS " WHERE tenant_id = ? ORDER BY id", p, 1, &r, e);
	if (rc != 0)
		return rc;
	if ((t = calloc(db_rows_count(r) + 1, sizeof(*t))) == NULL) {
		db_rows_free(r);
		return devid_error_set(e, DEVID_ENOMEM, "tokens: out of memory");
	}
	for (size_t i = 0; i < db_rows_count(r); i++)
		token_from_row(r, i, &t[i]);
	*n = db_rows_count(r);
	*out = t;
	db_rows_free(r);
	return 0;
}

int
store_token_find(struct db *db, int64_t tenant_id, int64_t id, const char *name,
    struct token_info *t, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(tenant_id), id > 0 ? DB_INT(id) : DB_TEXT(name)};
	struct db_rows *r;
	int rc;

	rc = db_query(db,
	    id > 0 ? TOKEN_COLUMNS " WHERE tenant_id = ? AND id = ?"
		   : TOKEN_COLUMNS " WHERE tenant_id = ? AND name = ?",
	    p, 2, &r, e);
	if (rc != 0)
		return rc;
	if (db_rows_count(r) == 0) {
		if (id > 0)
			rc = devid_error_set(e, DEVID_ENOTFOUND, "no token %lld", (long long)id);
		else
			rc = devid_error_set(e, DEVID_ENOTFOUND, "no token named \"%s\"", name);
	} else {
		token_from_row(r, 0, t);
	}
	db_rows_free(r);
	return rc;
}

int
store_token_revoke(struct db *db, int64_t tenant_id, int64_t id, int64_t now, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(now), DB_INT(tenant_id), DB_INT(id)};
	int64_t changes = 0;
	int rc;

	rc = db_exec(db,
	    "UPDATE tokens SET revoked_at = ? WHERE tenant_id = ? AND id = ? AND revoked_at IS "
	    "NULL",
	    p, 3, &changes, e);
	if (rc == 0 && changes != 1)
		rc = devid_error_set(
		    e, DEVID_ENOTFOUND, "no token %lld that is not revoked", (long long)id);
	return rc;
}

int
store_token_touch(
    struct db *db, int64_t id, int64_t now, int64_t min_interval, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(now), DB_INT(id), DB_INT(now - min_interval)};

	/* the condition again, for the server that raced us to it */
	return db_exec(db,
	    "UPDATE tokens SET last_used_at = ?"
	    " WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)",
	    p, 3, NULL, e);
}
