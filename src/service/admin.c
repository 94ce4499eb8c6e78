/* SPDX-License-Identifier: Apache-2.0 */
/*
 * admin.c - tenants, tokens and trust as an administrator keeps them: added, listed and
 * undone, each change audited in the affected tenant's chain in its own transaction.
 *
 * Two callers: `devid admin` on the database (the _admin functions, any tenant by name,
 * actor AUDIT_ACTOR_ADMIN_CLI) and a tenant admin's token over the API (its own tenant only;
 * another tenant's token or trust is "not found").
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "lib/base64.h"
#include "lib/claim.h"
#include "lib/json.h"
#include "lib/x509.h"
#include "service/internal.h"
#include "lib/banned.h"

/* A token's last use is recorded at most this often, so most requests do not write. */
#define TOKEN_TOUCH_SECS 60
/* The longest lifetime --expires takes: 100 years. */
#define TOKEN_MAX_LIFETIME ((int64_t)100 * 366 * 86400)

/* --- parsing -------------------------------------------------------------------------- */

bool
token_name_valid(const char *s)
{
	size_t n = strlen(s);
	bool digits = true;

	if (n == 0 || n > MAX_NAME_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!isalnum(c) && c != '.' && c != '_' && c != '-')
			return false;
		digits = digits && isdigit(c);
	}
	return !digits;
}

/* n decimal digits at p into *v; false if any is not a digit. */
static bool
digits(const char *p, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)p[i]))
			return false;
		*v = *v * 10 + (p[i] - '0');
	}
	return true;
}

/* RFC 3339 full-date ("2027-01-31", midnight UTC) or date-time; -1 if malformed. */
static int64_t
rfc3339_parse(const char *s)
{
	struct tm tm;
	int y, mo, d, h = 0, mi = 0, sec = 0, oh, om, sign;
	const char *p = s + 10;
	int64_t t;

	memset(&tm, 0, sizeof(tm));
	if (strlen(s) < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
	    s[7] != '-' || !digits(s + 8, 2, &d))
		return -1;
	if (*p != '\0') {
		if ((*p != 'T' && *p != 't') || strlen(p) < 10 || !digits(p + 1, 2, &h) ||
		    p[3] != ':' || !digits(p + 4, 2, &mi) || p[6] != ':' || !digits(p + 7, 2, &sec))
			return -1;
		p += 9;
		if (*p == '.') /* fractions of a second are dropped */
			for (p++; isdigit((unsigned char)*p); p++)
				;
		if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
			oh = om = 0;
			sign = 1;
		} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && digits(p + 1, 2, &oh) &&
		    p[3] == ':' && digits(p + 4, 2, &om) && oh < 24 && om < 60) {
			sign = *p == '+' ? 1 : -1;
		} else {
			return -1;
		}
	} else {
		oh = om = 0;
		sign = 1;
	}
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 || y < 1970)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = (int64_t)timegm(&tm);
	/* timegm normalizes 2027-02-31 to March: refuse a date that does not exist */
	if (tm.tm_mday != d || tm.tm_mon != mo - 1)
		return -1;
	return t - sign * ((int64_t)oh * 3600 + (int64_t)om * 60);
}

int
token_expiry_parse(const char *s, int64_t now, int64_t *out, struct devid_error *e)
{
	static const struct {
		char unit;
		int64_t secs;
	} units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
	size_t n = strlen(s);
	int64_t v = 0, t = -1;

	*out = 0;
	if (n >= 2 && n <= 12 && isdigit((unsigned char)s[0])) {
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && t < 0; i++) {
			if (s[n - 1] != units[i].unit)
				continue;
			v = 0;
			for (size_t k = 0; k + 1 < n; k++) {
				if (!isdigit((unsigned char)s[k]))
					goto date;
				v = v * 10 + (s[k] - '0');
			}
			if (v <= 0 || v > TOKEN_MAX_LIFETIME / units[i].secs)
				return devid_error_set(e, DEVID_EINVAL,
				    "expires: %s is not a lifetime between 1%c and 100 years", s,
				    units[i].unit);
			t = now + v * units[i].secs;
		}
		if (t >= 0) {
			*out = t;
			return 0;
		}
	}
