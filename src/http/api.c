/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "http/api.h"
#include "http/api_internal.h"
#include "http/console.h"
#include "http/cookie.h"
#include "http/openapi.h"
#include "http/router.h"
#include "http/uri.h"
#include "http/service_metrics.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/submission.h"
#include "lib/banned.h"

void
api_fail(struct http_response *resp, int rc, const struct devid_error *e, json_t *report)
{
	static const struct {
		int rc, status;
		const char *code;
	} map[] = {
	    {DEVID_EINVAL, 400, "bad_request"},
	    {DEVID_ECRYPTO, 400, "bad_request"},
	    {DEVID_EAUTH, 403, "forbidden"},
	    {DEVID_ENOTFOUND, 404, "not_found"},
	    {DEVID_ECONFLICT, 409, "conflict"},
	    {DEVID_ELIMIT, 429, "rate_limited"},
	};
	int status = 500;
	const char *code = "internal";
	json_t *j;

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (map[i].rc == rc) {
			status = map[i].status;
			code = map[i].code;
		}
	}
	if (report == NULL) {
		/* a server-side failure is logged by the server, not explained to the client */
		if (status == 500)
			log_error(
			    "api internal error", LOG_INT("code", rc), LOG_STR("error", e->msg));
		http_error(resp, status, code, "%s",
		    status == 500   ? "internal error"
			: e->msg[0] ? e->msg
				    : code);
		return;
	}
	j = json_pack("{s:s, s:s, s:O}", "error", code, "message", e->msg, "report", report);
	http_json(resp, status, j);
	json_decref(j);
}

void
api_answer(struct http_response *resp, int rc, const struct devid_error *e, json_t *j, int status)
{
	if (rc != 0)
		api_fail(resp, rc, e, NULL);
	else
		http_json(resp, status, j);
	json_decref(j);
}

/* The console's session cookie (docs/console.md "Sign in and sessions"). */
#define SESSION_COOKIE "devid_session"
#define CSRF_HEADER "X-CSRF-Token"
#define CSRF_NEEDED_MSG "a change made with a session cookie needs its X-CSRF-Token header"

/* The session cookie's value (len bytes, not NUL-terminated), or NULL when there is none. */
static const char *
session_cookie(struct http_request *req, size_t *len)
{
	const char *h = http_request_header(req, "Cookie"), *v;

	/* a malformed header is no session: the request goes on as if it had none */
	if (h == NULL || !cookie_get(h, strlen(h), SESSION_COOKIE, &v, len))
		return NULL;
	return v;
}

/*
 * The caller of a session cookie (v, len bytes) and its session: answers itself 401 when no
 * session is live, 403 when the method may change something and the request does not carry
 * the session's CSRF token.
 */
static int
authenticate_session(struct api *a, struct http_request *req, struct http_response *resp,
    const char *v, size_t len, struct principal *p, struct session *s)
{
	const char *m = http_request_method(req);
	struct devid_error e;
	int rc;

	devid_error_clear(&e);
	if ((rc = service_session_principal(a->svc, v, len, p, s, &e)) != 0) {
		if (rc != DEVID_EAUTH) {
			api_fail(resp, rc, &e, NULL);
			return -1;
		}
		http_response_set_header(resp, "WWW-Authenticate", "Bearer");
		http_error(resp, 401, "unauthorized", "%s", e.msg);
		return -1;
	}
	if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 &&
	    !service_session_csrf_ok(s, http_request_header(req, CSRF_HEADER))) {
		http_error(resp, 403, "forbidden", CSRF_NEEDED_MSG);
		return -1;
	}
	return 0;
}

int
api_authenticate(
    struct api *a, struct http_request *req, struct http_response *resp, struct principal *p)
{
	const char *h = http_request_header(req, "Authorization"), *c;
	struct devid_error e;
	struct session s;
	size_t clen;
	int rc;

	devid_error_clear(&e);
	if (h == NULL && (c = session_cookie(req, &clen)) != NULL) {
		rc = authenticate_session(a, req, resp, c, clen, p, &s);
		OPENSSL_cleanse(&s, sizeof(s));
		return rc;
	}
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) {
		http_response_set_header(resp, "WWW-Authenticate", "Bearer");
		http_error(resp, 401, "unauthorized", "a bearer token is required");
		return -1;
	}
	if (service_authenticate(a->svc, h + 7, strlen(h + 7), p, &e) != 0) {
		http_response_set_header(
		    resp, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
		http_error(resp, 401, "unauthorized", "%s", e.msg);
		return -1;
	}
	return 0;
}

