/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.c - evhttp workers over one shared listening socket (see server.h, docs/http.md).
 *
 * Each worker is a thread with its own event_base and evhttp, accepting on the same
 * listening socket. A worker accepts at most one connection per turn of its loop, so a burst
 * of connections spreads over the idle workers instead of queueing behind one blocking
 * handler. libevent calls worker_request_cb once a request is read whole; the request is
 * checked, handed to the handler, and the response sent, logged and counted.
 *
 * libevent 2.1 answers the requests it cannot parse (bad request line or headers, headers or
 * body over the limits, an Expect it does not know, a method not allowed) itself, with an
 * HTML page, before any callback of ours runs, and has no hook to change that page (2.2 adds
 * evhttp_set_errorcb). So an evbuffer callback watches each connection's output: whatever
 * libevent writes there while no response of ours is being sent is its own, either the
 * "100 Continue" interim line, which passes, or the status line of such an error page, which
 * is replaced by the same status with a JSON body; the end of the buffer is then frozen so
 * the rest of the page cannot follow. libevent closes the connection after those pages.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <openssl/err.h>

#include "http/request_id.h"
#include "http/router.h"
#include "http/server.h"
#include "http/uri.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/xmalloc.h"
#include "lib/banned.h"

/* TLS 1.2 suites: forward-secret AEAD only (TLS 1.3 suites are OpenSSL's defaults). */
#define TLS12_CIPHERS                                                                              \
	"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                               \
	"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                               \
	"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

#define ALLOWED_METHODS                                                                            \
	(EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | \
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH)

/* a pause before accepting again after accept(2) failed for lack of descriptors */
#define ACCEPT_RETRY_MS 100

struct http_worker {
	struct http_server *srv;
	unsigned id;
	pthread_t thread;
	bool started;
	struct event_base *base;
	struct evhttp *http;
	struct evconnlistener *lev; /* owned by http once bound */
	struct event *stop_ev; /* the stop pipe is readable */
	struct event *resume_ev; /* accept again, after one connection or an accept error */
	struct event *grace_ev; /* stop although responses are still being written */
	bool stopping;
	unsigned inflight; /* responses handed to libevent and not yet written out */
};

struct http_server {
	char name[32];
	char address[HTTP_MAX_LISTEN_LEN + 16];
	uint16_t port;
	int listen_fd;
	int stop_pipe[2];
	atomic_int stop_requested;
	bool ran;
	size_t max_body;
	size_t max_header_bytes;
	size_t max_response;
	unsigned timeout_secs;
	unsigned nworkers;
	struct http_worker *workers;
	SSL_CTX *ssl_ctx; /* replaced by http_server_reload_tls: read under tls_lock */
	pthread_mutex_t tls_lock;
	struct http_server_opts tls_opts; /* what ssl_ctx was made from, for a reload */
	enum http_client_auth client_auth;
	http_handler_fn *handler;
	void *handler_arg;
	struct metrics *metrics;
	bool own_metrics;
	struct metric_family *m_requests; /* {server, method, route, status} */
	struct metric_family *m_duration; /* {server, route} */
	struct metric_family *m_connections; /* {server} */
};

struct http_request {
	struct evhttp_request *ev;
	struct http_worker *w;
	const char *method;
	const char *raw_path; /* as received, percent-encoded: for the log only */
	char request_id[HTTP_MAX_REQUEST_ID + 1]; /* on every log line of the request */
	char path[HTTP_MAX_PATH + 1];
	size_t path_len;
	struct uri_query query;
	const uint8_t *body;
	size_t body_len;
	char peer[INET6_ADDRSTRLEN + 16];
	SSL *ssl;
	const char *route;
	const struct route_param *params;
	size_t nparams;
};

struct http_response {
	struct evhttp_request *ev;
	int status;
	bool close; /* close the connection after this response */
	struct dynbuf body;
};

/* The worker running on this thread; what libevent's callbacks below it may use. */
static _Thread_local struct http_worker *tl_worker;
/* True while this thread hands a response of ours to libevent. */
static _Thread_local bool tl_sending;
/* True while the output callback rewrites a buffer (its own changes call it again). */
static _Thread_local bool tl_rewriting;

static pthread_once_t libevent_once = PTHREAD_ONCE_INIT;

static const double duration_bounds[] = {
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

static const char *
status_phrase(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 302:
		return "Found";
	case 304:
		return "Not Modified";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 403:
		return "Forbidden";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 411:
		return "Length Required";
	case 413:
		return "Payload Too Large";
	case 414:
		return "URI Too Long";
	case 415:
		return "Unsupported Media Type";
	case 417:
		return "Expectation Failed";
	case 429:
		return "Too Many Requests";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	case 503:
		return "Service Unavailable";
	default:
		return status < 400 ? "OK" : "Error";
	}
}