date:
	if ((t = rfc3339_parse(s)) < 0)
		return devid_error_set(e, DEVID_EINVAL,
		    "expires: \"%.40s\" is neither a lifetime (90d, 12h, 30m, 45s) nor an RFC 3339 "
		    "date (2027-01-31 or 2027-01-31T12:00:00Z)",
		    s);
	if (t <= now)
		return devid_error_set(e, DEVID_EINVAL, "expires: %s is in the past", s);
	if (t - now > TOKEN_MAX_LIFETIME)
		return devid_error_set(e, DEVID_EINVAL, "expires: %s is over 100 years away", s);
	*out = t;
	return 0;
}

/* --- JSON as listed --------------------------------------------------------------------- */

static json_t *
token_json(const struct token_info *t, int64_t now)
{
	const char *state = t->revoked_at != 0           ? "revoked"
	    : t->expires_at != 0 && t->expires_at <= now ? "expired"
							 : "active";

	return json_pack("{s:I, s:s, s:s, s:o, s:o, s:o, s:o, s:s}", "id", (json_int_t)t->id,
	    "name", t->name, "role", role_name(t->role), "createdAt", json_time(t->created_at),
	    "expiresAt", json_time_or_null(t->expires_at), "lastUsedAt",
	    json_time_or_null(t->last_used_at), "revokedAt", json_time_or_null(t->revoked_at),
	    "state", state);
}

void
service_signer_subject(const char *pem, char *out, size_t len)
{
	STACK_OF(X509) *sk = x509_load_pem_mem(pem, strlen(pem), "signer", NULL);
	BIO *bio = BIO_new(BIO_s_mem());
	char *p;
	long n;

	out[0] = '\0';
	if (sk != NULL && bio != NULL &&
	    X509_NAME_print_ex(
		bio, X509_get_subject_name(sk_X509_value(sk, 0)), 0, XN_FLAG_RFC2253) >= 0 &&
	    (n = BIO_get_mem_data(bio, &p)) >= 0)
		snprintf(out, len, "%.*s", (int)n, p);
	BIO_free(bio);
	sk_X509_pop_free(sk, X509_free);
}

/* owner_name: the OEM that owns an import trust ("" for a devid vendor's own). */
static json_t *
trust_json(const struct trust_rec *t)
{
	char subject[512];

	service_signer_subject(t->signer_pem, subject, sizeof(subject));
	/* an OEM's import trust is its own namespace: vendor and owner are the same tenant */
	return json_pack("{s:I, s:s, s:s?, s:s, s:s, s:o, s:o}", "id", (json_int_t)t->id, "vendor",
	    t->vendor, "owner", t->owner_id != 0 ? t->vendor : NULL, "signer", subject, "sha256",
	    t->signer_sha256, "addedAt", json_time(t->created_at), "removedAt",
	    json_time_or_null(t->removed_at));
}

json_t *
service_batch_signer_json(struct db *db, int64_t batch_id)
{
	struct trust_rec *t = NULL;
	json_t *j;

	if (store_batch_trust(db, batch_id, &t, NULL) != 0)
		return json_null();
	j = trust_json(t);
	store_trust_list_free(t, 1);
	return j != NULL ? j : json_null();
}

/* --- who may do what ---------------------------------------------------------------------- */

static int
need_admin(const struct principal *p, struct devid_error *e)
{
	if (p->role != ROLE_ADMIN)
		return devid_error_set(
		    e, DEVID_EAUTH, "only an admin token manages its tenant's tokens and trust");
	return 0;
}

/* A path's id: a positive decimal number; anything else is not found. */
static int64_t
id_parse(const char *s)
{
	int64_t v = 0;

	if (s == NULL || *s == '\0' || strlen(s) > 18)
		return -1;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v > 0 ? v : -1;
}

/* --- tenants ------------------------------------------------------------------------------ */

int
service_tenant_add(
    struct service *svc, const char *name, enum tenant_kind kind, struct devid_error *e)
{
	struct db *db = store_acquire(svc->store);
	json_t *detail = json_pack("{s:s}", "kind", tenant_kind_name(kind));
	int64_t id = 0;
	int rc;

