/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Console sessions in the domain (docs/console.md "Sign in and sessions"), on SQLite and on
 * PostgreSQL:
 *   - a session opened with a token is stored only as the SHA-256 of its secret's bytes; its
 *     CSRF token is base64url(SHA-256("devid-csrf:" || those bytes)), checked exactly;
 *   - its principal is the token's in every field, rate-limit key included: a claim through
 *     the session counts against the token's bucket;
 *   - a wrong token does not sign in (no principal: 401), a vendor's does but is refused
 *     (403), and neither stores a session;
 *   - a malformed or unknown secret, a closed session, an expired one, one whose token is
 *     revoked or expired: no principal; the purge removes them;
 *   - sign-in and sign-out are audited as the token, never with the secret or its hash, and
 *     the chain verifies.
 * Usage: test_session sqlite|postgres.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "lib/base64.h"
#include "service/service.h"
#include "test.h"
#include "storekit.h"
#include "lib/banned.h"

static char tmp[PATH_MAX];

#define A2_SESSIONS                                                                                \
	"SELECT COUNT(*) FROM sessions s JOIN tokens k ON k.id = s.token_id WHERE k.name = 'a2'"

/* One value of a query, as text ("" when there is no row). */
static void
query_text(struct store *s, const char *sql, char *out, size_t len)
{
	struct db *db = store_acquire(s);
	struct db_rows *r;

	out[0] = '\0';
	if (db_query(db, sql, NULL, 0, &r, NULL) == 0) {
		if (db_rows_count(r) > 0)
			snprintf(out, len, "%s", db_rows_text(r, 0, 0, NULL));
		db_rows_free(r);
	}
	store_release(s, db);
}

static int
open_with(struct service *svc, const char *token, struct principal *p, struct session *s,
    struct devid_error *e)
{
	devid_error_clear(e);
	return service_session_open(svc, token, strlen(token), p, s, e);
}

static int
principal_of(struct service *svc, const char *secret, struct principal *p, struct session *s,
    struct devid_error *e)
{
	devid_error_clear(e);
	return service_session_principal(svc, secret, strlen(secret), p, s, e);
}

/* The stored hash and the CSRF token a secret must have, computed here independently. */
static void
expected(const char *secret, char hash[65], char csrf[SESSION_TEXT_LEN + 1])
{
	uint8_t *raw = NULL, md[SHA256_DIGEST_LENGTH], buf[11 + 32];
	size_t n = 0;
	char *b;

	hash[0] = csrf[0] = '\0';
	if (b64url_decode(secret, strlen(secret), &raw, &n) != 0 || n != 32) {
		free(raw);
		return;
	}
	SHA256(raw, n, md);
	hex_encode(md, sizeof(md), hash);
	memcpy(buf, "devid-csrf:", 11);
	memcpy(buf + 11, raw, n);
	SHA256(buf, sizeof(buf), md);
	b = b64url_encode(md, sizeof(md));
	snprintf(csrf, SESSION_TEXT_LEN + 1, "%s", b != NULL ? b : "");
	free(b);
	free(raw);
}

static int
claim_x(struct service *svc, const struct principal *p, struct devid_error *e)
{
	struct batch_rec b;
	bool changed;
	int retry_after;

	devid_error_clear(e);
	return service_claim(svc, p, NULL, (const uint8_t *)"x", 1, &b, &changed, &retry_after, e);
}