/* --- libevent's own log lines go to ours ----------------------------------------------- */

static void
libevent_log_cb(int severity, const char *msg)
{
	/* libevent's messages hold no request data (no headers, no bodies) */
	if (severity >= EVENT_LOG_WARN)
		log_warn("libevent message", LOG_STR("text", msg));
	else
		log_debug("libevent message", LOG_STR("text", msg));
}

static void
libevent_init(void)
{
	event_set_log_callback(libevent_log_cb);
}

/* --- small helpers ---------------------------------------------------------------------- */

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
sockaddr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (sa != NULL && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)(const void *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, (unsigned)ntohs(s6->sin6_port));
	} else if (sa != NULL && sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)(const void *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, (unsigned)ntohs(s4->sin_port));
	} else {
		snprintf(buf, len, "unknown");
	}
}

static void
fd_peer(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
		snprintf(buf, len, "unknown");
	else
		sockaddr_format((struct sockaddr *)&ss, buf, len);
}

static const char *
method_name(enum evhttp_cmd_type t)
{
	switch (t) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	default:
		return "OTHER"; /* not reached: evhttp refuses methods outside ALLOWED_METHODS */
	}
}

static void
count_request(
    struct http_server *s, const char *method, const char *route, int status, double seconds)
{
	char st[8];
	const char *rv[] = {s->name, method, route, st};
	const char *dv[] = {s->name, route};

	snprintf(st, sizeof(st), "%d", status);
	metric_inc(metric_get(s->m_requests, rv));
	if (seconds >= 0)
		metric_observe(metric_get(s->m_duration, dv), seconds);
}

/* {"error":code,"message":msg} as a malloc'ed string; msg must be valid UTF-8. */
static char *
error_json(const char *code, const char *msg)
{
	json_t *j = json_pack("{s:s, s:s}", "error", code, "message", msg);
	char *s;

	if (j == NULL)
		return NULL;
	s = json_dump_compact(j);
	json_decref(j);
	return s;
}

/* --- libevent's own error pages become JSON ---------------------------------------------- */

/* Parses "HTTP/d.d ddd " at the start of line. */
static bool
status_line_parse(const char *line, int *major, int *minor, int *status)
{
	if (strncmp(line, "HTTP/", 5) != 0 || line[5] < '0' || line[5] > '9' || line[6] != '.' ||
	    line[7] < '0' || line[7] > '9' || line[8] != ' ')
		return false;
	for (int i = 9; i < 12; i++) {
		if (line[i] < '0' || line[i] > '9')
			return false;
	}
	*major = line[5] - '0';
	*minor = line[7] - '0';
	*status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
	return true;
}

static void
rejection_describe(
    const struct http_server *s, int status, const char **code, char *msg, size_t len)
{
	switch (status) {
	case 413:
		*code = "too_large";
		snprintf(msg, len, "the request body is over the limit of %zu bytes", s->max_body);
		break;
	case 417:
		*code = "expectation_failed";
		snprintf(msg, len, "only \"Expect: 100-continue\" is understood");
		break;
	case 501:
		*code = "not_implemented";
		snprintf(msg, len, "the request method is not supported");
		break;
	case 400:
		*code = "bad_request";
		snprintf(msg, len,
		    "the request could not be parsed as HTTP/1.1, or its request line and headers "
		    "are over the limit of %zu bytes",
		    s->max_header_bytes);
		break;
	default:
		*code = "error";
		snprintf(msg, len, "the request was refused");
		break;
	}
}

/*
 * Output callback of every connection (arg: its bufferevent). Bytes added while no response
 * of ours is being sent were written by libevent itself: see the comment at the top.
 */