	if (!claim_name_valid(name, strlen(name))) {
		rc = devid_error_set(e, DEVID_EINVAL, "tenant names match [A-Z0-9.-]{1,64}");
		goto out;
	}
	if ((rc = db_begin(db, e)) != 0)
		goto out;
	if ((rc = store_tenant_add(db, name, kind, &id, e)) != 0 ||
	    (rc = audit_append(db, id, AUDIT_ACTOR_ADMIN_CLI, "tenant.add", name, detail, e)) !=
		0) {
		db_rollback(db);
		goto out;
	}
	rc = db_commit(db, e);
out:
	json_decref(detail);
	store_release(svc->store, db);
	return rc;
}

int
service_tenants(struct service *svc, json_t **out, struct devid_error *e)
{
	struct db *db = store_acquire(svc->store);
	struct tenant_info *t = NULL;
	json_t *items;
	size_t n = 0;
	int rc;

	*out = NULL;
	rc = store_tenant_list(db, &t, &n, e);
	store_release(svc->store, db);
	if (rc != 0)
		return rc;
	items = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items,
		    json_pack("{s:s, s:s, s:o}", "name", t[i].t.name, "kind",
			tenant_kind_name(t[i].t.kind), "createdAt", json_time(t[i].created_at)));
	free(t);
	if ((*out = json_pack("{s:o}", "tenants", items)) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "out of memory");
	return 0;
}

/* --- tokens ------------------------------------------------------------------------------- */

/* Records a token's use, at most once a TOKEN_TOUCH_SECS; a failure to record is not the
 * request's failure. */
void
service_token_touch(struct db *db, int64_t id, int64_t last_used_at, int64_t now)
{
	if (now - last_used_at >= TOKEN_TOUCH_SECS)
		(void)store_token_touch(db, id, now, TOKEN_TOUCH_SECS, NULL);
}

/*
 * Makes a token for tenant t, stored with its audit record in one transaction; the secret
 * goes to token only.
 */
static int
token_create(struct db *db, const struct tenant *t, const char *actor, enum role role,
    const char *name, int64_t expires_at, char token[TOKEN_TEXT_MAX], json_t **info,
    struct devid_error *e)
{
	uint8_t raw[32], md[SHA256_DIGEST_LENGTH];
	char hex[2 * SHA256_DIGEST_LENGTH + 1], *text = NULL;
	struct token_info ti;
	json_t *detail = NULL;
	int64_t id = 0;
	int rc = DEVID_EINVAL;

	token[0] = '\0';
	if (info != NULL)
		*info = NULL;
	if ((role == ROLE_VENDOR) != (t->kind == TENANT_VENDOR))
		return devid_error_set(e, DEVID_EINVAL, "a %s tenant cannot have a %s token",
		    tenant_kind_name(t->kind), role_name(role));
	if (name != NULL && !token_name_valid(name))
		return devid_error_set(e, DEVID_EINVAL,
		    "token names match [A-Za-z0-9._-]{1,64} and are not all digits");
	if (RAND_bytes(raw, sizeof(raw)) != 1 || (text = b64url_encode(raw, sizeof(raw))) == NULL) {
		rc = devid_error_set(e, DEVID_ECRYPTO, "no randomness for a token");
		goto out;
	}
	SHA256((const uint8_t *)text, strlen(text), md);
	hex_encode(md, sizeof(md), hex);
	if ((rc = db_begin(db, e)) != 0)
		goto out;
	if ((rc = store_token_add(db, t->id, role, hex, name, expires_at, &id, e)) != 0 ||
	    (rc = store_token_find(db, t->id, id, NULL, &ti, e)) != 0)
		goto rollback;
	/* the record names the token; neither its secret nor its hash is in it */
	if ((detail = json_pack("{s:I, s:s, s:o}", "id", (json_int_t)id, "role", role_name(role),
		 "expiresAt", json_time_or_null(expires_at))) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto rollback;
	}
	if ((rc = audit_append(db, t->id, actor, "token.add", ti.name, detail, e)) != 0)
		goto rollback;
	if ((rc = db_commit(db, e)) != 0)
		goto out;
	snprintf(token, TOKEN_TEXT_MAX, "%s", text);
	if (info != NULL)
		*info = token_json(&ti, time(NULL));
	goto out;
rollback:
	db_rollback(db);
out:
	OPENSSL_cleanse(raw, sizeof(raw));
	if (text != NULL)
		OPENSSL_cleanse(text, strlen(text));
	free(text);
	json_decref(detail);
	return rc;
}

