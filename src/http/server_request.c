/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server_request.c - one request: what the handler may ask of it, the checks before the
 * handler runs, the response and the request's log line and metrics.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>

#include "http/request_id.h"
#include "http/router.h"
#include "lib/json.h"
#include "http/server_internal.h"
#include "lib/log.h"
#include "lib/banned.h"

const char *
http_request_method(const struct http_request *req)
{
	return req->method;
}

const char *
http_request_path(const struct http_request *req, size_t *len)
{
	if (len != NULL)
		*len = req->path_len;
	return req->path;
}

const char *
http_request_query(const struct http_request *req, const char *name)
{
	return uri_query_get(&req->query, name);
}

const char *
http_request_header(const struct http_request *req, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(req->ev), name);
}

const uint8_t *
http_request_body(const struct http_request *req, size_t *len)
{
	*len = req->body_len;
	return req->body;
}

const char *
http_request_peer(const struct http_request *req)
{
	return req->peer;
}

bool
http_request_is_tls(const struct http_request *req)
{
	return req->ssl != NULL;
}

X509 *
http_request_peer_cert(const struct http_request *req)
{
	/* in ANY mode nothing was verified, whatever the verify result says */
	if (req->ssl == NULL || req->w->srv->client_auth == HTTP_CLIENT_AUTH_ANY ||
	    SSL_get_verify_result(req->ssl) != X509_V_OK)
		return NULL;
	return SSL_get0_peer_certificate(req->ssl);
}

STACK_OF(X509) *
http_request_peer_chain(const struct http_request *req)
{
	if (http_request_peer_cert(req) == NULL)
		return NULL;
	return SSL_get0_verified_chain(req->ssl);
}

X509 *
http_request_client_cert(const struct http_request *req)
{
	if (req->ssl == NULL)
		return NULL;
	return SSL_get0_peer_certificate(req->ssl);
}

STACK_OF(X509) *
http_request_client_chain(const struct http_request *req)
{
	if (req->ssl == NULL)
		return NULL;
	return SSL_get_peer_cert_chain(req->ssl);
}

const char *
http_request_param(const struct http_request *req, const char *name)
{
	for (size_t i = 0; i < req->nparams; i++) {
		if (strcmp(req->params[i].name, name) == 0)
			return req->params[i].value;
	}
	return NULL;
}

void
http_request_set_route(struct http_request *req, const char *route)
{
	req->route = route;
}

void
http_request_set_params(struct http_request *req, const struct route_param *params, size_t n)
{
	req->params = params;
	req->nparams = params != NULL ? n : 0;
}

/* --- the response ------------------------------------------------------------------------ */

void
http_response_set_status(struct http_response *resp, int status)
{
	resp->status = status;
}

static bool
header_name_ok(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			strchr("!#$%&'*+-.^_`|~", c) != NULL))
			return false;
	}
	return true;
}

static bool
header_value_ok(const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return false;
	}
	return true;
}

int
http_response_set_header(struct http_response *resp, const char *name, const char *value)
{
	static const char *const owned[] = {
	    "Content-Length", "Transfer-Encoding", "Connection", "Date", "X-Request-Id"};
	struct evkeyvalq *h = evhttp_request_get_output_headers(resp->ev);

	if (!header_name_ok(name) || !header_value_ok(value))
		return DEVID_EINVAL;
	for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++) {
		if (strcasecmp(name, owned[i]) == 0)
			return DEVID_EINVAL;
	}
	while (evhttp_remove_header(h, name) == 0)
		;
	if (evhttp_add_header(h, name, value) != 0)
		return DEVID_EINVAL;
	return 0;
}

void
http_response_set_close(struct http_response *resp)
{
	resp->close = true;
}

struct dynbuf *
http_response_body(struct http_response *resp)
{
	return &resp->body;
}

int
http_json(struct http_response *resp, int status, const json_t *j)
{
	char *s;
	int rc;

	if ((s = json_dump_compact(j)) == NULL)
		return DEVID_ENOMEM;
	dynbuf_reset(&resp->body);
	rc = dynbuf_addstr(&resp->body, s);
	free(s);
	if (rc != 0) {
		dynbuf_reset(&resp->body);
		return rc;
	}
	resp->status = status;
	return http_response_set_header(resp, "Content-Type", "application/json");
}

int
http_verror(struct http_response *resp, int status, const char *code, const char *fmt, va_list ap)
{
	struct devid_error clean;
	char msg[DEVID_ERROR_MAX];
	json_t *j;
	int rc;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	devid_error_set(&clean, 0, "%s", msg); /* valid UTF-8, as JSON needs */
	if ((j = json_pack("{s:s, s:s}", "error", code, "message", clean.msg)) == NULL)
		return DEVID_EINVAL;
	rc = http_json(resp, status, j);
	json_decref(j);
	return rc;
}

int
http_error(struct http_response *resp, int status, const char *code, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = http_verror(resp, status, code, fmt, ap);
	va_end(ap);
	return rc;
}