static void
conn_output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct bufferevent *bev = arg;
	struct http_worker *w = tl_worker;
	struct evbuffer_ptr pos;
	struct evbuffer *tmp;
	char line[16], msg[256], peer[INET6_ADDRSTRLEN + 16];
	const char *code;
	char *body;
	int major, minor, status;

	if (info->n_added == 0 || tl_sending || tl_rewriting || w == NULL)
		return;
	memset(line, 0, sizeof(line));
	if (info->n_added < 13 ||
	    evbuffer_ptr_set(buf, &pos, info->orig_size, EVBUFFER_PTR_SET) != 0 ||
	    evbuffer_copyout_from(buf, &pos, line, 13) != 13 ||
	    !status_line_parse(line, &major, &minor, &status))
		return; /* not a status line: nothing libevent writes on its own */
	if (status == 100)
		return;

	rejection_describe(w->srv, status, &code, msg, sizeof(msg));
	body = error_json(code, msg);
	tl_rewriting = true;
	/* keep what was queued before libevent's status line, drop the line */
	if ((tmp = evbuffer_new()) != NULL) {
		evbuffer_add_buffer(tmp, buf);
		evbuffer_remove_buffer(tmp, buf, info->orig_size);
		evbuffer_free(tmp);
	}
	evbuffer_add_printf(buf,
	    "HTTP/%d.%d %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\nX-Content-Type-Options: nosniff\r\n\r\n%s",
	    major, minor, status, status_phrase(status), body != NULL ? strlen(body) : 0,
	    body != NULL ? body : "");
	/* the rest of libevent's page (headers, HTML) cannot be added any more */
	evbuffer_freeze(buf, 0);
	tl_rewriting = false;
	free(body);

	fd_peer(bufferevent_getfd(bev), peer, sizeof(peer));
	log_info("http rejected", LOG_STR("server", w->srv->name), LOG_INT("status", status),
	    LOG_STR("peer", peer), LOG_STR("reason", code));
	count_request(w->srv, "-", "(rejected)", status, -1);
}

/* --- the request ------------------------------------------------------------------------- */

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

/* --- one request ------------------------------------------------------------------------- */

static void
body_free_cb(const void *data, size_t len, void *arg)
{
	(void)len;
	(void)arg;
	free((void *)data);
}

static void
request_complete_cb(struct evhttp_request *ev, void *arg)
{
	struct http_worker *w = arg;

	(void)ev;
	if (w->inflight > 0)
		w->inflight--;
	if (w->stopping && w->inflight == 0)
		event_base_loopbreak(w->base);
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
	evhttp_request_set_on_complete_cb(req->ev, request_complete_cb, req->w);
	req->w->inflight++;
	tl_sending = true;
	evhttp_send_reply(req->ev, status, status_phrase(status), NULL);
	tl_sending = false;
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
	size_t n;
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
	/* evhttp enforces max_body while reading; this holds even if that ever changed */
	rc = DEVID_ELIMIT;
	if ((n = evbuffer_get_length(in)) > s->max_body) {
		http_error(resp, 413, "too_large",
		    "the request body is over the limit of %zu bytes", s->max_body);
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

static void
worker_request_cb(struct evhttp_request *ev, void *arg)
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
	double t0 = now_seconds(), dt;
	size_t sent = 0;
	int status;

	req.ev = ev;
	req.w = w;
	req.method = method_name(evhttp_request_get_command(ev));
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
	sockaddr_format(
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
		s->handler(&req, &resp, s->handler_arg);
	/* raw_path belongs to ev, which libevent owns once the response is sent */
	snprintf(path, sizeof(path), "%s", req.raw_path);
	status = response_send(&req, &resp, &sent);
	dynbuf_release(&resp.body);

	dt = now_seconds() - t0;
	log_info("http request", LOG_STR("server", s->name), LOG_STR("method", req.method),
	    LOG_STR("path", path), LOG_STR("route", req.route), LOG_INT("status", status),
	    LOG_DBL("ms", dt * 1000), LOG_INT("bytes", sent), LOG_STR("peer", req.peer));
	log_set_request_id(NULL);
	count_request(s, req.method, req.route, status, dt);
}

/* --- workers ------------------------------------------------------------------------------ */

/* evhttp asks for each accepted connection's bufferevent: TLS or plain, watched for errors. */
static struct bufferevent *
worker_bev_cb(struct event_base *base, void *arg)
{
	struct http_worker *w = arg;
	struct http_server *s = w->srv;
	const char *lv[] = {s->name};
	struct bufferevent *bev;
	SSL *ssl;

	/* one connection per turn of the loop: the next may go to an idle worker */
	evconnlistener_disable(w->lev);
	event_active(w->resume_ev, EV_TIMEOUT, 0);
	metric_inc(metric_get(s->m_connections, lv));

	if (s->ssl_ctx != NULL) {
		/* never NULL on the TLS port: evhttp would fall back to plain text */
		pthread_mutex_lock(&s->tls_lock);
		ssl = SSL_new(s->ssl_ctx); /* holds its context: a reload frees only the server's */
		pthread_mutex_unlock(&s->tls_lock);
		if (ssl == NULL) {
			log_error(
			    "http out of memory for a TLS connection", LOG_STR("server", s->name));
			abort();
		}
		bev = bufferevent_openssl_socket_new(
		    base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		if (bev == NULL) {
			log_error(
			    "http out of memory for a TLS connection", LOG_STR("server", s->name));
			abort();
		}
		/* clients that close without close_notify are common and harmless here */
		bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	} else if ((bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		return NULL; /* evhttp makes its own plain one, or drops the connection */
	}
	evbuffer_add_cb(bufferevent_get_output(bev), conn_output_cb, bev);
	return bev;
}

static void
worker_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_worker *w = arg;

	(void)fd;
	(void)what;
	if (!w->stopping)
		evconnlistener_enable(w->lev);
}

/* accept(2) failed for good reason (EMFILE, ENFILE, ENOBUFS): pause instead of spinning. */
static void
worker_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct http_worker *w = arg;
	struct timeval tv = {0, ACCEPT_RETRY_MS * 1000};
	int err = errno;

	log_warn("http accept failed", LOG_STR("server", w->srv->name),
	    LOG_STR("error", strerror(err)), LOG_INT("retry_ms", ACCEPT_RETRY_MS));
	evconnlistener_disable(lev);
	event_add(w->resume_ev, &tv);
}

static void
worker_grace_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_worker *w = arg;

	(void)fd;
	(void)what;
	if (w->inflight > 0)
		log_warn("http worker stopping with responses unsent",
		    LOG_STR("server", w->srv->name), LOG_INT("worker", w->id),
		    LOG_INT("unsent", w->inflight));
	event_base_loopbreak(w->base);
}

static void
worker_stop_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_worker *w = arg;
	struct timeval tv = {HTTP_STOP_GRACE_MS / 1000, (HTTP_STOP_GRACE_MS % 1000) * 1000};

	(void)fd;
	(void)what;
	/* the byte stays in the pipe, so every worker sees it; stop watching it */
	event_del(w->stop_ev);
	w->stopping = true;
	evconnlistener_disable(w->lev);
	if (w->inflight == 0)
		event_base_loopbreak(w->base);
	else
		evtimer_add(w->grace_ev, &tv);
}