static int
tokens_json(struct db *db, const struct tenant *t, json_t **out, struct devid_error *e)
{
	struct token_info *ti = NULL;
	int64_t now = time(NULL);
	json_t *items;
	size_t n = 0;
	int rc;

	if ((rc = store_token_list(db, t->id, &ti, &n, e)) != 0)
		return rc;
	items = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items, token_json(&ti[i], now));
	free(ti);
	if ((*out = json_pack("{s:s, s:o}", "tenant", t->name, "tokens", items)) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "out of memory");
	return 0;
}

/* Revokes token `id` of tenant t with its audit record; *info (may be NULL) as listed. */
static int
token_revoke(struct db *db, const struct tenant *t, const char *actor, int64_t id, const char *name,
    json_t **info, struct devid_error *e)
{
	struct token_info ti;
	json_t *detail = NULL;
	int64_t now = time(NULL);
	int rc;

	if ((rc = db_begin(db, e)) != 0)
		return rc;
	if ((rc = store_token_find(db, t->id, id, name, &ti, e)) != 0)
		goto rollback;
	if (ti.revoked_at != 0) {
		rc = devid_error_set(e, DEVID_ECONFLICT, "token %s is revoked already", ti.name);
		goto rollback;
	}
	if ((detail = json_pack(
		 "{s:I, s:s}", "id", (json_int_t)ti.id, "role", role_name(ti.role))) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto rollback;
	}
	if ((rc = store_token_revoke(db, t->id, ti.id, now, e)) != 0 ||
	    (rc = audit_append(db, t->id, actor, "token.revoke", ti.name, detail, e)) != 0)
		goto rollback;
	json_decref(detail);
	if ((rc = db_commit(db, e)) == 0 && info != NULL) {
		ti.revoked_at = now;
		*info = token_json(&ti, now);
	}
	return rc;
rollback:
	json_decref(detail);
	db_rollback(db);
	return rc;
}

int
service_token_add_admin(struct service *svc, const char *tenant, enum role role, const char *name,
    int64_t expires_at, char token[TOKEN_TEXT_MAX], json_t **info, struct devid_error *e)
{
	struct db *db = store_acquire(svc->store);
	struct tenant t;
	int rc;

	token[0] = '\0';
	if ((rc = store_tenant_get(db, tenant, &t, e)) == 0)
		rc = token_create(
		    db, &t, AUDIT_ACTOR_ADMIN_CLI, role, name, expires_at, token, info, e);
	store_release(svc->store, db);
	return rc;
}

int
service_tokens_admin(struct service *svc, const char *tenant, json_t **out, struct devid_error *e)
{
	struct db *db = store_acquire(svc->store);
	struct tenant t;
	int rc;

	*out = NULL;
	if ((rc = store_tenant_get(db, tenant, &t, e)) == 0)
		rc = tokens_json(db, &t, out, e);
	store_release(svc->store, db);
	return rc;
}

int
service_token_revoke_admin(
    struct service *svc, const char *tenant, const char *ref, struct devid_error *e)
{
	struct db *db = store_acquire(svc->store);
	int64_t id = id_parse(ref);
	struct tenant t;
	int rc;

	if ((rc = store_tenant_get(db, tenant, &t, e)) == 0)
		rc = token_revoke(db, &t, AUDIT_ACTOR_ADMIN_CLI, id, ref, NULL, e);
	store_release(svc->store, db);
	return rc;
}

int
service_token_post(struct service *svc, const struct principal *p, const json_t *body, json_t **out,
    struct devid_error *e)
{
	const char *name, *rname, *expires;
	char token[TOKEN_TEXT_MAX];
	int64_t expires_at = 0;
	enum role role;
	struct db *db;
	int rc;

