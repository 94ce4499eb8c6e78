/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.c - evhttp workers over one shared listening socket (see server.h, docs/http.md).
 *
 * Each worker is a thread with its own event_base and evhttp, accepting on the same
 * listening socket. A worker accepts at most one connection per turn of its loop, and only
 * while no other worker free to accept holds fewer connections (server_balance.c), so
 * connections spread over the workers instead of queueing behind one blocking handler. libevent
 * calls http_worker_request_cb (server_request.c) once a request is read whole; the request is
 * checked, handed to the handler, and the response sent, logged and counted. The other parts are
 * named in server_internal.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "lib/json.h"
#include "lib/xmalloc.h"
#include "http/server_internal.h"
#include "lib/log.h"
#include "lib/banned.h"

/* a pause before accepting again after accept(2) failed for lack of descriptors */
#define ACCEPT_RETRY_MS 100

_Thread_local struct http_worker *http_tl_worker;
_Thread_local bool http_tl_sending;

static pthread_once_t libevent_once = PTHREAD_ONCE_INIT;

static const double duration_bounds[] = {
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

const char *
http_status_phrase(int status)
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

double
http_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
http_sockaddr_format(const struct sockaddr *sa, char *buf, size_t len)
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

void
http_sockaddr_ip(const struct sockaddr *sa, char *buf, size_t len)
{
	const void *addr = NULL;

	if (sa != NULL && sa->sa_family == AF_INET6)
		addr = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	else if (sa != NULL && sa->sa_family == AF_INET)
		addr = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	if (addr == NULL || inet_ntop(sa->sa_family, addr, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "unknown");
}

void
http_fd_peer(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
		snprintf(buf, len, "unknown");
	else
		http_sockaddr_format((struct sockaddr *)&ss, buf, len);
}

const char *
http_method_name(enum evhttp_cmd_type t)
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

void
http_count_request(
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
char *
http_error_json(const char *code, const char *msg)
{
	json_t *j = json_pack("{s:s, s:s}", "error", code, "message", msg);
	char *s;

	if (j == NULL)
		return NULL;
	s = json_dump_compact(j);
	json_decref(j);
	return s;
}

/* --- workers ------------------------------------------------------------------------------ */

static void
worker_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http_worker *w = arg;

	(void)fd;
	(void)what;
	http_balance_resume(w);
}

/* accept(2) failed for good reason (EMFILE, ENFILE, ENOBUFS): pause instead of spinning. */
static void
worker_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	/* not arg: evhttp_bind_listener made the listener's argument the evhttp */
	struct http_worker *w = http_tl_worker;
	struct timeval tv = {0, ACCEPT_RETRY_MS * 1000};
	int err = errno;

	(void)arg;
	if (atomic_load(&w->srv->stop_requested)) {
		evconnlistener_disable(lev); /* http_server_stop shut the socket */
		return;
	}
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

/*
 * A large body (and what its handler parsed) leaves the heaps of the worker and of the
 * handler's threads holding tens of megabytes that glibc keeps for the next request: an
 * idle server gives them back. The timer is pushed back by every large body, so an upload's
 * pages do not pay for it one by one.
 */
static void
worker_trim_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	malloc_trim(0);
}

void
http_worker_large_body(struct http_worker *w)
{
	struct timeval tv = {HTTP_TRIM_DELAY_MS / 1000, (HTTP_TRIM_DELAY_MS % 1000) * 1000};

	evtimer_add(w->trim_ev, &tv);
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

	http_tl_worker = w;
	evconnlistener_enable(w->lev);
	event_base_dispatch(w->base);
	http_tl_worker = NULL;
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
	evhttp_set_gencb(w->http, http_worker_request_cb, w);
	evhttp_set_bevcb(w->http, http_worker_bev_cb, w);
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
	w->trim_ev = evtimer_new(w->base, worker_trim_cb, w);
	if (w->stop_ev == NULL || w->resume_ev == NULL || w->grace_ev == NULL ||
	    w->trim_ev == NULL || event_add(w->stop_ev, NULL) != 0 || http_balance_init(w) != 0)
		return devid_error_set(e, DEVID_ENOMEM, "http: worker %u: no events", id);
	return 0;
}

static void
worker_release(struct http_worker *w)
{
	/* evhttp_free closes the connections and frees the listener (not the socket) */
	if (w->http != NULL)
		evhttp_free(w->http);
	/*
	 * A bufferevent with a deferred callback still queued (the loop was broken before it
	 * ran) is referenced by it, and event_base_free drops such callbacks without running
	 * them: one more pass runs them, so that the last reference is released.
	 */
	if (w->base != NULL)
		event_base_loop(w->base, EVLOOP_NONBLOCK);
	if (w->stop_ev != NULL)
		event_free(w->stop_ev);
	if (w->resume_ev != NULL)
		event_free(w->resume_ev);
	if (w->grace_ev != NULL)
		event_free(w->grace_ev);
	if (w->trim_ev != NULL)
		event_free(w->trim_ev);
	http_balance_release(w);
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
	http_sockaddr_format((struct sockaddr *)&bound, s->address, sizeof(s->address));
	s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
						    : ((struct sockaddr_in *)&bound)->sin_port);
	return 0;
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
	s->body_limit = o->body_limit;
	s->body_limit_arg = o->body_limit_arg;
	s->max_connections =
	    o->max_connections != 0 ? o->max_connections : HTTP_DEFAULT_MAX_CONNECTIONS;
	s->max_client_connections = o->max_client_connections;
	s->max_client_requests = o->max_client_requests;
	s->header_timeout_secs =
	    o->header_timeout_secs != 0 ? o->header_timeout_secs : HTTP_DEFAULT_HEADER_TIMEOUT_SECS;
	s->request_timeout_secs = o->request_timeout_secs != 0 ? o->request_timeout_secs
							       : HTTP_DEFAULT_REQUEST_TIMEOUT_SECS;
	atomic_init(&s->nconns, 0);
	s->clients = http_clients_new();
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
	if (o->tls_cert != NULL && (s->ssl_ctx = http_tls_ctx_new(s, o, e)) == NULL)
		goto out;
	if (pipe2(s->stop_pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
		devid_error_set(e, DEVID_EIO, "http: pipe: %s", strerror(errno));
		goto out;
	}
	if (listen_open(s, o->listen != NULL ? o->listen : "127.0.0.1:0", e) != 0)
		goto out;
	s->workers = xcalloc(s->nworkers, sizeof(*s->workers));
	for (i = 0; i < s->nworkers; i++)
		s->workers[i].wake_fd = -1;
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
		/* no new connections from now on: refused at once (a load balancer sends them
		 * elsewhere) instead of queued in the backlog until the exit resets them */
		if (s->listen_fd >= 0)
			shutdown(s->listen_fd, SHUT_RD);
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
	http_clients_free(s->clients);
	pthread_mutex_destroy(&s->tls_lock);
	if (s->own_metrics)
		metrics_free(s->metrics);
	free(s);
}