static void *
worker_main(void *arg)
{
	struct http_worker *w = arg;

	tl_worker = w;
	evconnlistener_enable(w->lev);
	event_base_dispatch(w->base);
	tl_worker = NULL;
	return NULL;
}

static int
worker_init(struct http_server *s, struct http_worker *w, unsigned id, struct devid_error *e)
{
	w->srv = s;
	w->id = id;
	if ((w->base = event_base_new()) == NULL || (w->http = evhttp_new(w->base)) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "http: worker %u: no event loop", id);
	evhttp_set_max_headers_size(w->http, (ev_ssize_t)s->max_header_bytes);
	evhttp_set_max_body_size(w->http, (ev_ssize_t)s->max_body);
	evhttp_set_timeout(w->http, (int)s->timeout_secs);
	evhttp_set_allowed_methods(w->http, ALLOWED_METHODS);
	evhttp_set_default_content_type(w->http, "application/octet-stream");
	evhttp_set_gencb(w->http, worker_request_cb, w);
	evhttp_set_bevcb(w->http, worker_bev_cb, w);
	/* backlog 0: the socket listens already; no CLOSE_ON_FREE: the workers share it */
	w->lev = evconnlistener_new(
	    w->base, NULL, NULL, LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_DISABLED, 0, s->listen_fd);
	if (w->lev == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "http: worker %u: no listener", id);
	if (evhttp_bind_listener(w->http, w->lev) == NULL) {
		evconnlistener_free(w->lev);
		w->lev = NULL;
		return devid_error_set(e, DEVID_ENOMEM, "http: worker %u: no listener", id);
	}
	evconnlistener_set_error_cb(w->lev, worker_accept_error_cb);
	w->stop_ev = event_new(w->base, s->stop_pipe[0], EV_READ | EV_PERSIST, worker_stop_cb, w);
	w->resume_ev = event_new(w->base, -1, 0, worker_resume_cb, w);
	w->grace_ev = evtimer_new(w->base, worker_grace_cb, w);
	if (w->stop_ev == NULL || w->resume_ev == NULL || w->grace_ev == NULL ||
	    event_add(w->stop_ev, NULL) != 0)
		return devid_error_set(e, DEVID_ENOMEM, "http: worker %u: no events", id);
	return 0;
}