	*out = NULL;
	if ((rc = need_admin(p, e)) != 0)
		return rc;
	if (!json_is_object(body) ||
	    (name = json_string_value(json_object_get(body, "name"))) == NULL ||
	    (rname = json_string_value(json_object_get(body, "role"))) == NULL)
		return devid_error_set(e, DEVID_EINVAL,
		    "body: {\"name\":…, \"role\":\"admin\"|\"operator\", \"expires\"?: \"90d\"}");
	if ((rc = json_only_keys(
		 body, (const char *const[]){"name", "role", "expires", NULL}, "token", e)) != 0)
		return rc;
	if (role_parse(rname, &role) != 0 || role == ROLE_VENDOR)
		return devid_error_set(e, DEVID_EINVAL, "role: admin or operator");
	if (json_object_get(body, "expires") != NULL &&
	    !json_is_null(json_object_get(body, "expires"))) {
		if ((expires = json_string_value(json_object_get(body, "expires"))) == NULL)
			return devid_error_set(
			    e, DEVID_EINVAL, "expires: a string such as \"90d\"");
		if ((rc = token_expiry_parse(expires, time(NULL), &expires_at, e)) != 0)
			return rc;
	}
	db = store_acquire(svc->store);
	rc = token_create(db, &p->tenant, p->actor, role, name, expires_at, token, out, e);
	store_release(svc->store, db);
	if (rc == 0 && json_object_set_new(*out, "token", json_string(token)) != 0)
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
	OPENSSL_cleanse(token, sizeof(token));
	return rc;
}

int
service_tokens(struct service *svc, const struct principal *p, json_t **out, struct devid_error *e)
{
	struct db *db;
	int rc;

	*out = NULL;
	if ((rc = need_admin(p, e)) != 0)
		return rc;
	db = store_acquire(svc->store);
	rc = tokens_json(db, &p->tenant, out, e);
	store_release(svc->store, db);
	return rc;
}

int
service_token_delete(struct service *svc, const struct principal *p, const char *id, json_t **out,
    struct devid_error *e)
{
	int64_t n = id_parse(id);
	struct db *db;
	int rc;

	*out = NULL;
	if ((rc = need_admin(p, e)) != 0)
		return rc;
	if (n <= 0)
		return devid_error_set(e, DEVID_ENOTFOUND, "no token %s", id != NULL ? id : "");
	db = store_acquire(svc->store);
	rc = token_revoke(db, &p->tenant, p->actor, n, NULL, out, e);
	store_release(svc->store, db);
	return rc;
}

/* --- trust -------------------------------------------------------------------------------- */

/*
 * The rules a manifest signer's certificate must meet beyond vendor_trust_new's (P-256,
 * chains to the root): an end entity (RFC 5280 4.2.1.9) whose keyUsage allows signatures
 * (RFC 5280 4.2.1.3). A CA could mint signers of its own; a certificate without
 * digitalSignature was never meant to sign manifests.
 */
static int
signer_rules_check(X509 *x, struct devid_error *e)
{
	BASIC_CONSTRAINTS *bc;
	ASN1_BIT_STRING *ku;
	int crit = -1;
	bool ca, ds;

	bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
	if (bc == NULL && crit != -1)
		return devid_error_set(e, DEVID_EINVAL,
		    "manifest signer: RFC 5280 4.2.1.9: malformed basicConstraints");
	ca = bc != NULL && bc->ca;
	BASIC_CONSTRAINTS_free(bc);
	if (ca)
		return devid_error_set(e, DEVID_EINVAL,
		    "manifest signer: RFC 5280 4.2.1.9: basicConstraints CA:TRUE; a manifest "
		    "signer "
		    "must be an end entity, not a CA");
	crit = -1;
	ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
	if (ku == NULL)
		return devid_error_set(e, DEVID_EINVAL,
		    "manifest signer: RFC 5280 4.2.1.3: keyUsage %s; a manifest signer needs "
		    "digitalSignature",
		    crit == -1 ? "absent" : "malformed");
	ds = ASN1_BIT_STRING_get_bit(ku, 0) == 1;
	ASN1_BIT_STRING_free(ku);
	if (!ds)
		return devid_error_set(e, DEVID_EINVAL,
		    "manifest signer: RFC 5280 4.2.1.3: keyUsage lacks digitalSignature");
	return 0;
}

