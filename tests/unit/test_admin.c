/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tenants, tokens and trust in the domain (issue 10), on SQLite and on PostgreSQL, each with
 * the hostile case and a check that nothing changed:
 *   - import before publish: an OEM's import of a devid vendor's manifest is refused (and so
 *     is adding that vendor's signer as its own import trust); the vendor's later publish
 *     succeeds and the claim code binds the batch to the rightful claimer;
 *   - an import under the OEM's own trust works, lives in OEM/BATCH and is seen by no one else;
 *   - a removed signer: the next publish is refused naming it, old batches stay and name it;
 *   - trust add of a CA as signer is refused naming the rule;
 *   - a revoked token and an expired token no longer authenticate and are listed so; token
 *     lists never carry a secret; another tenant's token and trust are "not found";
 *   - every change is in the affected tenant's audit chain, which verifies.
 * Usage: test_admin sqlite|postgres.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/x509.h"
#include "service/service.h"
#include "factory/factory.h"
#include "reelkit.h"
#include "test.h"
#include "storekit.h"
#include "lib/banned.h"

/* service_import of a manifest given as JSON (borrowed), its compact text as the body. */
static int
import_json(struct service *svc, const struct principal *p, const char *batch, const json_t *man,
    struct manifest_report *r, struct devid_error *e)
{
	char *text = json_dumps(man, JSON_COMPACT);
	int rc = service_import(svc, p, batch, (const uint8_t *)text, strlen(text), r, e);

	free(text);
	return rc;
}

static char tmp[PATH_MAX];

/* An API time: "YYYY-MM-DDTHH:MM:SSZ" that strptime reads back whole. */
static bool
is_rfc3339(const json_t *v)
{
	const char *s = json_string_value(v), *end;
	struct tm tm = {0};

	return s != NULL && strlen(s) == 20 &&
	    (end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm)) != NULL && *end == '\0';
}

static int
publish(struct service *svc, const struct principal *p, const char *batch,
    struct manifest_report *r, struct devid_error *e)
{
	json_t *body = json_pack("{s:o, s:o}", "descriptor",
	    reelkit_load_json(reelkit_path(batch, "batch.json")), "manifest",
	    reelkit_load_json(reelkit_path(batch, "manifest.json")));
	char *text = json_dumps(body, JSON_COMPACT);
	int rc = service_publish(svc, p, (const uint8_t *)text, strlen(text), r, e);

	free(text);
	json_decref(body);
	return rc;
}

static int
import(struct service *svc, const struct principal *p, const char *batch, const char *name,
    struct devid_error *e)
{
	json_t *man = reelkit_load_json(reelkit_path(batch, "manifest.json"));
	struct manifest_report r;
	int rc = import_json(svc, p, name, man, &r, e);

	manifest_report_release(&r);
	json_decref(man);
	return rc;
}

static int
claim(struct service *svc, const struct principal *p, const char *batch, struct devid_error *e)
{
	char *code = reelkit_read_text(reelkit_path(batch, "claim.txt"));
	struct batch_rec b;
	bool changed;
	int rc, retry_after;

	code[strcspn(code, "\n")] = '\0';
	rc = service_claim(svc, p, "127.0.0.1", (const uint8_t *)code, strlen(code), &b, &changed,
	    &retry_after, e);
	free(code);
	return rc;
}

/* A principal as service_authenticate makes it, for a token of a tenant. */
static int
login(struct service *svc, const char *token, struct principal *p)
{
	struct devid_error e;

	return service_authenticate(svc, token, strlen(token), p, &e);
}

/* The body of POST /api/v1/trust from a vendor directory's PEM files. */
static json_t *
trust_body(const char *vdir, const char *signer_file)
{
	char *root = reelkit_read_text(reelkit_path(vdir, "root.pem")),
	     *signer = reelkit_read_text(reelkit_path(vdir, signer_file));
	json_t *j = json_pack("{s:s, s:s}", "root", root, "signer", signer);

	free(root);
	free(signer);
	return j;
}