static void
worker_release(struct http_worker *w)
{
	/* evhttp_free closes the connections and frees the listener (not the socket) */
	if (w->http != NULL)
		evhttp_free(w->http);
	if (w->stop_ev != NULL)
		event_free(w->stop_ev);
	if (w->resume_ev != NULL)
		event_free(w->resume_ev);
	if (w->grace_ev != NULL)
		event_free(w->grace_ev);
	if (w->base != NULL)
		event_base_free(w->base);
}

/* --- options ------------------------------------------------------------------------------ */

static int
port_parse(const char *s, uint16_t *port)
{
	unsigned long v = 0;
	size_t n = strlen(s);

	if (n == 0 || n > 5)
		return DEVID_EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return DEVID_EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > 65535)
		return DEVID_EINVAL;
	*port = (uint16_t)v;
	return 0;
}

/* "ADDR:PORT", "[V6]:PORT", ":PORT" or "PORT" into a socket address. */
static int
listen_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *sl, struct devid_error *e)
{
	char host[HTTP_MAX_LISTEN_LEN + 1];
	const char *port_s;
	uint16_t port;

	memset(ss, 0, sizeof(*ss));
	if (strlen(spec) > HTTP_MAX_LISTEN_LEN)
		return devid_error_set(
		    e, DEVID_EINVAL, "listen: longer than %d characters", HTTP_MAX_LISTEN_LEN);
	if (spec[0] == '[') {
		const char *rb = strchr(spec, ']');

		if (rb == NULL || rb[1] != ':')
			return devid_error_set(
			    e, DEVID_EINVAL, "listen \"%s\": expected [IPv6]:PORT", spec);
		snprintf(host, sizeof(host), "%.*s", (int)(rb - spec - 1), spec + 1);
		port_s = rb + 2;
	} else {
		const char *colon = strrchr(spec, ':');

		if (colon == NULL) {
			host[0] = '\0';
			port_s = spec;
		} else {
			snprintf(host, sizeof(host), "%.*s", (int)(colon - spec), spec);
			port_s = colon + 1;
		}
		if (strchr(host, ':') != NULL)
			return devid_error_set(e, DEVID_EINVAL,
			    "listen \"%s\": an IPv6 address goes in brackets: [ADDR]:PORT", spec);
	}
	if (port_parse(port_s, &port) != 0)
		return devid_error_set(
		    e, DEVID_EINVAL, "listen \"%s\": port is not 0 to 65535", spec);
	if (spec[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return devid_error_set(e, DEVID_EINVAL,
			    "listen \"%s\": \"%s\" is not a numeric IPv6 address", spec, host);
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		*sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		if (host[0] == '\0')
			snprintf(host, sizeof(host), "127.0.0.1");
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return devid_error_set(e, DEVID_EINVAL,
			    "listen \"%s\": \"%s\" is not a numeric IPv4 address", spec, host);
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		*sl = sizeof(*s4);
	}
	return 0;
}

int
http_listen_check(const char *spec, struct devid_error *e)
{
	struct sockaddr_storage ss;
	socklen_t sl;

	return listen_parse(spec, &ss, &sl, e);
}

static int
listen_open(struct http_server *s, const char *spec, struct devid_error *e)
{
	struct sockaddr_storage ss, bound;
	socklen_t sl = 0, bl = sizeof(bound);
	int one = 1, rc;

	if ((rc = listen_parse(spec, &ss, &sl, e)) != 0)
		return rc;
	s->listen_fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->listen_fd < 0)
		return devid_error_set(
		    e, DEVID_EIO, "listen %s: socket: %s", spec, strerror(errno));
	setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(s->listen_fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(s->listen_fd, (struct sockaddr *)&ss, sl) != 0)
		return devid_error_set(e, DEVID_EIO, "listen %s: bind: %s", spec, strerror(errno));
	if (listen(s->listen_fd, HTTP_LISTEN_BACKLOG) != 0)
		return devid_error_set(e, DEVID_EIO, "listen %s: %s", spec, strerror(errno));
	if (getsockname(s->listen_fd, (struct sockaddr *)&bound, &bl) != 0)
		return devid_error_set(
		    e, DEVID_EIO, "listen %s: getsockname: %s", spec, strerror(errno));
	sockaddr_format((struct sockaddr *)&bound, s->address, sizeof(s->address));
	s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
						    : ((struct sockaddr_in *)&bound)->sin_port);
	return 0;
}

/* The server of an SSL, set as the context's app data by tls_ctx_new. */
static const struct http_server *
ssl_server(const SSL *ssl)
{
	return SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
}

