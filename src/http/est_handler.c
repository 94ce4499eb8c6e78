/* SPDX-License-Identifier: Apache-2.0 */
/*
 * est_handler.c - the EST endpoints of the device port over the domain (see est.h).
 *
 * The port runs with HTTP_CLIENT_AUTH_ANY: TLS proves the client holds the key of the
 * certificate it sent and nothing more; service_est_enroll verifies that certificate and its
 * chain against the trust in the database on every request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/est.h"
#include "lib/base64.h"
#include "lib/log.h"
#include "service/service.h"
#include "lib/banned.h"

struct est {
	struct service *svc;
};

struct est *
est_new(struct service *svc, struct devid_error *e)
{
	struct est *est;

	if ((est = calloc(1, sizeof(*est))) == NULL) {
		devid_error_set(e, DEVID_ENOMEM, "est: out of memory");
		return NULL;
	}
	est->svc = svc;
	return est;
}

void
est_free(struct est *est)
{
	free(est);
}

/*
 * A failed domain call to its answer; a server-side failure is logged, not explained. The
 * log names the path as requested (with the tenant label) beside the route pattern.
 */
static void
est_fail(struct http_request *req, struct http_response *resp, const struct est_request *r, int rc,
    const struct devid_error *e)
{
	enum est_endpoint ep = r->endpoint;
	const char *path = http_request_path(req, NULL), *route = est_route(ep, r->has_label);
	int status = 500;
	const char *code = "internal";

	switch (rc) {
	case DEVID_EINVAL:
		status = 400;
		code = "bad_request";
		break;
	case DEVID_EAUTH:
	case DEVID_ECRYPTO:
		status = 403;
		code = "forbidden";
		break;
	case DEVID_ENOTFOUND:
		status = ep == EST_CACERTS ? 404 : 403;
		code = ep == EST_CACERTS ? "not_found" : "forbidden";
		break;
	case DEVID_ELIMIT:
		status = 403;
		code = "quota_exceeded";
		break;
	case DEVID_ECONFLICT:
		status = 409;
		code = "no_ca";
		break;
	default:
		break;
	}
	if (status == 500) {
		log_warn("est failed", LOG_STR("path", path), LOG_STR("route", route),
		    LOG_STR("peer", http_request_peer(req)), LOG_STR("error", e->msg));
		http_error(resp, 500, code, "internal error");
		return;
	}
	if (status == 403)
		log_info("est refused", LOG_STR("path", path), LOG_STR("route", route),
		    LOG_STR("peer", http_request_peer(req)), LOG_STR("code", code),
		    LOG_STR("reason", e->msg));
	http_error(resp, status, code, "%s", e->msg[0] != '\0' ? e->msg : code);
}

/* 200 with certs as a certs-only answer; 500 if it cannot be made. */
static void
answer_certs(struct http_response *resp, X509 *const *certs, size_t n)
{
	struct dynbuf *body = http_response_body(resp);
	struct devid_error e;

	devid_error_clear(&e);
	if (est_certs_only(certs, n, body, &e) != 0) {
		log_warn("est answer failed", LOG_STR("error", e.msg));
		dynbuf_reset(body);
		http_error(resp, 500, "internal", "internal error");
		return;
	}
	http_response_set_status(resp, 200);
	http_response_set_header(resp, "Content-Type", EST_TYPE_CERTS_ONLY);
	http_response_set_header(resp, "Content-Transfer-Encoding", "base64");
}

static void
handle_enroll(
    struct est *est, struct http_request *req, struct http_response *resp, struct est_request *r)
{
	enum est_op op = r->endpoint == EST_SIMPLEENROLL ? EST_ENROLL : EST_REENROLL;
	struct devid_error e;
	X509 *issued = NULL;
	int rc;

	devid_error_clear(&e);
	rc =
	    service_est_enroll(est->svc, op, r->has_label ? r->label : NULL, http_request_peer(req),
		http_request_client_cert(req), http_request_client_chain(req), r->csr, &issued, &e);
	if (rc != 0) {
		est_fail(req, resp, r, rc, &e);
		return;
	}
	/* service_est_enroll logs the issuance: op, tenant, udid, serial */
	answer_certs(resp, &issued, 1);
	X509_free(issued);
}

/* 201 with the activation: what TPM2_ActivateCredential takes, base64, and its id. */
static void
answer_activation(struct http_response *resp, const struct tpm_activation *a)
{
	char *blob = b64_encode(a->cred.id_object, a->cred.id_object_len);
	char *secret = b64_encode(a->cred.secret, a->cred.secret_len);
	time_t t = (time_t)a->expires_at;
	json_t *j = NULL;
	char when[32];
	struct tm tm;

	if (blob != NULL && secret != NULL && gmtime_r(&t, &tm) != NULL &&
	    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) != 0)
		j = json_pack("{s:s, s:s, s:s, s:s}", "id", a->id, "credentialBlob", blob,
		    "encryptedSecret", secret, "expiresAt", when);
	if (j == NULL || http_json(resp, 201, j) != 0)
		http_error(resp, 500, "internal", "internal error");
	json_decref(j);
	free(blob);
	free(secret);
}

