/* SPDX-License-Identifier: Apache-2.0 */
/*
 * session.c - console sessions: a token traded for a cookie (docs/console.md "Sign in and
 * sessions"). The secret is 32 random bytes; the database holds only their SHA-256, so a copy
 * of it signs no one in. A session acts as its token in every respect (role, tenant, actor,
 * rate-limit key) and lives no longer than it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "lib/base64.h"
#include "lib/json.h"
#include "service/internal.h"
#include "lib/banned.h"

#define SESSION_SECRET_LEN 32
#define CSRF_LABEL "devid-csrf:"

/* The stored hash (hex SHA-256) and the CSRF token of a secret's bytes. */
static int
session_derive(const uint8_t secret[SESSION_SECRET_LEN], char hash[2 * SHA256_DIGEST_LENGTH + 1],
    struct session *s, struct devid_error *e)
{
	uint8_t md[SHA256_DIGEST_LENGTH], buf[sizeof(CSRF_LABEL) - 1 + SESSION_SECRET_LEN];
	char *csrf;

	SHA256(secret, SESSION_SECRET_LEN, md);
	hex_encode(md, sizeof(md), hash);
	memcpy(buf, CSRF_LABEL, sizeof(CSRF_LABEL) - 1);
	memcpy(buf + sizeof(CSRF_LABEL) - 1, secret, SESSION_SECRET_LEN);
	SHA256(buf, sizeof(buf), md);
	OPENSSL_cleanse(buf, sizeof(buf));
	if ((csrf = b64url_encode(md, sizeof(md))) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "session: out of memory");
	snprintf(s->csrf, sizeof(s->csrf), "%s", csrf);
	free(csrf);
	return 0;
}

int
service_session_ttl(const struct service *svc)
{
	return svc->session_ttl > 0 ? svc->session_ttl : SESSION_DEFAULT_TTL;
}

int
service_session_open(struct service *svc, const char *token, size_t len, struct principal *p,
    struct session *s, struct devid_error *e)
{
	uint8_t raw[SESSION_SECRET_LEN];
	char hash[2 * SHA256_DIGEST_LENGTH + 1], *text = NULL;
	int64_t now = time(NULL);
	json_t *detail = NULL;
	struct db *db = NULL;
	int rc;

	memset(s, 0, sizeof(*s));
	if ((rc = service_authenticate(svc, token, len, p, e)) != 0)
		return rc;
	if (p->role == ROLE_VENDOR)
		return devid_error_set(
		    e, DEVID_EAUTH, "the console is for OEM admins and operators");
	s->expires_at = now + service_session_ttl(svc);
	if (RAND_bytes(raw, sizeof(raw)) != 1 || (text = b64url_encode(raw, sizeof(raw))) == NULL) {
		rc = devid_error_set(e, DEVID_ECRYPTO, "no randomness for a session");
		goto out;
	}
	if ((rc = session_derive(raw, hash, s, e)) != 0)
		goto out;
	/* the record names the token; neither the secret nor its hash is in it */
	if ((detail = json_pack("{s:I, s:o}", "token", (json_int_t)p->token, "expiresAt",
		 json_time(s->expires_at))) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "session: out of memory");
		goto out;
	}
	db = store_acquire(svc->store);
	/* opportunistic: sessions no lookup finds any more go, whether or not this one opens */
	(void)store_session_purge(db, now, NULL, NULL);
	if ((rc = db_begin(db, e)) != 0)
		goto out;
	if ((rc = store_session_add(db, hash, p->token, now, s->expires_at, e)) != 0 ||
	    (rc = audit_append(
		 db, p->tenant.id, p->actor, "session.open", p->token_name, detail, e)) != 0) {
		db_rollback(db);
		goto out;
	}
	if ((rc = db_commit(db, e)) != 0)
		goto out;
	snprintf(s->secret, sizeof(s->secret), "%s", text);
out:
	if (db != NULL)
		store_release(svc->store, db);
	if (rc != 0)
		OPENSSL_cleanse(s, sizeof(*s));
	OPENSSL_cleanse(raw, sizeof(raw));
	if (text != NULL)
		OPENSSL_cleanse(text, strlen(text));
	free(text);
	json_decref(detail);
	return rc;
}