/* A phrase as one log value: "unknown CA" becomes unknown_CA. */
static void
log_word(const char *s, char *out, size_t len)
{
	size_t o = 0;

	for (; *s != '\0' && o + 1 < len; s++)
		out[o++] = (*s > 0x20 && *s < 0x7f && *s != '"' && *s != '\\') ? *s : '_';
	out[o] = '\0';
}

/* Logs a refused handshake: the fatal alert the server sends, and to whom. */
static void
tls_info_cb(const SSL *ssl, int where, int ret)
{
	char peer[INET6_ADDRSTRLEN + 16], alert[64];

	if ((where & SSL_CB_WRITE_ALERT) == 0 || (ret >> 8) != SSL3_AL_FATAL)
		return;
	fd_peer(SSL_get_fd(ssl), peer, sizeof(peer));
	/* OpenSSL 3.0 has no name for TLS 1.3's certificate_required (116) */
	log_word((ret & 0xff) == 116 ? "certificate required" : SSL_alert_desc_string_long(ret),
	    alert, sizeof(alert));
	log_info("http tls refused", LOG_STR("server", ssl_server(ssl)->name),
	    LOG_STR("peer", peer), LOG_STR("alert", alert));
}

/* Logs why a client certificate did not verify (the alert alone says little). */
static int
tls_verify_cb(int ok, X509_STORE_CTX *x)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
	char peer[INET6_ADDRSTRLEN + 16], reason[128];

	if (!ok && ssl != NULL) {
		fd_peer(SSL_get_fd(ssl), peer, sizeof(peer));
		log_word(X509_verify_cert_error_string(X509_STORE_CTX_get_error(x)), reason,
		    sizeof(reason));
		log_info("http client certificate rejected",
		    LOG_STR("server", ssl_server(ssl)->name), LOG_STR("peer", peer),
		    LOG_INT("depth", X509_STORE_CTX_get_error_depth(x)), LOG_STR("reason", reason));
	}
	return ok;
}

/*
 * HTTP_CLIENT_AUTH_ANY: every certificate passes TLS, which has no anchors to judge it by;
 * the handshake still proves the client holds the certificate's key (CertificateVerify).
 */
static int
tls_verify_any_cb(int ok, X509_STORE_CTX *x)
{
	(void)ok;
	(void)x;
	return 1;
}

static SSL_CTX *
tls_ctx_new(struct http_server *s, const struct http_server_opts *o, struct devid_error *e)
{
	static const unsigned char sid[] = "devid-http";
	STACK_OF(X509_NAME) *names;
	SSL_CTX *ctx = NULL, *ret = NULL;
	int mode;

	if (o->tls_key == NULL) {
		devid_error_set(e, DEVID_EINVAL, "tls: a certificate needs its key (tls_key)");
		goto out;
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		devid_error_ssl(e, DEVID_ECRYPTO, "tls: context");
		goto out;
	}
	SSL_CTX_set_app_data(ctx, s);
	SSL_CTX_set_info_callback(ctx, tls_info_cb);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(
	    ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
	if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1) {
		devid_error_ssl(e, DEVID_ECRYPTO, "tls: cipher list");
		goto out;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, o->tls_cert) != 1) {
		devid_error_ssl(e, DEVID_ECRYPTO, "tls: certificate chain %s", o->tls_cert);
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, o->tls_key, SSL_FILETYPE_PEM) != 1) {
		devid_error_ssl(e, DEVID_ECRYPTO, "tls: private key %s", o->tls_key);
		goto out;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		devid_error_ssl(
		    e, DEVID_ECRYPTO, "tls: %s is not the key of %s", o->tls_key, o->tls_cert);
		goto out;
	}
	/* resumed sessions keep the client's verified identity: name whose sessions they are */
	SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
	if (o->client_auth == HTTP_CLIENT_AUTH_ANY) {
		if (o->tls_ca_file != NULL || o->tls_ca_store != NULL) {
			devid_error_set(e, DEVID_EINVAL,
			    "tls: client_auth any verifies no chain: give no client CA");
			goto out;
		}
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, tls_verify_any_cb);
		SSL_CTX_set_verify_depth(ctx, HTTP_TLS_VERIFY_DEPTH);
		/* no resumption: a resumed session from a ticket keeps the leaf but not the
		 * chain the handler must verify, nor a fresh proof of possession */
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
		SSL_CTX_set_num_tickets(ctx, 0);
	} else if (o->client_auth != HTTP_CLIENT_AUTH_NONE) {
		if ((o->tls_ca_file == NULL) == (o->tls_ca_store == NULL)) {
			devid_error_set(e, DEVID_EINVAL,
			    "tls: client certificates need exactly one of tls_ca_file, "
			    "tls_ca_store");
			goto out;
		}
		if (o->tls_ca_file != NULL) {
			if (SSL_CTX_load_verify_locations(ctx, o->tls_ca_file, NULL) != 1) {
				devid_error_ssl(
				    e, DEVID_ECRYPTO, "tls: client CA file %s", o->tls_ca_file);
				goto out;
			}
			/* tell clients which CAs we accept, so they pick the right certificate */
			if ((names = SSL_load_client_CA_file(o->tls_ca_file)) != NULL)
				SSL_CTX_set_client_CA_list(ctx, names);
		} else {
			SSL_CTX_set1_cert_store(ctx, o->tls_ca_store); /* takes a reference */
		}
		mode = SSL_VERIFY_PEER;
		if (o->client_auth == HTTP_CLIENT_AUTH_REQUIRE)
			mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
		SSL_CTX_set_verify(ctx, mode, tls_verify_cb);
		SSL_CTX_set_verify_depth(ctx, HTTP_TLS_VERIFY_DEPTH);
	} else if (o->tls_ca_file != NULL || o->tls_ca_store != NULL) {
		devid_error_set(
		    e, DEVID_EINVAL, "tls: a client CA is given but client_auth is none");
		goto out;
	}
	ret = ctx;
	ctx = NULL;