void
http_handle_healthz(struct http_request *req, struct http_response *resp, void *arg)
{
	json_t *j = json_pack("{s:s}", "status", "ok");

	(void)req;
	(void)arg;
	if (j == NULL || http_json(resp, 200, j) != 0)
		http_error(resp, 500, "internal", "out of memory");
	json_decref(j);
}

void
http_handle_metrics(struct http_request *req, struct http_response *resp, void *arg)
{
	struct metrics *m = arg;
	struct dynbuf *b = http_response_body(resp);

	(void)req;
	if (metrics_render(m, b) != 0) {
		http_error(resp, 500, "internal", "the metrics do not fit in the response");
		return;
	}
	http_response_set_status(resp, 200);
	http_response_set_header(resp, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
}

static void
body_free_cb(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
}

/* Sends resp for req; resp->body is handed to libevent. Returns the status sent. */
static int
response_send(struct http_request *req, struct http_response *resp, size_t *sent)
{
	struct evkeyvalq *oh = evhttp_request_get_output_headers(req->ev);
	struct evbuffer *ob = evhttp_request_get_output_buffer(req->ev);
	bool head = strcmp(req->method, "HEAD") == 0;
	int status = resp->status;
	uint8_t *p;
	size_t len;

	if (status < 200 || status > 599) {
		if (status != 0)
			log_warn("http handler set a bad status",
			    LOG_STR("server", req->w->srv->name), LOG_INT("status", status),
			    LOG_STR("route", req->route));
		evhttp_clear_headers(oh);
		http_error(resp, 500, "internal", "the server did not produce a response");
		status = 500;
	}
	if (evhttp_find_header(oh, "Content-Type") == NULL)
		evhttp_add_header(oh, "Content-Type", "application/octet-stream");
	evhttp_add_header(oh, "X-Content-Type-Options", "nosniff");
	evhttp_add_header(oh, "X-Request-Id", req->request_id);
	if (resp->close)
		evhttp_add_header(oh, "Connection", "close");
	if (status == 204 || status == 304)
		dynbuf_reset(&resp->body);
	p = dynbuf_detach(&resp->body, &len);
	if (p == NULL)
		len = 0;
	*sent = len;
	if (head) {
		char cl[32];

		/* the length the GET would have had, and no body */
		snprintf(cl, sizeof(cl), "%zu", len);
		evhttp_add_header(oh, "Content-Length", cl);
		free(p);
		*sent = 0;
	} else if (len == 0 || evbuffer_add_reference(ob, p, len, body_free_cb, NULL) != 0) {
		free(p);
		*sent = 0;
	}
	http_tl_sending = true;
	evhttp_send_reply(req->ev, status, http_status_phrase(status), NULL);
	http_tl_sending = false;
	return status;
}

/*
 * Checks the header fields: their number, and the framing libevent has read the body by.
 * libevent 2.1.12 (Debian's, with its request-smuggling fixes) still takes the first of two
 * Content-Length fields when no Transfer-Encoding is present, accepts "+5" as a length, and
 * reads a body whose Transfer-Encoding is not chunked as no body at all. A second reader of
 * the same bytes (a proxy in front) may frame them otherwise, so such a request is refused
 * and its connection closed: whatever libevent left unread is never read as a request.
 */
static int
headers_check(struct evhttp_request *ev, struct http_response *resp)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(ev);
	struct evkeyval *kv;
	size_t n = 0, ncl = 0, nte = 0;
	bool bad = false;

	for (kv = TAILQ_FIRST(h); kv != NULL; kv = TAILQ_NEXT(kv, next)) {
		n++;
		if (strcasecmp(kv->key, "Content-Length") == 0) {
			ncl++;
			bad |= kv->value[0] == '\0' ||
			    strspn(kv->value, "0123456789") != strlen(kv->value);
		} else if (strcasecmp(kv->key, "Transfer-Encoding") == 0) {
			nte++;
			bad |= strcasecmp(kv->value, "chunked") != 0;
		}
	}
	if (n > HTTP_MAX_HEADERS) {
		http_error(
		    resp, 431, "too_many_headers", "more than %d header fields", HTTP_MAX_HEADERS);
		return DEVID_ELIMIT;
	}
	if (bad || ncl > 1 || nte > 1 || (ncl > 0 && nte > 0)) {
		resp->close = true;
		http_error(resp, 400, "bad_request",
		    "the body's framing is ambiguous: one Content-Length of digits, or "
		    "\"Transfer-Encoding: chunked\" alone");
		return DEVID_EINVAL;
	}
	return 0;
}

/* The handler blocks the worker: others may accept meanwhile (server_balance.c). */
static void
handler_run(struct http_request *req, struct http_response *resp)
{
	struct http_server *s = req->w->srv;

	http_balance_busy(req->w, true);
	s->handler(req, resp, s->handler_arg);
	http_balance_busy(req->w, false);
}

/*
 * Runs the handler, unless the client has max_client_requests being handled already (on
 * other workers): then 429.
 */
static void
request_handle(
    struct http_request *req, struct http_response *resp, struct evhttp_connection *evcon)
{
	struct http_server *s = req->w->srv;
	char ip[INET6_ADDRSTRLEN];