/* Whether the tenant's audit chain verifies and has a record of action. */
static bool
audited(struct store *s, const char *tenant, const char *action)
{
	struct db *db = store_acquire(s);
	struct audit_rec *a = NULL;
	struct db_rows *rows = NULL;
	struct devid_error e;
	struct tenant t;
	int64_t n = 0;
	size_t na = 0;
	bool found = false;

	if (store_tenant_get(db, tenant, &t, &e) == 0 && audit_verify(db, t.id, &n, &e) == 0 &&
	    store_audit_list(db, t.id, 0, 1000, &a, &na, &rows, &e) == 0)
		for (size_t i = 0; i < na && !found; i++)
			found = strcmp(a[i].action, action) == 0;
	free(a);
	db_rows_free(rows);
	store_release(s, db);
	return found;
}

static void
test_tokens(struct service *svc, struct store *s)
{
	char t_admin[TOKEN_TEXT_MAX], t_line[TOKEN_TEXT_MAX], t_exp[TOKEN_TEXT_MAX],
	    t_other[TOKEN_TEXT_MAX], *text;
	struct principal admin, other, line, p;
	struct devid_error e;
	json_t *j = NULL, *body;
	int64_t exp;

	devid_error_clear(&e);
	/* expiry parsing: lifetimes and RFC 3339 dates; nonsense and the past refused */
	CHECK(token_expiry_parse("90d", 1000, &exp, &e) == 0 && exp == 1000 + 90 * 86400, "90d: %s",
	    e.msg);
	CHECK(token_expiry_parse("12h", 1000, &exp, &e) == 0 && exp == 1000 + 12 * 3600, "12h");
	CHECK(token_expiry_parse("2030-01-01", 1000, &exp, &e) == 0 && exp == 1893456000,
	    "full-date: %lld %s", (long long)exp, e.msg);
	CHECK(token_expiry_parse("2030-01-01T01:00:00+01:00", 1000, &exp, &e) == 0 &&
		exp == 1893456000,
	    "date-time with offset: %lld %s", (long long)exp, e.msg);
	CHECK(token_expiry_parse("2030-02-30", 1000, &exp, &e) == DEVID_EINVAL, "no 30 February");
	CHECK(token_expiry_parse("2001-01-01T00:00:00Z", time(NULL), &exp, &e) == DEVID_EINVAL &&
		strstr(e.msg, "past") != NULL,
	    "a date in the past: %s", e.msg);
	CHECK(token_expiry_parse("0d", 1000, &exp, &e) == DEVID_EINVAL, "0d");
	CHECK(token_expiry_parse("90x", 1000, &exp, &e) == DEVID_EINVAL, "90x");
	CHECK(token_expiry_parse("99999999999d", 1000, &exp, &e) == DEVID_EINVAL, "too long");
	CHECK(!token_name_valid("123") && !token_name_valid("") && !token_name_valid("a b") &&
		token_name_valid("line-3.b_2"),
	    "token names");

	CHECK(service_token_add_admin(svc, "OEM1", ROLE_ADMIN, "boss", 0, t_admin, NULL, &e) == 0,
	    "token add: %s", e.msg);
	CHECK(service_token_add_admin(svc, "OEM1", ROLE_ADMIN, "boss", 0, t_line, NULL, &e) ==
		DEVID_ECONFLICT,
	    "a token name is unique in its tenant");
	CHECK(service_token_add_admin(svc, "OEM1", ROLE_VENDOR, "v", 0, t_line, NULL, &e) ==
		DEVID_EINVAL,
	    "an OEM has no vendor tokens");
	CHECK(service_token_add_admin(svc, "OEM2", ROLE_ADMIN, "boss", 0, t_other, NULL, &e) == 0,
	    "the same name in another tenant: %s", e.msg);
	CHECK(login(svc, t_admin, &admin) == 0 && login(svc, t_other, &other) == 0, "log in");
	CHECK(strncmp(admin.actor, "token:", 6) == 0 && strstr(admin.actor, ":boss") != NULL,
	    "actor %s", admin.actor);

	/* the API: an admin makes an operator token that expires */
	body = json_pack("{s:s, s:s, s:s}", "name", "line-1", "role", "operator", "expires", "1h");
	CHECK(service_token_post(svc, &admin, body, &j, &e) == 0 &&
		json_is_string(json_object_get(j, "token")) &&
		is_rfc3339(json_object_get(j, "expiresAt")),
	    "POST token: %s", e.msg);
	snprintf(t_line, sizeof(t_line), "%s", json_string_value(json_object_get(j, "token")));
	json_decref(j);
	json_decref(body);
	CHECK(login(svc, t_line, &line) == 0 && line.role == ROLE_OPERATOR, "operator logs in");
	body = json_pack("{s:s, s:s}", "name", "sneaky", "role", "admin");
	CHECK(service_token_post(svc, &line, body, &j, &e) == DEVID_EAUTH,
	    "an operator makes no tokens");
	json_decref(body);
	body = json_pack("{s:s, s:s}", "name", "x", "role", "vendor");
	CHECK(service_token_post(svc, &admin, body, &j, &e) == DEVID_EINVAL, "no vendor role");
	json_decref(body);

	/* the list shows names and times, never a secret or its hash */
	CHECK(service_tokens(svc, &admin, &j, &e) == 0 &&
		json_array_size(json_object_get(j, "tokens")) == 2,
	    "OEM1 lists its 2 tokens: %s", e.msg);
	text = json_dumps(j, JSON_COMPACT);
	CHECK(text != NULL && strstr(text, t_admin) == NULL && strstr(text, t_line) == NULL &&
		strstr(text, "sha256") == NULL && strstr(text, "\"token\"") == NULL,
	    "no secret in the list: %s", text != NULL ? text : "(none)");
	CHECK(text != NULL && strstr(text, t_other) == NULL && strstr(text, "lastUsedAt") != NULL,
	    "no other tenant's token");
	free(text);
	json_decref(j);
	/* authenticating recorded the last use */
	CHECK(storekit_count(s,
		  "SELECT COUNT(*) FROM tokens WHERE name = 'boss' AND last_used_at "
		  "IS NOT NULL") == 2,
	    "last use recorded");

	/* another tenant's token: not found, and nothing changes */
	{
		char id[24];
		struct token_info ti;
		struct db *db = store_acquire(s);

		store_token_find(db, line.tenant.id, line.token, NULL, &ti, &e);
		store_release(s, db);
		snprintf(id, sizeof(id), "%lld", (long long)line.token);
		CHECK(service_token_delete(svc, &other, id, &j, &e) == DEVID_ENOTFOUND,
		    "OEM2 cannot revoke OEM1's token");
		CHECK(login(svc, t_line, &p) == 0, "still valid after the refused revoke");
		CHECK(service_token_delete(svc, &line, id, &j, &e) == DEVID_EAUTH,
		    "an operator revokes nothing");
		CHECK(service_token_delete(svc, &admin, "abc", &j, &e) == DEVID_ENOTFOUND,
		    "a path that is no id");
		/* revoked: refused at once, listed as revoked */
		CHECK(service_token_delete(svc, &admin, id, &j, &e) == 0 &&
			strcmp(json_string_value(json_object_get(j, "state")), "revoked") == 0,
		    "revoke: %s", e.msg);
		json_decref(j);
		CHECK(login(svc, t_line, &p) == DEVID_EAUTH, "a revoked token is refused");
		CHECK(service_token_delete(svc, &admin, id, &j, &e) == DEVID_ECONFLICT,
		    "revoking twice is a conflict");
	}
	CHECK(service_tokens_admin(svc, "OEM1", &j, &e) == 0, "admin token list");
	text = json_dumps(j, JSON_COMPACT);
	CHECK(text != NULL && strstr(text, "\"state\":\"revoked\"") != NULL &&
		strstr(text, "\"revokedAt\":null") != NULL,
	    "one revoked, one not: %s", text != NULL ? text : "(none)");
	free(text);
	json_decref(j);

	/* expired: a token made with an expiry one second away stops working after it */
	CHECK(service_token_add_admin(
		  svc, "OEM1", ROLE_OPERATOR, "brief", time(NULL) + 1, t_exp, NULL, &e) == 0,
	    "token add with expiry: %s", e.msg);
	CHECK(login(svc, t_exp, &p) == 0, "valid before its expiry");
	{
		struct timespec ts = {.tv_sec = 2};

		nanosleep(&ts, NULL);
	}
	CHECK(login(svc, t_exp, &p) == DEVID_EAUTH, "an expired token is refused");
	CHECK(service_tokens_admin(svc, "OEM1", &j, &e) == 0, "list");
	text = json_dumps(j, JSON_COMPACT);
	CHECK(text != NULL && strstr(text, "\"name\":\"brief\"") != NULL &&
		strstr(text, "\"state\":\"expired\"") != NULL,
	    "listed as expired: %s", text != NULL ? text : "(none)");
	free(text);
	json_decref(j);
	CHECK(
	    service_token_revoke_admin(svc, "OEM1", "brief", &e) == 0, "revoke by name: %s", e.msg);
	CHECK(service_token_revoke_admin(svc, "OEM2", "brief", &e) == DEVID_ENOTFOUND,
	    "not another tenant's");
	CHECK(audited(s, "OEM1", "token.add") && audited(s, "OEM1", "token.revoke") &&
		audited(s, "OEM2", "token.add") && !audited(s, "OEM2", "token.revoke"),
	    "token changes are in the affected tenant's chain");
	{
		char sql[256];

		snprintf(sql, sizeof(sql),
		    "SELECT COUNT(*) FROM audit WHERE detail LIKE '%%%.20s%%' OR object LIKE "
		    "'%%%.20s%%'",
		    t_admin, t_admin);
		CHECK(storekit_count(s, sql) == 0, "no secret in the audit trail");
	}
}