int
service_vendor_claims(struct db *db, const uint8_t signer_x5t[32], STACK_OF(X509) *roots,
    char vendor[MAX_NAME_LEN + 1], struct devid_error *e)
{
	struct trust_rec *tr = NULL;
	char hex[65];
	size_t n = 0;
	int rc, found = 0;

	vendor[0] = '\0';
	hex_encode(signer_x5t, 32, hex);
	if ((rc = store_trust_list(db, 0, &tr, &n, e)) != 0)
		return rc;
	/* removed signers count too: a vendor's retired signer is still its own */
	for (size_t i = 0; i < n && !found; i++) {
		STACK_OF(X509) *vr;

		if (tr[i].owner_id != 0)
			continue;
		found = strcmp(tr[i].signer_sha256, hex) == 0;
		if (found || roots == NULL)
			goto next;
		if ((vr = x509_load_pem_mem(
			 tr[i].root_pem, strlen(tr[i].root_pem), "root", NULL)) == NULL)
			goto next;
		for (int a = 0; a < sk_X509_num(vr) && !found; a++)
			for (int b = 0; b < sk_X509_num(roots) && !found; b++)
				found =
				    X509_cmp(sk_X509_value(vr, a), sk_X509_value(roots, b)) == 0;
		sk_X509_pop_free(vr, X509_free);
next:
		if (found)
			snprintf(vendor, MAX_NAME_LEN + 1, "%s", tr[i].vendor);
	}
	store_trust_list_free(tr, n);
	return found;
}

/*
 * Trusts a signer for tenant t's namespace (t a vendor: its own trust; t an OEM: its import
 * trust), with its audit record, in one transaction.
 */
static int
trust_add(struct db *db, const struct tenant *t, const char *actor, const char *root_pem,
    const char *signer_pem, json_t **out, struct devid_error *e)
{
	STACK_OF(X509) *roots = NULL, *signers = NULL;
	struct vendor_trust *vt = NULL;
	struct trust_rec *rec = NULL;
	char hex[65], vendor[MAX_NAME_LEN + 1], subject[512];
	uint8_t md[32];
	json_t *detail = NULL;
	bool readded = false;
	int64_t id = 0;
	int rc = DEVID_EINVAL;

	if (out != NULL)
		*out = NULL;
	if ((roots = x509_load_pem_mem(root_pem, strlen(root_pem), "root", e)) == NULL ||
	    (signers = x509_load_pem_mem(signer_pem, strlen(signer_pem), "signer", e)) == NULL)
		goto out;
	if (sk_X509_num(signers) != 1) {
		devid_error_set(e, DEVID_EINVAL, "signer: give exactly one certificate (%d given)",
		    sk_X509_num(signers));
		goto out;
	}
	/* the rules first, then the checks ingest makes: P-256, chains to the root */
	if ((rc = signer_rules_check(sk_X509_value(signers, 0), e)) != 0)
		goto out;
	if ((vt = vendor_trust_new(roots, signers, e)) == NULL) {
		rc = DEVID_EINVAL;
		goto out;
	}
	if (x509_sha256(sk_X509_value(signers, 0), md) != 0) {
		rc = devid_error_set(e, DEVID_ECRYPTO, "signer: cannot hash");
		goto out;
	}
	hex_encode(md, sizeof(md), hex);
	if (t->kind == TENANT_OEM) {
		/* ownership needs the vendor's word: a devid vendor's chips go by claim code */
		if ((rc = service_vendor_claims(db, md, roots, vendor, e)) < 0)
			goto out;
		if (rc > 0) {
			rc = devid_error_set(e, DEVID_EAUTH,
			    "this signer or root is devid vendor %s's: its chips are bound only by "
			    "the batch's claim code (or a transfer code), not by import",
			    vendor);
			goto out;
		}
	}
	if ((rc = db_begin(db, e)) != 0)
		goto out;
	if ((rc = store_trust_put(db, t->id, t->kind == TENANT_OEM ? t->id : 0, root_pem,
		 signer_pem, hex, &id, &readded, e)) != 0 ||
	    (rc = store_trust_get(db, id, &rec, e)) != 0)
		goto rollback;
	service_signer_subject(signer_pem, subject, sizeof(subject));
	if ((detail = json_pack("{s:I, s:s, s:s, s:b}", "id", (json_int_t)id, "signer", subject,
		 "sha256", hex, "readded", readded)) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto rollback;
	}
	if ((rc = audit_append(db, t->id, actor, "trust.add", hex, detail, e)) != 0)
		goto rollback;
	if ((rc = db_commit(db, e)) == 0 && out != NULL)
		*out = trust_json(rec);
	goto out;
rollback:
	db_rollback(db);
out:
	json_decref(detail);
	store_trust_list_free(rec, rec != NULL ? 1 : 0);
	vendor_trust_free(vt);
	sk_X509_pop_free(roots, X509_free);
	sk_X509_pop_free(signers, X509_free);
	return rc;
}