int
service_session_principal(struct service *svc, const char *secret, size_t len, struct principal *p,
    struct session *s, struct devid_error *e)
{
	char hash[2 * SHA256_DIGEST_LENGTH + 1];
	struct devid_error ignored;
	struct session_rec rec;
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	struct db *db;
	int rc;

	memset(p, 0, sizeof(*p));
	memset(s, 0, sizeof(*s));
	/* one encoding per value (the decoder is strict), so one text per session */
	if (len != SESSION_TEXT_LEN || b64url_decode(secret, len, &raw, &rawlen) != 0 ||
	    rawlen != SESSION_SECRET_LEN) {
		rc = devid_error_set(e, DEVID_EAUTH, "no live session: sign in again");
		goto out;
	}
	if ((rc = session_derive(raw, hash, s, e)) != 0)
		goto out;
	devid_error_clear(&ignored);
	db = store_acquire(svc->store);
	rc = store_session_lookup(db, hash, time(NULL), &rec, &ignored);
	if (rc == 0)
		service_token_touch(db, rec.tok.id, rec.tok.last_used_at, time(NULL));
	store_release(svc->store, db);
	if (rc == DEVID_ENOTFOUND) {
		rc = devid_error_set(e, DEVID_EAUTH, "no live session: sign in again");
		goto out;
	}
	if (rc != 0) {
		devid_error_set(e, rc, "%s", ignored.msg);
		goto out;
	}
	memcpy(s->secret, secret, SESSION_TEXT_LEN);
	s->expires_at = rec.expires_at;
	p->tenant = rec.tok.tenant;
	p->role = rec.tok.role;
	p->token = rec.tok.id;
	memcpy(p->token_id, rec.token_key, sizeof(p->token_id));
	snprintf(p->token_name, sizeof(p->token_name), "%s", rec.tok.name);
	snprintf(p->actor, sizeof(p->actor), "token:%lld:%s", (long long)rec.tok.id, rec.tok.name);
out:
	if (rc != 0) {
		memset(p, 0, sizeof(*p));
		OPENSSL_cleanse(s, sizeof(*s));
	}
	if (raw != NULL)
		OPENSSL_cleanse(raw, rawlen);
	free(raw);
	return rc;
}

bool
service_session_csrf_ok(const struct session *s, const char *csrf)
{
	/* the length is not secret: every CSRF token has SESSION_TEXT_LEN characters */
	return csrf != NULL && s->csrf[0] != '\0' && strlen(csrf) == SESSION_TEXT_LEN &&
	    CRYPTO_memcmp(s->csrf, csrf, SESSION_TEXT_LEN) == 0;
}

int
service_session_close(
    struct service *svc, const struct principal *p, const struct session *s, struct devid_error *e)
{
	char hash[2 * SHA256_DIGEST_LENGTH + 1];
	struct session again;
	json_t *detail = NULL;
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	struct db *db = NULL;
	int rc;

	if (b64url_decode(s->secret, strlen(s->secret), &raw, &rawlen) != 0 ||
	    rawlen != SESSION_SECRET_LEN) {
		rc = devid_error_set(e, DEVID_EINVAL, "not a session");
		goto out;
	}
	if ((rc = session_derive(raw, hash, &again, e)) != 0)
		goto out;
	if ((detail = json_pack("{s:I}", "token", (json_int_t)p->token)) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "session: out of memory");
		goto out;
	}
	db = store_acquire(svc->store);
	if ((rc = db_begin(db, e)) != 0)
		goto out;
	if ((rc = store_session_delete(db, hash, e)) != 0 ||
	    (rc = audit_append(
		 db, p->tenant.id, p->actor, "session.close", p->token_name, detail, e)) != 0) {
		db_rollback(db);
		goto out;
	}
	rc = db_commit(db, e);
out:
	if (db != NULL)
		store_release(svc->store, db);
	if (raw != NULL)
		OPENSSL_cleanse(raw, rawlen);
	OPENSSL_cleanse(&again, sizeof(again));
	free(raw);
	json_decref(detail);
	return rc;
}