	if (s->max_client_requests == 0) {
		handler_run(req, resp);
		return;
	}
	http_sockaddr_ip(evcon != NULL ? evhttp_connection_get_addr(evcon) : NULL, ip, sizeof(ip));
	if (!http_clients_take(s->clients, ip, true, s->max_client_requests)) {
		http_response_set_header(resp, "Retry-After", "1");
		http_error(resp, 429, "too_many_requests",
		    "this client has %u requests being handled already", s->max_client_requests);
		return;
	}
	handler_run(req, resp);
	http_clients_release(s->clients, ip, true);
}

/* Checks what the handler must be able to trust: 0, or an error already put in resp. */
static int
request_prepare(struct http_request *req, struct http_response *resp)
{
	struct http_server *s = req->w->srv;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req->ev);
	const char *path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	struct evbuffer *in = evhttp_request_get_input_buffer(req->ev);
	struct devid_error e;
	size_t n, limit;
	int rc = DEVID_ELIMIT;

	devid_error_clear(&e);
	req->raw_path = path != NULL ? path : "";
	n = strlen(req->raw_path);
	if ((rc = headers_check(req->ev, resp)) != 0)
		goto out;
	rc = DEVID_ELIMIT;
	if (n > HTTP_MAX_PATH || (query != NULL && strlen(query) > HTTP_MAX_QUERY)) {
		http_error(resp, 414, "uri_too_long",
		    "the path is limited to %d bytes and the query to %d", HTTP_MAX_PATH,
		    HTTP_MAX_QUERY);
		goto out;
	}
	if ((rc = uri_path_decode(
		 req->raw_path, n, req->path, sizeof(req->path), &req->path_len, &e)) != 0 ||
	    (query != NULL && (rc = uri_query_parse(query, strlen(query), &req->query, &e)) != 0)) {
		http_error(resp, 400, "bad_request", "%s", e.msg);
		goto out;
	}
	/* evhttp enforces the route's limit while reading; this holds even if that changed */
	rc = DEVID_ELIMIT;
	limit = s->body_limit != NULL ? s->body_limit(req->method, req->raw_path, s->body_limit_arg)
				      : 0;
	if (limit == 0)
		limit = s->max_body;
	if ((n = evbuffer_get_length(in)) > limit) {
		http_error(resp, 413, "too_large",
		    "the request body is over the limit of %zu bytes for this route", limit);
		goto out;
	}
	if (n > 0 && (req->body = evbuffer_pullup(in, -1)) == NULL) {
		rc = DEVID_ENOMEM;
		http_error(resp, 500, "internal", "out of memory");
		goto out;
	}
	req->body_len = n;
	rc = 0;
out:
	return rc;
}

void
http_worker_request_cb(struct evhttp_request *ev, void *arg)
{
	static const uint8_t empty[1];
	struct http_worker *w = arg;
	struct http_server *s = w->srv;
	struct evhttp_connection *evcon = evhttp_request_get_connection(ev);
	struct http_request req;
	struct http_response resp;
	/* one byte over the value limit, so the log marks a longer path as cut */
	char path[LOG_VALUE_MAX + 2];
	const char *rid;
	double t0 = http_now(), dt;
	size_t sent = 0;
	int status;

	req.ev = ev;
	req.w = w;
	req.method = http_method_name(evhttp_request_get_command(ev));
	req.raw_path = "";
	req.path[0] = '\0';
	req.path_len = 0;
	req.query.n = 0;
	req.body = empty;
	req.body_len = 0;
	req.ssl = evcon != NULL
	    ? bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(evcon))
	    : NULL;
	req.route = "(none)";
	req.params = NULL;
	req.nparams = 0;
	http_sockaddr_format(
	    evcon != NULL ? evhttp_connection_get_addr(evcon) : NULL, req.peer, sizeof(req.peer));
	rid = evhttp_find_header(evhttp_request_get_input_headers(ev), "X-Request-Id");
	if (rid != NULL && request_id_valid(rid, strlen(rid)))
		snprintf(req.request_id, sizeof(req.request_id), "%s", rid);
	else
		request_id_new(req.request_id);
	log_set_request_id(req.request_id);
	resp.ev = ev;
	resp.status = 0;
	resp.close = false;
	dynbuf_init(&resp.body, s->max_response);

	if (request_prepare(&req, &resp) == 0)
		request_handle(&req, &resp, evcon);
	/* raw_path belongs to ev, which libevent owns once the response is sent */
	snprintf(path, sizeof(path), "%s", req.raw_path);
	status = response_send(&req, &resp, &sent);
	dynbuf_release(&resp.body);

	dt = http_now() - t0;
	log_info("http request", LOG_STR("server", s->name), LOG_STR("method", req.method),
	    LOG_STR("path", path), LOG_STR("route", req.route), LOG_INT("status", status),
	    LOG_DBL("ms", dt * 1000), LOG_INT("bytes", sent), LOG_STR("peer", req.peer));
	log_set_request_id(NULL);
	http_count_request(s, req.method, req.route, status, dt);
	if (req.body_len >= HTTP_TRIM_BODY)
		http_worker_large_body(w);
}