int
main(int argc, char **argv)
{
	char url[PATH_MAX + 32], a1[TOKEN_TEXT_MAX], op[TOKEN_TEXT_MAX], a2[TOKEN_TEXT_MAX];
	char vt[TOKEN_TEXT_MAX], brief[TOKEN_TEXT_MAX], hash[65], csrf[SESSION_TEXT_LEN + 1];
	char sql[512], text[4096], wrong[SESSION_TEXT_LEN + 2], secret1[SESSION_TEXT_LEN + 1];
	struct service svc = {.verify_threads = 1, .session_ttl = 100};
	struct principal bearer, p, q;
	struct session s, t, u;
	struct devid_error e;
	struct store *st = NULL;
	int64_t now, count, oem1;
	bool pg = argc > 1 && strcmp(argv[1], "postgres") == 0;

	devid_error_clear(&e);
	if (pg && getenv("DEVID_TEST_PG_URL") == NULL)
		test_skip("DEVID_TEST_PG_URL not set (run under scripts/with-postgres)");
	test_tmpdir(tmp, sizeof(tmp), "session");
	if (pg)
		snprintf(url, sizeof(url), "%s", getenv("DEVID_TEST_PG_URL"));
	else
		snprintf(url, sizeof(url), "sqlite:%s/devid.db", tmp);
	CHECK(store_open(url, 2, &st, &e) == 0, "store: %s", e.msg);
	if (st == NULL)
		return test_done();
	svc.store = st;
	now = time(NULL);
	CHECK(service_tenant_add(&svc, "ACME", TENANT_VENDOR, &e) == 0 &&
		service_tenant_add(&svc, "OEM1", TENANT_OEM, &e) == 0 &&
		service_tenant_add(&svc, "OEM2", TENANT_OEM, &e) == 0,
	    "tenants: %s", e.msg);
	CHECK(service_token_add_admin(&svc, "OEM1", ROLE_ADMIN, "a1", 0, a1, NULL, &e) == 0 &&
		service_token_add_admin(&svc, "OEM1", ROLE_OPERATOR, "op", 0, op, NULL, &e) == 0 &&
		service_token_add_admin(&svc, "OEM2", ROLE_ADMIN, "a2", 0, a2, NULL, &e) == 0 &&
		service_token_add_admin(&svc, "ACME", ROLE_VENDOR, "pub", 0, vt, NULL, &e) == 0,
	    "tokens: %s", e.msg);
	query_text(st, "SELECT id FROM tenants WHERE name = 'OEM1'", text, sizeof(text));
	oem1 = strtoll(text, NULL, 10);

	/* a session: 43 base64url characters, stored only as the SHA-256 of its bytes */
	CHECK(open_with(&svc, a1, &p, &s, &e) == 0, "open with a1: %s", e.msg);
	CHECK(strlen(s.secret) == SESSION_TEXT_LEN && strlen(s.csrf) == SESSION_TEXT_LEN,
	    "secret \"%s\" and csrf \"%s\" are 43 characters", s.secret, s.csrf);
	CHECK(s.expires_at >= now + 100 && s.expires_at <= time(NULL) + 100,
	    "expires %lld, want now + the ttl (100)", (long long)s.expires_at);
	expected(s.secret, hash, csrf);
	CHECK(strcmp(s.csrf, csrf) == 0,
	    "csrf %s, want base64url(SHA-256(\"devid-csrf:\" || bytes)) %s", s.csrf, csrf);
	CHECK(storekit_count(st, "SELECT COUNT(*) FROM sessions") == 1, "one session stored");
	query_text(st, "SELECT id_hash FROM sessions", text, sizeof(text));
	CHECK(strcmp(text, hash) == 0, "stored %s, want the SHA-256 of the secret's bytes %s", text,
	    hash);
	CHECK(strcmp(text, s.secret) != 0, "the secret itself is stored");
	snprintf(secret1, sizeof(secret1), "%s", s.secret);

	/* its principal is the token's, field by field */
	devid_error_clear(&e);
	CHECK(service_authenticate(&svc, a1, strlen(a1), &bearer, &e) == 0, "a1: %s", e.msg);
	CHECK(principal_of(&svc, secret1, &q, &t, &e) == 0, "the session: %s", e.msg);
	CHECK(q.tenant.id == bearer.tenant.id && strcmp(q.tenant.name, "OEM1") == 0 &&
		q.tenant.kind == TENANT_OEM && q.role == ROLE_ADMIN && q.token == bearer.token &&
		strcmp(q.token_name, "a1") == 0,
	    "session principal %s/%d/%lld/%s differs from the token's", q.tenant.name, q.role,
	    (long long)q.token, q.token_name);
	CHECK(strcmp(q.token_id, bearer.token_id) == 0, "rate-limit key %s, the token's is %s",
	    q.token_id, bearer.token_id);
	CHECK(strcmp(q.actor, bearer.actor) == 0 && strncmp(q.actor, "token:", 6) == 0,
	    "actor %s, the token's is %s", q.actor, bearer.actor);
	CHECK(memcmp(&q, &bearer, sizeof(q)) == 0, "the principals differ somewhere");
	CHECK(memcmp(&p, &bearer, sizeof(p)) == 0, "sign-in's principal differs from the token's");
	CHECK(strcmp(t.csrf, s.csrf) == 0 && t.expires_at == s.expires_at &&
		strcmp(t.secret, secret1) == 0,
	    "the session found is not the one opened");

	/* the CSRF token: that one exactly */
	CHECK(service_session_csrf_ok(&t, s.csrf), "the right CSRF token is refused");
	CHECK(!service_session_csrf_ok(&t, NULL), "no CSRF token passes");
	CHECK(!service_session_csrf_ok(&t, ""), "an empty CSRF token passes");
	snprintf(wrong, sizeof(wrong), "%s", s.csrf);
	wrong[10] = wrong[10] == 'A' ? 'B' : 'A';
	CHECK(!service_session_csrf_ok(&t, wrong), "a CSRF token one character off passes");
	snprintf(wrong, sizeof(wrong), "%.42s", s.csrf);
	CHECK(!service_session_csrf_ok(&t, wrong), "a CSRF token cut short passes");
	snprintf(wrong, sizeof(wrong), "%sA", s.csrf);
	CHECK(!service_session_csrf_ok(&t, wrong), "a CSRF token with more after it passes");
	CHECK(!service_session_csrf_ok(&t, s.secret), "the session secret passes as CSRF token");

	/* the session shares its token's claim bucket, and only its token's */
	svc.claim_limit = (struct rate_limit){.interval_ms = 600000, .burst = 1};
	CHECK(claim_x(&svc, &bearer, &e) == DEVID_EINVAL, "the token's first claim: %s", e.msg);
	CHECK(claim_x(&svc, &q, &e) == DEVID_ELIMIT && strstr(e.msg, "token") != NULL,
	    "a claim through the session after the token's: %d %s", e.code, e.msg);
	CHECK(principal_of(&svc, secret1, &q, &t, &e) == 0, "the session: %s", e.msg);
	devid_error_clear(&e);
	CHECK(service_authenticate(&svc, op, strlen(op), &bearer, &e) == 0, "op: %s", e.msg);
	CHECK(claim_x(&svc, &bearer, &e) == DEVID_EINVAL,
	    "another token's claim is not limited: %s", e.msg);
	svc.claim_limit = (struct rate_limit){0};

	/* who may not sign in: nothing is stored */
	CHECK(open_with(&svc, "not-a-token-at-all-not-a-token", &p, &u, &e) == DEVID_EAUTH &&
		p.token == 0 && u.secret[0] == '\0',
	    "a wrong token: %d %s, principal %lld", e.code, e.msg, (long long)p.token);
	CHECK(open_with(&svc, vt, &p, &u, &e) == DEVID_EAUTH && p.token != 0 &&
		strcmp(e.msg, "the console is for OEM admins and operators") == 0 &&
		u.secret[0] == '\0',
	    "a vendor token: %d %s", e.code, e.msg);
	CHECK(storekit_count(st, "SELECT COUNT(*) FROM sessions") == 1,
	    "a refused sign-in stored one");

	/* secrets that are not a live session */
	CHECK(principal_of(&svc, "", &q, &u, &e) == DEVID_EAUTH, "an empty secret");
	snprintf(wrong, sizeof(wrong), "%.42s", secret1);
	CHECK(principal_of(&svc, wrong, &q, &u, &e) == DEVID_EAUTH && q.token == 0,
	    "42 characters of a secret");
	snprintf(wrong, sizeof(wrong), "%sA", secret1);
	CHECK(principal_of(&svc, wrong, &q, &u, &e) == DEVID_EAUTH, "44 characters");
	snprintf(wrong, sizeof(wrong), "%s", secret1);
	wrong[5] = '+';
	CHECK(
	    principal_of(&svc, wrong, &q, &u, &e) == DEVID_EAUTH, "a character outside base64url");
	snprintf(wrong, sizeof(wrong), "%s", secret1);
	wrong[5] = wrong[5] == 'A' ? 'B' : 'A';
	CHECK(principal_of(&svc, wrong, &q, &u, &e) == DEVID_EAUTH && u.csrf[0] == '\0',
	    "a secret one character off: %d %s", e.code, e.msg);
	CHECK(principal_of(&svc, hash, &q, &u, &e) == DEVID_EAUTH, "the stored hash signs in");

	/* sign-out: audited, and the session is gone */
	CHECK(open_with(&svc, op, &p, &u, &e) == 0, "open with op: %s", e.msg);
	CHECK(principal_of(&svc, u.secret, &q, &t, &e) == 0, "op's session: %s", e.msg);
	devid_error_clear(&e);
	CHECK(service_session_close(&svc, &q, &t, &e) == 0, "close: %s", e.msg);
	CHECK(principal_of(&svc, u.secret, &q, &t, &e) == DEVID_EAUTH, "a closed session lives");
	CHECK(principal_of(&svc, secret1, &q, &t, &e) == 0, "closing op's closed a1's: %s", e.msg);
	devid_error_clear(&e);
	CHECK(
	    service_session_close(&svc, &p, &u, &e) == DEVID_ENOTFOUND, "closed twice: %s", e.msg);

	/* the audit trail names the token and holds no secret and no hash */
	snprintf(sql, sizeof(sql),
	    "SELECT COUNT(*) FROM audit WHERE tenant_id = %lld AND action = 'session.open'",
	    (long long)oem1);
	CHECK(storekit_count(st, sql) == 2, "session.open records: %lld",
	    (long long)storekit_count(st, sql));
	snprintf(sql, sizeof(sql),
	    "SELECT actor FROM audit WHERE tenant_id = %lld AND action = 'session.close'",
	    (long long)oem1);
	query_text(st, sql, text, sizeof(text));
	CHECK(strcmp(text, p.actor) == 0 && strstr(text, ":op") != NULL,
	    "session.close by \"%s\", want %s", text, p.actor);
	snprintf(sql, sizeof(sql),
	    "SELECT actor FROM audit WHERE tenant_id = %lld AND action = 'session.open'"
	    " ORDER BY seq",
	    (long long)oem1);
	query_text(st, sql, text, sizeof(text));
	CHECK(strstr(text, ":a1") != NULL, "the first session.open by \"%s\"", text);
	{
		struct db *db = store_acquire(st);
		struct db_rows *r;

		CHECK(db_query(db, "SELECT detail, object FROM audit", NULL, 0, &r, &e) == 0,
		    "audit: %s", e.msg);
		for (size_t i = 0; r != NULL && i < db_rows_count(r); i++) {
			for (size_t col = 0; col < 2; col++) {
				const char *d = db_rows_text(r, i, col, NULL);

				CHECK(strstr(d, secret1) == NULL && strstr(d, hash) == NULL &&
					strstr(d, s.csrf) == NULL && strstr(d, u.secret) == NULL,
				    "an audit record holds a secret: %s", d);
			}
		}
		db_rows_free(r);
		CHECK(audit_verify(db, oem1, &count, &e) == 0 && count > 0, "chain: %s", e.msg);
		store_release(st, db);
	}

	/* revoking the token ends its session at once; the purge removes it */
	CHECK(open_with(&svc, a2, &p, &u, &e) == 0, "open with a2: %s", e.msg);
	devid_error_clear(&e);
	CHECK(service_token_revoke_admin(&svc, "OEM2", "a2", &e) == 0, "revoke a2: %s", e.msg);
	CHECK(principal_of(&svc, u.secret, &q, &t, &e) == DEVID_EAUTH,
	    "a revoked token's session lives");
	CHECK(storekit_count(st, A2_SESSIONS) == 1, "a2's session is purged before a sign-in");

	/* an expired session, and the session of an expired token */
	CHECK(service_token_add_admin(
		  &svc, "OEM1", ROLE_OPERATOR, "brief", time(NULL) + 2, brief, NULL, &e) == 0,
	    "token brief: %s", e.msg);
	svc.session_ttl = 1;
	CHECK(open_with(&svc, op, &p, &u, &e) == 0, "open with op: %s", e.msg);
	CHECK(storekit_count(st, A2_SESSIONS) == 0, "a sign-in leaves the revoked token's session");
	CHECK(open_with(&svc, brief, &p, &t, &e) == 0, "open with brief: %s", e.msg);
	svc.session_ttl = 100;
	CHECK(open_with(&svc, brief, &p, &s, &e) == 0, "open with brief: %s", e.msg);
	CHECK(principal_of(&svc, s.secret, &q, &t, &e) == 0, "brief's session: %s", e.msg);
	sleep(3);
	CHECK(principal_of(&svc, u.secret, &q, &t, &e) == DEVID_EAUTH, "an expired session lives");
	CHECK(principal_of(&svc, s.secret, &q, &t, &e) == DEVID_EAUTH,
	    "an expired token's session lives");
	CHECK(storekit_count(st, "SELECT COUNT(*) FROM sessions") == 4,
	    "sessions before the purge: %lld",
	    (long long)storekit_count(st, "SELECT COUNT(*) FROM sessions"));
	CHECK(open_with(&svc, a1, &p, &u, &e) == 0, "open with a1: %s", e.msg);
	/* left: a1's first and this one; gone: op's (expired) and brief's (its token expired) */
	CHECK(storekit_count(st, "SELECT COUNT(*) FROM sessions") == 2,
	    "sessions after the purge: %lld",
	    (long long)storekit_count(st, "SELECT COUNT(*) FROM sessions"));
	CHECK(principal_of(&svc, secret1, &q, &t, &e) == 0, "the purge took a live one: %s", e.msg);

	store_close(st);
	test_rmdir(tmp);
	return test_done();
}