static void
handle_tpm_activate(
    struct est *est, struct http_request *req, struct http_response *resp, struct est_request *r)
{
	const struct est_tpm_body *b = &r->tpm;
	struct tpm_activate_request a = {
	    .ek_cert = b->ek_cert,
	    .ek_cert_len = b->ek_cert_len,
	    .udid = b->udid[0] != '\0' ? b->udid : NULL,
	    .ak_public = b->ak_public,
	    .ak_public_len = b->ak_public_len,
	    .key_public = b->key_public,
	    .key_public_len = b->key_public_len,
	    .certify_info = b->certify_info,
	    .certify_info_len = b->certify_info_len,
	    .certify_signature = b->certify_signature,
	    .certify_signature_len = b->certify_signature_len,
	    .csr = b->csr,
	    .csr_len = b->csr_len,
	};
	struct tpm_activation out;
	struct devid_error e;
	int rc;

	devid_error_clear(&e);
	rc = service_tpm_activate(est->svc, r->has_label ? r->label : NULL, &a, &out, &e);
	if (rc != 0) {
		est_fail(req, resp, r, rc, &e);
		return;
	}
	answer_activation(resp, &out);
}

static void
handle_tpm_enroll(
    struct est *est, struct http_request *req, struct http_response *resp, struct est_request *r)
{
	struct devid_error e;
	X509 *issued = NULL;
	int rc;

	devid_error_clear(&e);
	rc = service_tpm_enroll(est->svc, r->has_label ? r->label : NULL, r->tpm.id, r->tpm.secret,
	    r->tpm.secret_len, &issued, &e);
	if (rc != 0) {
		est_fail(req, resp, r, rc, &e);
		return;
	}
	/* service_tpm_enroll logs the issuance: op, tenant, udid, serial */
	answer_certs(resp, &issued, 1);
	X509_free(issued);
}

static void
handle_cacerts(
    struct est *est, struct http_request *req, struct http_response *resp, struct est_request *r)
{
	struct devid_error e;
	STACK_OF(X509) *cas = NULL;
	X509 **v;
	int n, rc;

	devid_error_clear(&e);
	rc = service_est_cacerts(
	    est->svc, r->has_label ? r->label : NULL, http_request_client_cert(req), &cas, &e);
	if (rc != 0) {
		est_fail(req, resp, r, rc, &e);
		return;
	}
	n = sk_X509_num(cas);
	if ((v = calloc((size_t)n, sizeof(*v))) == NULL) {
		http_error(resp, 500, "internal", "internal error");
	} else {
		for (int i = 0; i < n; i++)
			v[i] = sk_X509_value(cas, i);
		answer_certs(resp, v, (size_t)n);
	}
	free(v);
	sk_X509_pop_free(cas, X509_free);
}

static void
handle_csrattrs(struct http_response *resp)
{
	struct dynbuf *body = http_response_body(resp);
	struct devid_error e;

	devid_error_clear(&e);
	if (est_csrattrs(body, &e) != 0) {
		dynbuf_reset(body);
		http_error(resp, 500, "internal", "internal error");
		return;
	}
	http_response_set_status(resp, 200);
	http_response_set_header(resp, "Content-Type", EST_TYPE_CSRATTRS);
	http_response_set_header(resp, "Content-Transfer-Encoding", "base64");
}

/* Counts an enrollment est_request_parse refused, as the domain counts its own refusals. */
static void
count_refusal(struct service *svc, const struct est_refusal *why)
{
	enum est_reason reason = strcmp(why->code, "client_certificate_required") == 0
	    ? EST_REFUSED_NO_CERTIFICATE
	    : EST_REFUSED_REQUEST;

	counter_add(&svc->metrics.est_refused[reason], 1);
}

void
est_handle(struct http_request *req, struct http_response *resp, void *arg)
{
	struct est *est = arg;
	const char *method = http_request_method(req), *path;
	struct est_refusal why;
	struct est_request r;
	struct devid_error e;
	const uint8_t *body;
	size_t path_len, len;

	path = http_request_path(req, &path_len);
	if (strcmp(path, "/healthz") == 0) {
		http_request_set_route(req, "/healthz");
		http_handle_healthz(req, resp, NULL);
		return;
	}
	devid_error_clear(&e);
	body = http_request_body(req, &len);
	if (est_request_parse(method, path, path_len, http_request_header(req, "Content-Type"),
		body, len, http_request_client_cert(req), &r, &why, &e) != 0) {
		if (why.status != 404)
			http_request_set_route(req, est_route(r.endpoint, r.has_label));
		/* an enrollment refused before the domain saw it (not a stray path or GET) */
		if (r.endpoint != EST_CACERTS && r.endpoint != EST_CSRATTRS && why.status != 404 &&
		    why.status != 405)
			count_refusal(est->svc, &why);
		if (why.allow != NULL)
			http_response_set_header(resp, "Allow", why.allow);
		http_error(resp, why.status, why.code, "%s", e.msg);
		return;
	}
	http_request_set_route(req, est_route(r.endpoint, r.has_label));
	switch (r.endpoint) {
	case EST_CACERTS:
		handle_cacerts(est, req, resp, &r);
		break;
	case EST_SIMPLEENROLL:
	case EST_SIMPLEREENROLL:
		handle_enroll(est, req, resp, &r);
		break;
	case EST_CSRATTRS:
		handle_csrattrs(resp);
		break;
	case EST_TPMACTIVATE:
		handle_tpm_activate(est, req, resp, &r);
		break;
	case EST_TPMENROLL:
		handle_tpm_enroll(est, req, resp, &r);
		break;
	}
	est_request_release(&r);
}