out:
	SSL_CTX_free(ctx);
	return ret;
}

/* --- the server ----------------------------------------------------------------------------- */

struct http_server *
http_server_new(const struct http_server_opts *o, struct devid_error *e)
{
	static const char *const req_labels[] = {"server", "method", "route", "status"};
	static const char *const dur_labels[] = {"server", "route"};
	static const char *const conn_labels[] = {"server"};
	struct http_server *s = NULL, *ret = NULL;
	unsigned i;

	pthread_once(&libevent_once, libevent_init);
	if (o->handler == NULL) {
		devid_error_set(e, DEVID_EINVAL, "http: no request handler");
		goto out;
	}
	if (o->threads > HTTP_MAX_THREADS) {
		devid_error_set(
		    e, DEVID_EINVAL, "http: %u threads, limit %d", o->threads, HTTP_MAX_THREADS);
		goto out;
	}
	if (o->max_body > (size_t)INT64_MAX / 2 || o->max_header_bytes > (size_t)INT64_MAX / 2) {
		devid_error_set(e, DEVID_EINVAL, "http: body or header limit out of range");
		goto out;
	}
	if (o->tls_cert == NULL &&
	    (o->client_auth != HTTP_CLIENT_AUTH_NONE || o->tls_key != NULL)) {
		devid_error_set(e, DEVID_EINVAL, "http: TLS options without tls_cert");
		goto out;
	}
	s = xcalloc(1, sizeof(*s));
	pthread_mutex_init(&s->tls_lock, NULL);
	s->listen_fd = -1;
	s->stop_pipe[0] = s->stop_pipe[1] = -1;
	atomic_init(&s->stop_requested, 0);
	snprintf(s->name, sizeof(s->name), "%s", o->name != NULL ? o->name : "http");
	s->nworkers = o->threads != 0 ? o->threads : HTTP_DEFAULT_THREADS;
	s->max_body = o->max_body != 0 ? o->max_body : HTTP_DEFAULT_MAX_BODY;
	s->max_header_bytes =
	    o->max_header_bytes != 0 ? o->max_header_bytes : HTTP_DEFAULT_MAX_HEADER_BYTES;
	s->max_response = o->max_response != 0 ? o->max_response : HTTP_DEFAULT_MAX_RESPONSE;
	s->timeout_secs = o->timeout_secs != 0 ? o->timeout_secs : HTTP_DEFAULT_TIMEOUT_SECS;
	s->client_auth = o->client_auth;
	s->handler = o->handler;
	s->handler_arg = o->handler_arg;
	if (o->metrics != NULL) {
		s->metrics = o->metrics;
	} else {
		s->metrics = metrics_new();
		s->own_metrics = true;
	}
	s->m_requests = metrics_register(s->metrics, METRIC_COUNTER, "http_requests_total",
	    "HTTP requests answered, by route pattern and status", req_labels, 4, NULL, 0, e);
	s->m_duration =
	    metrics_register(s->metrics, METRIC_HISTOGRAM, "http_request_duration_seconds",
		"Time from a request read whole to its response handed to the network", dur_labels,
		2, duration_bounds, sizeof(duration_bounds) / sizeof(duration_bounds[0]), e);
	s->m_connections = metrics_register(s->metrics, METRIC_COUNTER, "http_connections_total",
	    "TCP connections accepted", conn_labels, 1, NULL, 0, e);
	if (s->m_requests == NULL || s->m_duration == NULL || s->m_connections == NULL) {
		devid_error_prefix(e, "http");
		goto out;
	}
	s->tls_opts = *o;
	if (o->tls_cert != NULL && (s->ssl_ctx = tls_ctx_new(s, o, e)) == NULL)
		goto out;
	if (pipe2(s->stop_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
		devid_error_set(e, DEVID_EIO, "http: pipe: %s", strerror(errno));
		goto out;
	}
	if (listen_open(s, o->listen != NULL ? o->listen : "127.0.0.1:0", e) != 0)
		goto out;
	s->workers = xcalloc(s->nworkers, sizeof(*s->workers));
	for (i = 0; i < s->nworkers; i++) {
		if (worker_init(s, &s->workers[i], i, e) != 0)
			goto out;
	}
	ret = s;
	s = NULL;
out:
	http_server_free(s);
	return ret;
}

uint16_t
http_server_port(const struct http_server *s)
{
	return s->port;
}

const char *
http_server_address(const struct http_server *s)
{
	return s->address;
}

struct metrics *
http_server_metrics(const struct http_server *s)
{
	return s->metrics;
}

int
http_server_run(struct http_server *s)
{
	sigset_t all, old;
	unsigned i, started = 0;
	int rc = 0, err;

	if (s->ran)
		return DEVID_EINVAL;
	s->ran = true;
	/*
	 * Workers take no asynchronous signals (they go to the caller's threads), and a write
	 * to a closed connection fails with EPIPE instead of killing the process with SIGPIPE.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < s->nworkers; i++) {
		if ((err = pthread_create(
			 &s->workers[i].thread, NULL, worker_main, &s->workers[i])) != 0) {
			log_error("http cannot start a worker", LOG_STR("server", s->name),
			    LOG_INT("worker", i), LOG_STR("error", strerror(err)));
			rc = DEVID_EIO;
			http_server_stop(s);
			break;
		}
		s->workers[i].started = true;
		started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		log_info("http listening", LOG_STR("server", s->name),
		    LOG_STR("address", s->address), LOG_INT("threads", s->nworkers),
		    LOG_STR("tls", s->ssl_ctx != NULL ? "yes" : "no"));
	for (i = 0; i < s->nworkers; i++) {
		if (s->workers[i].started)
			pthread_join(s->workers[i].thread, NULL);
		s->workers[i].started = false;
	}
	if (started > 0)
		log_info("http stopped", LOG_STR("server", s->name));
	return rc;
}

void
http_server_stop(struct http_server *s)
{
	int saved = errno; /* a signal handler must leave errno as it found it */

	if (atomic_exchange(&s->stop_requested, 1) == 0 && s->stop_pipe[1] >= 0) {
		ssize_t r = write(s->stop_pipe[1], "x", 1);

		(void)r; /* a full pipe already holds a stop */
	}
	errno = saved;
}

void
http_server_free(struct http_server *s)
{
	if (s == NULL)
		return;
	if (s->workers != NULL) {
		for (unsigned i = 0; i < s->nworkers; i++)
			worker_release(&s->workers[i]);
		free(s->workers);
	}
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->stop_pipe[0] >= 0)
		close(s->stop_pipe[0]);
	if (s->stop_pipe[1] >= 0)
		close(s->stop_pipe[1]);
	SSL_CTX_free(s->ssl_ctx);
	pthread_mutex_destroy(&s->tls_lock);
	if (s->own_metrics)
		metrics_free(s->metrics);
	free(s);
}

int
http_server_reload_tls(struct http_server *s, X509_STORE *ca_store, struct devid_error *e)
{
	struct http_server_opts o = s->tls_opts;
	SSL_CTX *ctx, *old;

	if (s->ssl_ctx == NULL)
		return 0;
	if (ca_store != NULL)
		o.tls_ca_store = ca_store;
	if ((ctx = tls_ctx_new(s, &o, e)) == NULL)
		return e->code;
	pthread_mutex_lock(&s->tls_lock);
	old = s->ssl_ctx;
	s->ssl_ctx = ctx;
	s->tls_opts = o;
	pthread_mutex_unlock(&s->tls_lock);
	SSL_CTX_free(old); /* connections made with it keep it until they end */
	return 0;
}