int
main(int argc, char **argv)
{
	char url[PATH_MAX + 32], tok[TOKEN_TEXT_MAX], *root, *signer;
	struct service svc = {.verify_threads = 2};
	struct principal vendor, oem1, oem2;
	struct manifest_report r;
	struct devid_error e;
	struct store *s = NULL;
	json_t *j = NULL, *body;
	int64_t devices, trust_rows, acme_trust = 0;
	char *text;
	bool pg = argc > 1 && strcmp(argv[1], "postgres") == 0;

	devid_error_clear(&e);
	if (pg && getenv("DEVID_TEST_PG_URL") == NULL)
		test_skip("DEVID_TEST_PG_URL not set (run under scripts/with-postgres)");
	test_tmpdir(tmp, sizeof(tmp), "admin");
	reelkit_workdir(tmp);
	if (pg)
		snprintf(url, sizeof(url), "%s", getenv("DEVID_TEST_PG_URL"));
	else
		snprintf(url, sizeof(url), "sqlite:%s/devid.db", tmp);
	if (vendor_init(reelkit_path("v", ""), "ACME", &e) != 0 ||
	    vendor_init(reelkit_path("w", ""), "OUTSIDE", &e) != 0) {
		printf("init: %s\n", e.msg);
		return 1;
	}
	reelkit_mint("v", "B1", 3);
	reelkit_mint("v", "B2", 3);
	reelkit_mint("v", "B3", 2);
	reelkit_mint("w", "W1", 3);
	reelkit_mint("w", "W2", 2);
	CHECK(store_open(url, 2, &s, &e) == 0, "store: %s", e.msg);
	if (s == NULL)
		return test_done();
	svc.store = s;

	/* tenants: added with an audit record each, listed */
	CHECK(service_tenant_add(&svc, "ACME", TENANT_VENDOR, &e) == 0 &&
		service_tenant_add(&svc, "OEM1", TENANT_OEM, &e) == 0 &&
		service_tenant_add(&svc, "OEM2", TENANT_OEM, &e) == 0,
	    "tenants: %s", e.msg);
	CHECK(service_tenant_add(&svc, "OEM1", TENANT_OEM, &e) == DEVID_ECONFLICT,
	    "a tenant name is taken once");
	CHECK(service_tenant_add(&svc, "bad name", TENANT_OEM, &e) == DEVID_EINVAL, "bad name");
	CHECK(service_tenants(&svc, &j, &e) == 0 &&
		json_array_size(json_object_get(j, "tenants")) == 3,
	    "three tenants listed");
	json_decref(j);
	CHECK(audited(s, "ACME", "tenant.add") && audited(s, "OEM2", "tenant.add"),
	    "tenant.add audited in the new tenant's chain");

	test_tokens(&svc, s);

	root = reelkit_read_text(reelkit_path("v", "root.pem"));
	signer = reelkit_read_text(reelkit_path("v", "signer.pem"));
	/* trust add refuses a CA as manifest signer, naming the rule; nothing is stored */
	CHECK(service_trust_add_admin(&svc, "ACME", NULL, root, root, &j, &e) == DEVID_EINVAL &&
		strstr(e.msg, "4.2.1.9") != NULL && strstr(e.msg, "CA:TRUE") != NULL,
	    "a CA as signer refused: %s", e.msg);
	CHECK(storekit_count(s, "SELECT COUNT(*) FROM vendor_trust") == 0, "no trust stored");
	CHECK(service_trust_add_admin(&svc, "OEM1", NULL, root, signer, &j, &e) == DEVID_EINVAL,
	    "--vendor names a vendor tenant");
	CHECK(service_trust_add_admin(&svc, "ACME", NULL, root, signer, &j, &e) == 0,
	    "trust ACME's signer: %s", e.msg);
	acme_trust = json_integer_value(json_object_get(j, "id"));
	CHECK(json_is_null(json_object_get(j, "owner")) &&
		strstr(json_string_value(json_object_get(j, "signer")), "O=ACME") != NULL,
	    "trust as listed: vendor's own, subject named");
	json_decref(j);
	CHECK(audited(s, "ACME", "trust.add"), "trust.add in the vendor's chain");

	tok[0] = '\0';
	CHECK(service_token_add_admin(&svc, "ACME", ROLE_VENDOR, "pub", 0, tok, NULL, &e) == 0 &&
		login(&svc, tok, &vendor) == 0,
	    "vendor token: %s", e.msg);
	CHECK(service_token_add_admin(&svc, "OEM1", ROLE_ADMIN, "oem1-admin", 0, tok, NULL, &e) ==
		    0 &&
		login(&svc, tok, &oem1) == 0,
	    "OEM1 admin");
	CHECK(service_token_add_admin(&svc, "OEM2", ROLE_ADMIN, "oem2-admin", 0, tok, NULL, &e) ==
		    0 &&
		login(&svc, tok, &oem2) == 0,
	    "OEM2 admin");

	/*
	 * import before publish: OEM1 holds ACME's signed manifest of B1 and imports it before
	 * ACME publishes. Refused, nothing stored; adding ACME's signer as its own import trust is
	 * refused too.
	 */
	devices = storekit_count(s, "SELECT COUNT(*) FROM devices");
	CHECK(import(&svc, &oem1, "B1", "B1", &e) == DEVID_EAUTH &&
		strstr(e.msg, "devid vendor ACME") != NULL && strstr(e.msg, "claim code") != NULL,
	    "import of a devid vendor's manifest refused: %s", e.msg);
	body = trust_body("v", "signer.pem");
	trust_rows = storekit_count(s, "SELECT COUNT(*) FROM vendor_trust");
	CHECK(service_trust_post(&svc, &oem1, body, &j, &e) == DEVID_EAUTH &&
		strstr(e.msg, "devid vendor ACME") != NULL,
	    "a devid vendor's signer as import trust refused: %s", e.msg);
	json_decref(body);
	CHECK(storekit_count(s, "SELECT COUNT(*) FROM devices") == devices &&
		storekit_count(s, "SELECT COUNT(*) FROM batches") == 0 &&
		storekit_count(s, "SELECT COUNT(*) FROM vendor_trust") == trust_rows,
	    "nothing stored by the refused import and trust");
	/* the vendor publishes later; the rightful claimer binds it with the code */
	CHECK(publish(&svc, &vendor, "B1", &r, &e) == 0, "ACME publishes B1 after: %s %s", e.msg,
	    r.batch_error);
	manifest_report_release(&r);
	CHECK(claim(&svc, &oem2, "B1", &e) == 0, "OEM2 claims B1 with the code: %s", e.msg);
	CHECK(service_batch_get(&svc, &oem2, "ACME", "B1", &j, &e) == 0 &&
		json_integer_value(json_object_get(json_object_get(j, "signer"), "id")) ==
		    acme_trust,
	    "B1 is OEM2's and names the signer that admitted it: %s", e.msg);
	json_decref(j);
	CHECK(service_batch_get(&svc, &oem1, "ACME", "B1", &j, &e) == DEVID_ENOTFOUND,
	    "OEM1 has nothing of B1");
	CHECK(import(&svc, &oem1, "B1", "B1", &e) == DEVID_EAUTH, "nor by importing it now");

	/* a vendor outside devid: OEM1 imports under its own trust, in its own namespace */
	CHECK(import(&svc, &oem1, "W1", "W1", &e) == DEVID_ECRYPTO &&
		strstr(e.msg, "not trusted") != NULL,
	    "no import without the tenant's own trust: %s", e.msg);
	body = trust_body("w", "root.pem");
	CHECK(service_trust_post(&svc, &oem1, body, &j, &e) == DEVID_EINVAL &&
		strstr(e.msg, "4.2.1.9") != NULL,
	    "a CA as import signer refused: %s", e.msg);
	json_decref(body);
	body = trust_body("w", "signer.pem");
	CHECK(service_trust_post(&svc, &oem2, body, &j, &e) == 0, "OEM2 trusts OUTSIDE too: %s",
	    e.msg);
	json_decref(j);
	CHECK(service_trust_post(&svc, &oem1, body, &j, &e) == 0 &&
		strcmp(json_string_value(json_object_get(j, "owner")), "OEM1") == 0,
	    "OEM1 trusts OUTSIDE for its imports: %s", e.msg);
	{
		int64_t tid = json_integer_value(json_object_get(j, "id"));
		char id[24];

		json_decref(j);
		CHECK(service_trust_post(&svc, &oem1, body, &j, &e) == DEVID_ECONFLICT,
		    "the same signer twice");
		snprintf(id, sizeof(id), "%lld", (long long)tid);
		CHECK(service_trust_delete(&svc, &oem2, id, &j, &e) == DEVID_ENOTFOUND,
		    "OEM2 cannot remove OEM1's trust");
		CHECK(service_trust_get(&svc, &oem2, &j, &e) == 0 &&
			json_array_size(json_object_get(j, "trust")) == 1,
		    "OEM2 sees only its own trust");
		json_decref(j);
	}
	json_decref(body);
	CHECK(import(&svc, &oem1, "W1", "W1", &e) == 0, "import W1 under OEM1's trust: %s", e.msg);
	CHECK(service_batch_get(&svc, &oem1, "OEM1", "W1", &j, &e) == 0 &&
		strcmp(json_string_value(json_object_get(j, "source")), "import") == 0 &&
		strcmp(json_string_value(json_object_get(json_object_get(j, "signer"), "owner")),
		    "OEM1") == 0,
	    "W1 is OEM1/W1, imported, admitted by OEM1's trust: %s", e.msg);
	json_decref(j);
	CHECK(service_batch_get(&svc, &oem2, "OEM1", "W1", &j, &e) == DEVID_ENOTFOUND,
	    "OEM2 does not see OEM1's import");
	CHECK(import(&svc, &oem1, "W1", "W1", &e) == DEVID_ECONFLICT, "the same import again");
	CHECK(audited(s, "OEM1", "batch.import") && audited(s, "OEM1", "trust.add"),
	    "import and trust in OEM1's chain");

	/* OUTSIDE comes to devid: from then on its chips go by claim code, imports are refused */
	{
		char *wr = reelkit_read_text(reelkit_path("w", "root.pem")),
		     *ws = reelkit_read_text(reelkit_path("w", "signer.pem"));

		CHECK(service_tenant_add(&svc, "OUTSIDE", TENANT_VENDOR, &e) == 0 &&
			service_trust_add_admin(&svc, "OUTSIDE", NULL, wr, ws, NULL, &e) == 0,
		    "OUTSIDE joins devid: %s", e.msg);
		free(wr);
		free(ws);
	}
	devices = storekit_count(s, "SELECT COUNT(*) FROM devices");
	CHECK(import(&svc, &oem2, "W2", "W2", &e) == DEVID_EAUTH &&
		strstr(e.msg, "devid vendor OUTSIDE") != NULL,
	    "an import trust of a vendor now in devid admits nothing: %s", e.msg);
	CHECK(storekit_count(s, "SELECT COUNT(*) FROM devices") == devices, "nothing stored");

	/* a removed signer: the next publish is refused naming it; B1 stays and names it */
	CHECK(service_trust_remove_admin(&svc, acme_trust, &j, &e) == 0 &&
		is_rfc3339(json_object_get(j, "removedAt")),
	    "trust remove: %s", e.msg);
	json_decref(j);
	CHECK(service_trust_remove_admin(&svc, acme_trust, &j, &e) == DEVID_ECONFLICT,
	    "removing twice");
	CHECK(publish(&svc, &vendor, "B2", &r, &e) == DEVID_ECRYPTO &&
		strstr(e.msg, "was removed from trust") != NULL && strstr(e.msg, "O=ACME") != NULL,
	    "a removed signer's manifest refused, naming it: %s", e.msg);
	manifest_report_release(&r);
	CHECK(storekit_count(s,
		  "SELECT COUNT(*) FROM batches b JOIN tenants t ON t.id = b.vendor_id "
		  "WHERE t.name = 'ACME' AND b.name = 'B2'") == 0,
	    "no trace of B2");
	CHECK(service_batch_get(&svc, &oem2, "ACME", "B1", &j, &e) == 0 &&
		is_rfc3339(json_object_get(json_object_get(j, "signer"), "removedAt")),
	    "B1 stays and names its (now removed) signer: %s", e.msg);
	json_decref(j);
	CHECK(service_batches(&svc, &oem2, 0, 0, &j, &e) == 0, "batch list");
	text = json_dumps(j, JSON_COMPACT);
	CHECK(text != NULL && strstr(text, "\"signer\":{") != NULL, "the list names signers: %s",
	    text != NULL ? text : "(none)");
	free(text);
	json_decref(j);
	CHECK(audited(s, "ACME", "trust.remove"), "trust.remove in ACME's chain");
	/* undone: trusting the signer again admits B2 */
	CHECK(service_trust_add_admin(&svc, "ACME", NULL, root, signer, &j, &e) == 0 &&
		json_integer_value(json_object_get(j, "id")) == acme_trust &&
		json_is_null(json_object_get(j, "removedAt")),
	    "re-adding the signer puts it in force again: %s", e.msg);
	json_decref(j);
	CHECK(publish(&svc, &vendor, "B2", &r, &e) == 0, "B2 after re-adding: %s", e.msg);
	manifest_report_release(&r);
	CHECK(service_trust_list_admin(&svc, NULL, NULL, &j, &e) == 0 &&
		json_array_size(json_object_get(j, "trust")) == 4,
	    "four trust records in all");
	json_decref(j);
	CHECK(service_trust_list_admin(&svc, NULL, "OEM1", &j, &e) == 0 &&
		json_array_size(json_object_get(j, "trust")) == 1,
	    "one of OEM1");
	json_decref(j);

	free(root);
	free(signer);
	store_close(s);
	test_rmdir(tmp);
	return test_done();
}
