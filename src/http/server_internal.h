/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server_internal.h - what the parts of the HTTP server share; see server.h for the contract.
 *
 *   server.c          options, the listening socket, the workers and their event loops
 *   server_conn.c     each connection: its bufferevent, limits and deadlines
 *   server_request.c  one request: checks, the handler, the response, the log line
 *   server_reject.c   libevent's own error pages, made JSON
 *   server_tls.c      TLS contexts, their reload and handshake logging
 *   server_balance.c  which workers accept the next connection
 *
 * Nothing here is for use outside those files.
 */
#ifndef DEVID_HTTP_SERVER_INTERNAL_H
#define DEVID_HTTP_SERVER_INTERNAL_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include "http/server.h"
#include "http/uri.h"

#define ALLOWED_METHODS                                                                            \
	(EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | \
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH)

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
	struct event *trim_ev; /* the free heap back to the system, after large bodies */
	bool stopping;
	/* server_balance.c: shared with the other workers */
	atomic_uint conns; /* open connections */
	atomic_bool busy; /* running a handler */
	atomic_bool parked; /* not listening, to let a worker with fewer connections accept */
	int wake_fd; /* an eventfd: another worker asks a parked one to look again */
	struct event *wake_ev;
	unsigned
	    inflight; /* responses handed to libevent and not yet written out (server_conn.c) */
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
	size_t (*body_limit)(const char *method, const char *path, void *arg);
	void *body_limit_arg;
	unsigned max_connections, max_client_connections, max_client_requests;
	unsigned header_timeout_secs, request_timeout_secs;
	atomic_int nconns; /* open connections, across the workers */
	struct http_clients *clients; /* open connections and requests by client address */
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
extern _Thread_local struct http_worker *http_tl_worker;
/* True while this thread hands a response of ours to libevent. */
extern _Thread_local bool http_tl_sending;

/* server.c: small helpers */
const char *http_status_phrase(int status);
double http_now(void); /* monotonic seconds */
void http_sockaddr_format(const struct sockaddr *sa, char *buf, size_t len);
void http_fd_peer(int fd, char *buf, size_t len); /* "ADDR:PORT" of a socket's peer */
const char *http_method_name(enum evhttp_cmd_type t);
/* counts an answered request (seconds < 0: not timed) */
void http_count_request(
    struct http_server *s, const char *method, const char *route, int status, double seconds);
/* {"error":code,"message":msg} as a malloc'ed string; msg must be valid UTF-8. */
char *http_error_json(const char *code, const char *msg);

/* server.c: the address of sa without its port */
void http_sockaddr_ip(const struct sockaddr *sa, char *buf, size_t len);

/* server_conn.c: each connection (see there) */
struct http_conn;
struct http_clients *http_clients_new(void);
void http_clients_free(struct http_clients *t);
bool http_clients_take(struct http_clients *t, const char *ip, bool requests, unsigned max);
void http_clients_release(struct http_clients *t, const char *ip, bool requests);
struct bufferevent *http_worker_bev_cb(struct event_base *base, void *arg);
/* our response to the connection's request is being written (a stopping worker waits) */
void http_conn_response(struct http_conn *c);
/* the connection's output is written out */
void http_conn_written(struct http_conn *c);
size_t http_conn_limit(const struct http_conn *c); /* the body limit of its request */
struct bufferevent *http_conn_bufferevent(const struct http_conn *c);

/* server.c: a request with a body of HTTP_TRIM_BODY or more was answered on w's thread */
void http_worker_large_body(struct http_worker *w);

/* server_request.c: evhttp's callback for a request read whole (arg: the worker) */
void http_worker_request_cb(struct evhttp_request *ev, void *arg);

/* server_reject.c: the output callback of every connection (arg: its http_conn) */
void http_conn_output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg);

/* server_balance.c: which workers accept (see there); each on the worker's own thread */
int http_balance_init(struct http_worker *w); /* -1: no eventfd or event */
void http_balance_release(struct http_worker *w);
/* the turn after an accept, or an accept error's pause, is over: listen again, or park */
void http_balance_resume(struct http_worker *w);
void http_balance_accepted(struct http_worker *w); /* the listener is off until resume */
void http_balance_closed(struct http_worker *w);
void http_balance_busy(struct http_worker *w, bool busy); /* around a handler */

/* server_tls.c: a TLS context from the options, or NULL with e set */
SSL_CTX *http_tls_ctx_new(
    struct http_server *s, const struct http_server_opts *o, struct devid_error *e);

#endif