/* {"trust":[…]} of one namespace (tenant_id) or all (0). */
static int
trust_list_json(struct db *db, int64_t tenant_id, json_t **out, struct devid_error *e)
{
	struct trust_rec *tr = NULL;
	json_t *items;
	size_t n = 0;
	int rc;

	if ((rc = store_trust_list(db, tenant_id, &tr, &n, e)) != 0)
		return rc;
	items = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(items, trust_json(&tr[i]));
	store_trust_list_free(tr, n);
	if ((*out = json_pack("{s:o}", "trust", items)) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "out of memory");
	return 0;
}

/* Retires trust `id`, which must be tenant_id's (0: anyone's), with its audit record. */
static int
trust_remove(struct db *db, int64_t tenant_id, const char *actor, int64_t id, json_t **out,
    struct devid_error *e)
{
	struct trust_rec *rec = NULL;
	json_t *detail = NULL;
	int64_t now = time(NULL);
	int rc;

	if ((rc = db_begin(db, e)) != 0)
		return rc;
	if ((rc = store_trust_get(db, id, &rec, e)) != 0)
		goto rollback;
	if (tenant_id != 0 && rec->vendor_id != tenant_id) {
		rc = devid_error_set(e, DEVID_ENOTFOUND, "no trust %lld", (long long)id);
		goto rollback;
	}
	if (rec->removed_at != 0) {
		rc = devid_error_set(
		    e, DEVID_ECONFLICT, "trust %lld is removed already", (long long)id);
		goto rollback;
	}
	if ((detail = json_pack(
		 "{s:I, s:s}", "id", (json_int_t)id, "sha256", rec->signer_sha256)) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "out of memory");
		goto rollback;
	}
	if ((rc = store_trust_remove(db, id, now, e)) != 0 ||
	    (rc = audit_append(
		 db, rec->vendor_id, actor, "trust.remove", rec->signer_sha256, detail, e)) != 0)
		goto rollback;
	if ((rc = db_commit(db, e)) == 0 && out != NULL) {
		rec->removed_at = now;
		*out = trust_json(rec);
	}
	goto out;
rollback:
	db_rollback(db);
out:
	json_decref(detail);
	store_trust_list_free(rec, rec != NULL ? 1 : 0);
	return rc;
}

