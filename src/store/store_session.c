/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store_session.c - console sessions (schema v8): stored by the SHA-256 of their secret,
 * found only while they and the token they were opened with are live.
 */
#include <stdio.h>
#include <string.h>

#include "store/store.h"
#include "lib/banned.h"

int
store_session_add(struct db *db, const char *id_hash, int64_t token_id, int64_t now,
    int64_t expires_at, struct devid_error *e)
{
	struct db_param p[] = {DB_TEXT(id_hash), DB_INT(token_id), DB_INT(now), DB_INT(expires_at)};

	return db_exec(db,
	    "INSERT INTO sessions (id_hash, token_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
	    p, 4, NULL, e);
}

int
store_session_lookup(
    struct db *db, const char *id_hash, int64_t now, struct session_rec *s, struct devid_error *e)
{
	struct db_param p[] = {DB_TEXT(id_hash), DB_INT(now), DB_INT(now)};
	struct db_rows *r;
	int rc;

	memset(s, 0, sizeof(*s));
	/* the token's conditions are store_token_lookup's: a session lives only as long */
	rc = db_query(db,
	    "SELECT t.id, t.name, t.kind, k.role, k.id, k.name, k.last_used_at, k.token_sha256,"
	    " s.expires_at FROM sessions s"
	    " JOIN tokens k ON k.id = s.token_id"
	    " JOIN tenants t ON t.id = k.tenant_id"
	    " WHERE s.id_hash = ? AND s.expires_at > ? AND k.revoked_at IS NULL"
	    " AND (k.expires_at IS NULL OR k.expires_at > ?)",
	    p, 3, &r, e);
	if (rc != 0)
		return rc;
	if (db_rows_count(r) == 0) {
		rc = devid_error_set(e, DEVID_ENOTFOUND, "no live session");
	} else if ((rc = tenant_kind_parse(db_rows_text(r, 0, 2, NULL), &s->tok.tenant.kind)) ==
		0 &&
	    (rc = role_parse(db_rows_text(r, 0, 3, NULL), &s->tok.role)) == 0) {
		s->tok.tenant.id = db_rows_int(r, 0, 0);
		snprintf(s->tok.tenant.name, sizeof(s->tok.tenant.name), "%s",
		    db_rows_text(r, 0, 1, NULL));
		s->tok.id = db_rows_int(r, 0, 4);
		snprintf(s->tok.name, sizeof(s->tok.name), "%s", db_rows_text(r, 0, 5, NULL));
		s->tok.last_used_at = db_rows_int(r, 0, 6);
		snprintf(s->token_key, sizeof(s->token_key), "%s", db_rows_text(r, 0, 7, NULL));
		s->expires_at = db_rows_int(r, 0, 8);
	}
	db_rows_free(r);
	return rc;
}

int
store_session_delete(struct db *db, const char *id_hash, struct devid_error *e)
{
	struct db_param p[] = {DB_TEXT(id_hash)};
	int64_t changes = 0;
	int rc;

	rc = db_exec(db, "DELETE FROM sessions WHERE id_hash = ?", p, 1, &changes, e);
	if (rc == 0 && changes != 1)
		rc = devid_error_set(e, DEVID_ENOTFOUND, "no such session");
	return rc;
}

int
store_session_purge(struct db *db, int64_t now, int64_t *n, struct devid_error *e)
{
	struct db_param p[] = {DB_INT(now), DB_INT(now)};

	return db_exec(db,
	    "DELETE FROM sessions WHERE expires_at <= ? OR token_id IN (SELECT id FROM tokens"
	    " WHERE revoked_at IS NOT NULL OR (expires_at IS NOT NULL AND expires_at <= ?))",
	    p, 2, n, e);
}