json_t *
api_body_json(struct http_request *req, struct http_response *resp)
{
	struct devid_error e;
	size_t len;
	const uint8_t *p = http_request_body(req, &len);
	json_t *j;

	devid_error_clear(&e);
	if ((j = json_parse(p, len, "body", &e)) == NULL)
		http_error(resp, 400, "bad_request", "%s", e.msg);
	return j;
}

/* A decimal query parameter in [0, max]; def when absent or empty. -1 when malformed. */
static int64_t
query_num(struct http_request *req, const char *name, int64_t def, int64_t max)
{
	const char *s = http_request_query(req, name);
	char *end;
	long long v;

	if (s == NULL || *s == '\0')
		return def;
	if (*s < '0' || *s > '9')
		return -1;
	v = strtoll(s, &end, 10);
	return *end != '\0' || v > max ? -1 : v;
}

/* The peer address without its port, for per-address limits. */
static void
peer_host(struct http_request *req, char *out, size_t len)
{
	const char *p = http_request_peer(req);
	const char *colon = strrchr(p, ':');
	size_t n = colon != NULL ? (size_t)(colon - p) : strlen(p);

	snprintf(out, len, "%.*s", (int)n, p);
}

/* --- console sessions (docs/console.md "Sign in and sessions") --------------------------- */

/* {"tenant","role","name","csrf","expiresAt"}: what the console needs to know of itself. */
static json_t *
session_json(const struct principal *p, const struct session *s)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:o}", "tenant", p->tenant.name, "role",
	    role_name(p->role), "name", p->token_name, "csrf", s->csrf, "expiresAt",
	    json_time(s->expires_at));
}