int
service_trust_add_admin(struct service *svc, const char *vendor, const char *tenant,
    const char *root_pem, const char *signer_pem, json_t **out, struct devid_error *e)
{
	const char *name = vendor != NULL ? vendor : tenant;
	enum tenant_kind want = vendor != NULL ? TENANT_VENDOR : TENANT_OEM;
	struct tenant t;
	struct db *db;
	int rc;

	if (out != NULL)
		*out = NULL;
	if ((vendor == NULL) == (tenant == NULL))
		return devid_error_set(e, DEVID_EINVAL, "trust add: --vendor or --tenant");
	db = store_acquire(svc->store);
	if ((rc = store_tenant_get(db, name, &t, e)) == 0 && t.kind != want)
		rc = devid_error_set(e, DEVID_EINVAL, "tenant %s is not %s (%s)", name,
		    want == TENANT_VENDOR ? "a vendor" : "an OEM",
		    want == TENANT_VENDOR ? "an OEM's own import trust: --tenant"
					  : "a vendor's trust: --vendor");
	if (rc == 0)
		rc = trust_add(db, &t, AUDIT_ACTOR_ADMIN_CLI, root_pem, signer_pem, out, e);
	store_release(svc->store, db);
	return rc;
}

int
service_trust_list_admin(struct service *svc, const char *vendor, const char *tenant, json_t **out,
    struct devid_error *e)
{
	struct db *db = store_acquire(svc->store);
	struct tenant t = {.id = 0};
	int rc = 0;

	*out = NULL;
	if (vendor != NULL || tenant != NULL) {
		if ((rc = store_tenant_get(db, vendor != NULL ? vendor : tenant, &t, e)) == 0 &&
		    t.kind != (vendor != NULL ? TENANT_VENDOR : TENANT_OEM))
			rc = devid_error_set(e, DEVID_EINVAL, "tenant %s is not %s", t.name,
			    vendor != NULL ? "a vendor" : "an OEM");
	}
	if (rc == 0)
		rc = trust_list_json(db, t.id, out, e);
	store_release(svc->store, db);
	return rc;
}

int
service_trust_remove_admin(struct service *svc, int64_t id, json_t **out, struct devid_error *e)
{
	struct db *db = store_acquire(svc->store);
	int rc;

	if (out != NULL)
		*out = NULL;
	rc = trust_remove(db, 0, AUDIT_ACTOR_ADMIN_CLI, id, out, e);
	store_release(svc->store, db);
	return rc;
}

int
service_trust_post(struct service *svc, const struct principal *p, const json_t *body, json_t **out,
    struct devid_error *e)
{
	const char *root, *signer;
	struct db *db;
	int rc;

	*out = NULL;
	if (p->tenant.kind != TENANT_OEM || p->role != ROLE_ADMIN)
		return devid_error_set(
		    e, DEVID_EAUTH, "only an OEM admin adds trust for its own imports");
	if (!json_is_object(body) ||
	    (root = json_string_value(json_object_get(body, "root"))) == NULL ||
	    (signer = json_string_value(json_object_get(body, "signer"))) == NULL)
		return devid_error_set(
		    e, DEVID_EINVAL, "body: {\"root\": PEM text, \"signer\": PEM text}");
	db = store_acquire(svc->store);
	rc = trust_add(db, &p->tenant, p->actor, root, signer, out, e);
	store_release(svc->store, db);
	return rc;
}

int
service_trust_get(
    struct service *svc, const struct principal *p, json_t **out, struct devid_error *e)
{
	struct db *db;
	int rc;

	*out = NULL;
	/* a vendor token reads its own trust; an OEM's admin its import trust */
	if (p->tenant.kind == TENANT_OEM && p->role != ROLE_ADMIN)
		return devid_error_set(
		    e, DEVID_EAUTH, "only an admin token reads its tenant's trust");
	db = store_acquire(svc->store);
	rc = trust_list_json(db, p->tenant.id, out, e);
	store_release(svc->store, db);
	return rc;
}

int
service_trust_delete(struct service *svc, const struct principal *p, const char *id, json_t **out,
    struct devid_error *e)
{
	int64_t n = id_parse(id);
	struct db *db;
	int rc;

	*out = NULL;
	if (p->tenant.kind != TENANT_OEM || p->role != ROLE_ADMIN)
		return devid_error_set(
		    e, DEVID_EAUTH, "only an OEM admin removes trust of its own imports");
	if (n <= 0)
		return devid_error_set(e, DEVID_ENOTFOUND, "no trust %s", id != NULL ? id : "");
	db = store_acquire(svc->store);
	rc = trust_remove(db, p->tenant.id, p->actor, n, out, e);
	store_release(svc->store, db);
	return rc;
}