/* POST /api/v1/session {"token":"…"}: the token traded for a session cookie. */
HANDLER(h_session_post)
{
	struct api *a = arg;
	struct principal p;
	struct session s;
	struct devid_error e;
	json_t *body, *tok, *j = NULL;
	char cookie[sizeof(SESSION_COOKIE) + SESSION_TEXT_LEN + 96];
	const char *ct;
	int rc;

	/*
	 * Login CSRF: a page elsewhere must not sign the browser in with its own token (the
	 * operator's next claims would land in its tenant). A form cannot send this type, and
	 * a script elsewhere cannot without a CORS preflight, which devid does not answer.
	 */
	if ((ct = http_request_header(req, "Content-Type")) == NULL ||
	    strncasecmp(ct, "application/json", 16) != 0 || (ct[16] != '\0' && ct[16] != ';')) {
		http_error(resp, 415, "unsupported_media_type",
		    "sign in with Content-Type: application/json");
		return;
	}
	if ((body = api_body_json(req, resp)) == NULL)
		return;
	devid_error_clear(&e);
	if (!json_is_object(body) || json_object_size(body) != 1 ||
	    !json_is_string(tok = json_object_get(body, "token"))) {
		http_error(resp, 400, "bad_request", "the body is {\"token\":\"<token>\"}");
		json_decref(body);
		return;
	}
	rc = service_session_open(
	    a->svc, json_string_value(tok), json_string_length(tok), &p, &s, &e);
	json_decref(body);
	if (rc == DEVID_EAUTH && p.token == 0) {
		/* the token did not authenticate: as for a bearer */
		http_response_set_header(
		    resp, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
		http_error(resp, 401, "unauthorized", "%s", e.msg);
		return;
	}
	if (rc == 0) {
		snprintf(cookie, sizeof(cookie),
		    SESSION_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s", s.secret,
		    service_session_ttl(a->svc), http_request_is_tls(req) ? "; Secure" : "");
		http_response_set_header(resp, "Set-Cookie", cookie);
		OPENSSL_cleanse(cookie, sizeof(cookie));
		j = session_json(&p, &s);
	}
	OPENSSL_cleanse(&s, sizeof(s));
	api_answer(resp, rc, &e, j, 201);
}

/* GET /api/v1/session: the live session of the cookie, its CSRF token again. */
HANDLER(h_session_get)
{
	struct api *a = arg;
	struct principal p;
	struct session s;
	const char *c;
	size_t len;
	json_t *j;

	if ((c = session_cookie(req, &len)) == NULL) {
		http_response_set_header(resp, "WWW-Authenticate", "Bearer");
		http_error(resp, 401, "unauthorized", "no session: sign in");
		return;
	}
	if (authenticate_session(a, req, resp, c, len, &p, &s) == 0) {
		j = session_json(&p, &s);
		http_json(resp, 200, j);
		json_decref(j);
	}
	OPENSSL_cleanse(&s, sizeof(s));
}

/* DELETE /api/v1/session (cookie and CSRF token): signs out and clears the cookie. */
HANDLER(h_session_delete)
{
	struct api *a = arg;
	struct principal p;
	struct session s;
	struct devid_error e;
	const char *c;
	size_t len;
	int rc;

	if ((c = session_cookie(req, &len)) == NULL) {
		http_response_set_header(resp, "WWW-Authenticate", "Bearer");
		http_error(resp, 401, "unauthorized", "no session: sign in");
		return;
	}
	if (authenticate_session(a, req, resp, c, len, &p, &s) == 0) {
		devid_error_clear(&e);
		if ((rc = service_session_close(a->svc, &p, &s, &e)) != 0) {
			api_fail(resp, rc, &e, NULL);
		} else {
			http_response_set_header(resp, "Set-Cookie",
			    SESSION_COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
			http_response_set_status(resp, 204);
		}
	}
	OPENSSL_cleanse(&s, sizeof(s));
}

HANDLER(h_publish)
{
	struct api *a = arg;
	struct manifest_report r;
	struct devid_error e;
	const uint8_t *body;
	json_t *report, *j;
	size_t len;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	body = http_request_body(req, &len);
	rc = service_publish(a->svc, &p, body, len, &r, &e);
	report = manifest_report_json(&r);
	if (rc != 0) {
		api_fail(resp, rc, &e, r.total > 0 || r.batch_error[0] ? report : NULL);
	} else {
		j = json_pack("{s:O}", "report", report);
		http_json(resp, 201, j);
		json_decref(j);
	}
	json_decref(report);
	manifest_report_release(&r);
}

HANDLER(h_import)
{
	struct api *a = arg;
	struct manifest_report r;
	struct devid_error e;
	const uint8_t *body;
	json_t *report, *j;
	size_t len;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	body = http_request_body(req, &len);
	rc = service_import(a->svc, &p, http_request_query(req, "batch"), body, len, &r, &e);
	report = manifest_report_json(&r);
	if (rc != 0) {
		api_fail(resp, rc, &e, r.total > 0 ? report : NULL);
	} else {
		j = json_pack("{s:O}", "report", report);
		http_json(resp, 201, j);
		json_decref(j);
	}
	json_decref(report);
	manifest_report_release(&r);
}

HANDLER(h_claim)
{
	struct api *a = arg;
	struct devid_error e;
	struct batch_rec b;
	const char *code;
	char host[64], name[2 * MAX_NAME_LEN + 2], retry[24];
	struct claim_code cc;
	size_t len;
	bool changed;
	json_t *body, *j;
	int rc, retry_after = 0;

	AUTH(a, p);
	if ((body = api_body_json(req, resp)) == NULL)
		return;
	devid_error_clear(&e);
	if (claim_body_parse(body, &code, &len, &cc, &e) != 0) {
		http_error(resp, 400, "bad_request", "%s", e.msg);
		json_decref(body);
		return;
	}
	peer_host(req, host, sizeof(host));
	rc = service_claim(
	    a->svc, &p, host, (const uint8_t *)code, len, &b, &changed, &retry_after, &e);
	if (rc != 0) {
		/* RFC 9110 10.2.3 with RFC 6585 4: when the shared bucket allows one more */
		if (rc == DEVID_ELIMIT && retry_after > 0) {
			snprintf(retry, sizeof(retry), "%d", retry_after);
			http_response_set_header(resp, "Retry-After", retry);
		}
		api_fail(resp, rc, &e, NULL);
	} else {
		snprintf(name, sizeof(name), "%s/%s", b.vendor, b.name);
		j = json_pack("{s:s, s:b, s:s, s:s, s:s, s:I}", "batch", name, "claimed", changed,
		    "vendor", b.vendor, "name", b.name, "partNumber", b.part_number, "count",
		    (json_int_t)b.count);
		http_json(resp, 200, j);
		json_decref(j);
	}
	json_decref(body);
}

HANDLER(h_batches)
{
	struct api *a = arg;
	struct devid_error e;
	int64_t after = query_num(req, "after", 0, INT64_MAX), limit;
	json_t *j = NULL;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	limit = query_num(req, "limit", 0, PAGE_MAX);
	if (after < 0 || limit < 0) {
		http_error(resp, 400, "bad_request", "after and limit are numbers (limit <= %d)",
		    PAGE_MAX);
		return;
	}
	rc = service_batches(a->svc, &p, after, (size_t)limit, &j, &e);
	api_answer(resp, rc, &e, j, 200);
}

HANDLER(h_batch)
{
	struct api *a = arg;
	struct devid_error e;
	json_t *j = NULL;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	rc = service_batch_get(a->svc, &p, http_request_param(req, "vendor"),
	    http_request_param(req, "batch"), &j, &e);
	api_answer(resp, rc, &e, j, 200);
}

HANDLER(h_manifest)
{
	struct api *a = arg;
	struct devid_error e;
	enum manifest_format f;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	if (manifest_format_parse(http_request_query(req, "format"), &f) != 0) {
		http_error(resp, 400, "bad_request", "format is json, pem or csv");
		return;
	}
	rc = service_manifest(a->svc, &p, http_request_param(req, "vendor"),
	    http_request_param(req, "batch"), f, http_response_body(resp), &e);
	if (rc != 0) {
		dynbuf_reset(http_response_body(resp));
		api_fail(resp, rc, &e, NULL);
		return;
	}
	http_response_set_status(resp, 200);
	http_response_set_header(resp, "Content-Type", manifest_format_type(f));
}

/* GET /api/v1/batches/{vendor}/{batch}/custody: the chain of custody (docs/custody.md). */
HANDLER(h_custody)
{
	struct api *a = arg;
	struct devid_error e;
	json_t *j = NULL;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	rc = service_custody_get(a->svc, &p, http_request_param(req, "vendor"),
	    http_request_param(req, "batch"), &j, &e);
	api_answer(resp, rc, &e, j, 200);
}

HANDLER(h_transfer)
{
	struct api *a = arg;
	struct devid_error e;
	char code[MAX_CLAIM_TEXT_LEN + 1];
	json_t *j;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	rc = service_transfer(a->svc, &p, http_request_param(req, "vendor"),
	    http_request_param(req, "batch"), code, sizeof(code), &e);
	if (rc != 0) {
		api_fail(resp, rc, &e, NULL);
		return;
	}
	j = json_pack("{s:s}", "code", code);
	http_json(resp, 200, j);
	json_decref(j);
}

HANDLER(h_release)
{
	struct api *a = arg;
	struct devid_error e;
	json_t *j;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	rc = service_release(
	    a->svc, &p, http_request_param(req, "vendor"), http_request_param(req, "batch"), &e);
	if (rc != 0) {
		api_fail(resp, rc, &e, NULL);
		return;
	}
	j = json_pack("{s:b}", "released", 1);
	http_json(resp, 200, j);
	json_decref(j);
}

HANDLER(h_devices)
{
	struct api *a = arg;
	struct devid_error e;
	const char *batch = http_request_query(req, "batch"), *state, *q;
	char vendor[MAX_NAME_LEN + 1], name[MAX_NAME_LEN + 1];
	int64_t after = query_num(req, "after", 0, INT64_MAX), limit;
	const char *slash;
	json_t *j = NULL;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	limit = query_num(req, "limit", 0, PAGE_MAX);
	state = http_request_query(req, "state");
	if (state != NULL && *state == '\0')
		state = NULL;
	if ((q = http_request_query(req, "q")) != NULL && *q == '\0')
		q = NULL;
	if (after < 0 || limit < 0) {
		http_error(resp, 400, "bad_request", "after and limit are numbers (limit <= %d)",
		    PAGE_MAX);
		return;
	}
	if (batch != NULL && *batch != '\0') {
		if ((slash = strchr(batch, '/')) == NULL || slash == batch ||
		    (size_t)(slash - batch) > MAX_NAME_LEN || strlen(slash + 1) > MAX_NAME_LEN ||
		    slash[1] == '\0') {
			http_error(resp, 400, "bad_request", "batch is VENDOR/BATCH");
			return;
		}
		snprintf(vendor, sizeof(vendor), "%.*s", (int)(slash - batch), batch);
		snprintf(name, sizeof(name), "%s", slash + 1);
		rc = service_devices(
		    a->svc, &p, vendor, name, state, q, after, (size_t)limit, &j, &e);
	} else {
		rc =
		    service_devices(a->svc, &p, NULL, NULL, state, q, after, (size_t)limit, &j, &e);
	}
	api_answer(resp, rc, &e, j, 200);
}

HANDLER(h_device)
{
	struct api *a = arg;
	struct devid_error e;
	json_t *j = NULL;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	rc = service_device_get(a->svc, &p, http_request_param(req, "udid"), &j, &e);
	api_answer(resp, rc, &e, j, 200);
}

/*
 * POST /api/v1/devices/{udid}/revoke, body empty or {"reason": NAME} (RFC 5280 5.3.1 names;
 * default unspecified). Answers the device as GET does, with its revokeReason.
 */
HANDLER(h_revoke)
{
	struct api *a = arg;
	struct devid_error e;
	const char *reason = NULL;
	json_t *body = NULL, *r, *j = NULL;
	size_t len;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	http_request_body(req, &len);
	if (len > 0) {
		if ((body = api_body_json(req, resp)) == NULL)
			return;
		r = json_object_get(body, "reason");
		if (!json_is_object(body) || json_object_size(body) != (r != NULL ? 1u : 0u) ||
		    (r != NULL && !json_is_string(r))) {
			http_error(resp, 400, "bad_request",
			    "the body is empty or {\"reason\": NAME} (RFC 5280 5.3.1)");
			json_decref(body);
			return;
		}
		reason = json_string_value(r);
	}
	rc = service_revoke(a->svc, &p, http_request_param(req, "udid"), reason, &e);
	if (rc == 0)
		rc = service_device_get(a->svc, &p, http_request_param(req, "udid"), &j, &e);
	api_answer(resp, rc, &e, j, 200);
	json_decref(body);
}

HANDLER(h_audit)
{
	struct api *a = arg;
	struct devid_error e;
	int64_t after = query_num(req, "after", 0, INT64_MAX);
	json_t *j = NULL;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	if (after < 0) {
		http_error(resp, 400, "bad_request", "after is a record number");
		return;
	}
	rc = service_audit(a->svc, &p, after, 0, &j, &e);
	api_answer(resp, rc, &e, j, 200);
}

HANDLER(h_connectors)
{
	struct api *a = arg;
	struct devid_error e;
	json_t *j = NULL;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	rc = service_connectors(a->svc, &p, &j, &e);
	api_answer(resp, rc, &e, j, 200);
}

HANDLER(h_connector_get)
{
	struct api *a = arg;
	struct devid_error e;
	json_t *j = NULL;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	rc = service_connector_get(a->svc, &p, http_request_param(req, "name"), &j, &e);
	api_answer(resp, rc, &e, j, 200);
}

/* POST /connectors (name in the body) and PUT /connectors/{name} */
HANDLER(h_connector_put)
{
	struct api *a = arg;
	struct devid_error e;
	const char *name = http_request_param(req, "name");
	char cname[MAX_NAME_LEN + 2];
	json_t *body, *j = NULL;
	bool created;
	int rc;

	AUTH(a, p);
	if ((body = api_body_json(req, resp)) == NULL)
		return;
	devid_error_clear(&e);
	if (name == NULL)
		name = json_string_value(json_object_get(body, "name"));
	snprintf(cname, sizeof(cname), "%s", name != NULL ? name : "");
	name = cname;
	json_object_del(body, "name");
	rc = service_connector_put(a->svc, &p, name, body, &created, &e);
	if (rc == 0)
		rc = service_connector_get(a->svc, &p, name, &j, &e);
	if (rc != 0)
		api_fail(resp, rc, &e, NULL);
	else
		http_json(resp, created ? 201 : 200, j);
	json_decref(j);
	json_decref(body);
}

HANDLER(h_connector_delete)
{
	struct api *a = arg;
	struct devid_error e;
	json_t *j;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	if ((rc = service_connector_delete(a->svc, &p, http_request_param(req, "name"), &e)) != 0) {
		api_fail(resp, rc, &e, NULL);
		return;
	}
	j = json_pack("{s:b}", "deleted", 1);
	http_json(resp, 200, j);
	json_decref(j);
}

/* POST /api/v1/connectors/{name}/test (admin): 200 {"ok","message"}; 409 without a test call. */
HANDLER(h_connector_test)
{
	struct api *a = arg;
	struct devid_error e;
	json_t *j = NULL;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	rc = service_connector_test(a->svc, &p, http_request_param(req, "name"), &j, &e);
	api_answer(resp, rc, &e, j, 200);
}

/* GET /api/v1/audit/verify (admin): the chain status of the caller's tenant. */
HANDLER(h_audit_verify)
{
	struct api *a = arg;
	struct devid_error e;
	json_t *j = NULL;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	rc = service_audit_verify(a->svc, &p, &j, &e);
	api_answer(resp, rc, &e, j, 200);
}

HANDLER(h_provision)
{
	struct api *a = arg;
	struct devid_error e;
	json_t *body, *j = NULL;
	int rc;

	AUTH(a, p);
	if ((body = api_body_json(req, resp)) == NULL)
		return;
	devid_error_clear(&e);
	rc = service_provision(a->svc, &p, body, &j, &e);
	api_answer(resp, rc, &e, j, 202);
	json_decref(body);
}

HANDLER(h_jobs)
{
	struct api *a = arg;
	struct devid_error e;
	const char *state = http_request_query(req, "state");
	json_t *j = NULL;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	if (state != NULL && *state == '\0')
		state = NULL;
	rc = service_jobs(a->svc, &p, state, &j, &e);
	api_answer(resp, rc, &e, j, 200);
}

/* GET /api/v1/jobs/{id}/devices?status=ok|failed&after=UDID: each device's outcome. */
HANDLER(h_job_devices)
{
	struct api *a = arg;
	struct devid_error e;
	const char *id = http_request_param(req, "id");
	const char *status = http_request_query(req, "status");
	char *end = NULL;
	long long v = -1;
	json_t *j = NULL;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	if (status != NULL && *status == '\0')
		status = NULL;
	if (id != NULL && *id >= '0' && *id <= '9')
		v = strtoll(id, &end, 10);
	if (v < 1 || end == NULL || *end != '\0')
		rc = devid_error_set(&e, DEVID_ENOTFOUND, "no such job");
	else
		rc = service_job_devices(
		    a->svc, &p, (int64_t)v, status, http_request_query(req, "after"), &j, &e);
	api_answer(resp, rc, &e, j, 200);
}

/*
 * GET /api/v1/tenants/{tenant}/crl[/{generation}]: the DER CRL of one CA generation of the
 * tenant (without one, its first CA's: the URL certificates issued before CA rotation name).
 * No token.
 */
HANDLER(h_crl)
{
	struct api *a = arg;
	struct devid_error e;
	const char *g = http_request_param(req, "generation");
	char *end = NULL;
	long long gen = 1;
	int rc;

	devid_error_clear(&e);
	if (g != NULL && *g >= '1' && *g <= '9')
		gen = strtoll(g, &end, 10);
	if (g != NULL && (end == NULL || *end != '\0' || gen < 1))
		rc = devid_error_set(&e, DEVID_ENOTFOUND, "no such CA generation");
	else
		rc = service_crl(a->svc, http_request_param(req, "tenant"), (int64_t)gen,
		    http_response_body(resp), &e);
	if (rc != 0) {
		dynbuf_reset(http_response_body(resp));
		api_fail(resp, rc, &e, NULL);
		return;
	}
	http_response_set_status(resp, 200);
	http_response_set_header(resp, "Content-Type", "application/pkix-crl");
}

/* GET /api/v1/quota: {"max":N|null,"used":M} of the caller's tenant. */
HANDLER(h_quota_get)
{
	struct api *a = arg;
	struct devid_error e;
	json_t *j = NULL;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	rc = service_quota_get(a->svc, &p, &j, &e);
	api_answer(resp, rc, &e, j, 200);
}

/* PUT /api/v1/quota {"max":N|null} (admin): answers the quota as GET does. */
HANDLER(h_quota_put)
{
	struct api *a = arg;
	struct devid_error e;
	json_t *body, *j = NULL;
	int rc;

	AUTH(a, p);
	if ((body = api_body_json(req, resp)) == NULL)
		return;
	devid_error_clear(&e);
	rc = service_quota_put(a->svc, &p, body, &e);
	if (rc == 0)
		rc = service_quota_get(a->svc, &p, &j, &e);
	api_answer(resp, rc, &e, j, 200);
	json_decref(body);
}

/* GET /api/v1/interop-key: the public key receivers verify devid's JWTs with. No token. */
HANDLER(h_interop_key)
{
	const json_t *jwks = arg;

	(void)req;
	if (jwks == NULL) {
		http_error(resp, 404, "not_found", "this server has no interop key");
		return;
	}
	http_json(resp, 200, jwks);
}

/* --- issue 10: the caller's tenant's tokens and trust (admin) ---------------------------- */

/* GET /api/v1/tokens: the tenant's tokens, never their secrets. */
HANDLER(h_tokens)
{
	struct api *a = arg;
	struct devid_error e;
	json_t *j = NULL;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	rc = service_tokens(a->svc, &p, &j, &e);
	api_answer(resp, rc, &e, j, 200);
}

/* POST /api/v1/tokens {"name","role","expires"?}: 201 with the secret, this once. */
HANDLER(h_token_post)
{
	struct api *a = arg;
	struct devid_error e;
	json_t *body, *j = NULL;
	int rc;

	AUTH(a, p);
	if ((body = api_body_json(req, resp)) == NULL)
		return;
	devid_error_clear(&e);
	rc = service_token_post(a->svc, &p, body, &j, &e);
	if (rc == 0)
		http_response_set_header(resp, "Cache-Control", "no-store");
	api_answer(resp, rc, &e, j, 201);
	json_decref(body);
}

/* DELETE /api/v1/tokens/{id}: revokes. */
HANDLER(h_token_delete)
{
	struct api *a = arg;
	struct devid_error e;
	json_t *j = NULL;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	rc = service_token_delete(a->svc, &p, http_request_param(req, "id"), &j, &e);
	api_answer(resp, rc, &e, j, 200);
}

/* GET /api/v1/trust */
HANDLER(h_trust)
{
	struct api *a = arg;
	struct devid_error e;
	json_t *j = NULL;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	rc = service_trust_get(a->svc, &p, &j, &e);
	api_answer(resp, rc, &e, j, 200);
}

/* POST /api/v1/trust {"root":PEM,"signer":PEM}: an OEM's own import trust. */
HANDLER(h_trust_post)
{
	struct api *a = arg;
	struct devid_error e;
	json_t *body, *j = NULL;
	int rc;

	AUTH(a, p);
	if ((body = api_body_json(req, resp)) == NULL)
		return;
	devid_error_clear(&e);
	rc = service_trust_post(a->svc, &p, body, &j, &e);
	api_answer(resp, rc, &e, j, 201);
	json_decref(body);
}

/* DELETE /api/v1/trust/{id}: retires the signer. */
HANDLER(h_trust_delete)
{
	struct api *a = arg;
	struct devid_error e;
	json_t *j = NULL;
	int rc;

	AUTH(a, p);
	devid_error_clear(&e);
	rc = service_trust_delete(a->svc, &p, http_request_param(req, "id"), &j, &e);
	api_answer(resp, rc, &e, j, 200);
}

static int
api_admin_routes(struct api *a, struct devid_error *e)
{
	const struct {
		const char *method, *pattern;
		http_handler_fn *fn;
	} routes[] = {
	    {"GET", "/api/v1/tokens", h_tokens},
	    {"POST", "/api/v1/tokens", h_token_post},
	    {"DELETE", "/api/v1/tokens/{id}", h_token_delete},
	    {"GET", "/api/v1/trust", h_trust},
	    {"POST", "/api/v1/trust", h_trust_post},
	    {"DELETE", "/api/v1/trust/{id}", h_trust_delete},
	};

	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (router_add(
			a->router, routes[i].method, routes[i].pattern, routes[i].fn, a, e) != 0)
			return -1;
	return 0;
}

struct api *
api_new(struct service *svc, struct metrics *m, const json_t *jwks, struct devid_error *e)
{
	const struct {
		const char *method, *pattern;
		http_handler_fn *fn;
	} routes[] = {
	    /* console sessions (docs/console.md) */
	    {"POST", "/api/v1/session", h_session_post},
	    {"GET", "/api/v1/session", h_session_get},
	    {"DELETE", "/api/v1/session", h_session_delete},
	    {"POST", "/api/v1/vendor/batches", h_publish},
	    {"POST", "/api/v1/claims", h_claim},
	    {"POST", "/api/v1/imports", h_import},
	    {"GET", "/api/v1/batches", h_batches},
	    {"GET", "/api/v1/batches/{vendor}/{batch}", h_batch},
	    {"GET", "/api/v1/batches/{vendor}/{batch}/manifest", h_manifest},
	    {"GET", "/api/v1/batches/{vendor}/{batch}/custody", h_custody},
	    {"POST", "/api/v1/batches/{vendor}/{batch}/transfer", h_transfer},
	    {"POST", "/api/v1/batches/{vendor}/{batch}/release", h_release},
	    {"GET", "/api/v1/devices", h_devices},
	    {"GET", "/api/v1/devices/{udid}", h_device},
	    {"POST", "/api/v1/devices/{udid}/revoke", h_revoke},
	    {"GET", "/api/v1/audit", h_audit},
	    {"GET", "/api/v1/audit/verify", h_audit_verify},
	    {"GET", "/api/v1/connectors", h_connectors},
	    {"POST", "/api/v1/connectors", h_connector_put},
	    {"GET", "/api/v1/connectors/{name}", h_connector_get},
	    {"PUT", "/api/v1/connectors/{name}", h_connector_put},
	    {"DELETE", "/api/v1/connectors/{name}", h_connector_delete},
	    {"POST", "/api/v1/connectors/{name}/test", h_connector_test},
	    {"POST", "/api/v1/provision", h_provision},
	    {"GET", "/api/v1/jobs", h_jobs},
	    {"GET", "/api/v1/jobs/{id}/devices", h_job_devices},
	    {"GET", "/api/v1/tenants/{tenant}/crl", h_crl},
	    {"GET", "/api/v1/tenants/{tenant}/crl/{generation}", h_crl},
	    {"GET", "/api/v1/quota", h_quota_get},
	    {"PUT", "/api/v1/quota", h_quota_put},
	};
	struct api *a;

	if ((a = calloc(1, sizeof(*a))) == NULL || (a->router = router_new()) == NULL ||
	    (a->ingest = router_new()) == NULL || (a->pages = router_new()) == NULL) {
		devid_error_set(e, DEVID_ENOMEM, "api: out of memory");
		api_free(a);
		return NULL;
	}
	a->svc = svc;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (router_add(
			a->router, routes[i].method, routes[i].pattern, routes[i].fn, a, e) != 0)
			goto fail;
		if ((routes[i].fn == h_publish || routes[i].fn == h_import) &&
		    router_add(
			a->ingest, routes[i].method, routes[i].pattern, routes[i].fn, a, e) != 0)
			goto fail;
	}
	if (api_admin_routes(a, e) != 0 || api_upload_routes(a, e) != 0 ||
	    api_clone_routes(a, e) != 0)
		goto fail;
	/* the domain's metrics beside the server's, when there is a registry to add them to */
	if (m != NULL && metrics_add_collector(m, service_metrics_collect, svc) != 0) {
		devid_error_set(e, DEVID_ELIMIT, "api: too many metrics collectors");
		goto fail;
	}
	if (router_add(a->router, "GET", "/api/v1/interop-key", h_interop_key, (void *)jwks, e) !=
		0 ||
	    router_add(a->router, "GET", "/api/v1/openapi.json", openapi_handle, NULL, e) != 0 ||
	    router_add(a->router, "GET", "/healthz", http_handle_healthz, NULL, e) != 0 ||
	    router_add(a->router, "GET", "/metrics", http_handle_metrics, m, e) != 0 ||
	    console_routes(a->router, e) != 0)
		goto fail;
	return a;
fail:
	api_free(a);
	return NULL;
}

void
api_free(struct api *a)
{
	if (a == NULL)
		return;
	router_free(a->router);
	router_free(a->ingest);
	router_free(a->pages);
	free(a);
}

void
api_set_max_ingest_body(struct api *a, size_t max)
{
	a->max_ingest_body = max;
}

size_t
api_body_limit(const char *method, const char *path, void *arg)
{
	struct api *a = arg;
	struct route_match m;
	char decoded[HTTP_MAX_PATH + 1];
	size_t n;

	if (a->max_ingest_body == 0 ||
	    uri_path_decode(path, strlen(path), decoded, sizeof(decoded), &n, NULL) != 0)
		return 0;
	if (router_match(a->pages, method, decoded, n, &m) == ROUTER_MATCH)
		return a->max_ingest_body < MAX_UPLOAD_PAGE_SIZE ? a->max_ingest_body
								 : MAX_UPLOAD_PAGE_SIZE;
	return router_match(a->ingest, method, decoded, n, &m) == ROUTER_MATCH ? a->max_ingest_body
									       : 0;
}

const struct router *
api_router(const struct api *a)
{
	return a->router;
}

void
api_handle(struct http_request *req, struct http_response *resp, void *arg)
{
	struct api *a = arg;
	size_t len;
	const char *path = http_request_path(req, &len);

	/* answers about the caller's objects: no cache keeps them (docs/console.md) */
	if (len >= 5 && strncmp(path, "/api/", 5) == 0)
		http_response_set_header(resp, "Cache-Control", "no-store");
	router_handle(req, resp, a->router);
}
