/* SPDX-License-Identifier: Apache-2.0 */
/*
 * server.h - the HTTP/1.1 server under `devid serve`, the EST port and `devid gateway`.
 *
 * Generic: it knows nothing of devid's domain. libevent's evhttp parses HTTP; OpenSSL does
 * TLS through bufferevent_openssl (docs/http.md says why). One listening socket is shared by
 * N worker threads, each with its own event loop; a request is read whole (headers capped
 * at max_header_bytes, body at max_body, both refused before any handler runs), then the
 * handler runs on that worker thread and may block (database calls): the other workers go
 * on accepting. Every response carries a Content-Type; every error status a JSON body
 * {"error":"<code>","message":"<sentence>"}, including the ones libevent itself sends for
 * requests it cannot parse. One log line per request: method, path, status, duration, peer;
 * never a header, so never the Authorization header; never the query string.
 *
 * Lifecycle: http_server_new (binds, so the port is known at once), http_server_run (blocks
 * until http_server_stop), http_server_free. Run once per server.
 */
#ifndef DEVID_HTTP_SERVER_H
#define DEVID_HTTP_SERVER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "http/http_limits.h"
#include "http/metrics.h"
#include "lib/dynbuf.h"
#include "lib/error.h"

struct http_server;
struct http_request;
struct http_response;

/*
 * A request handler. Runs on a worker thread, once per request, with the whole request
 * read; it must leave a status in resp (http_json, http_error or http_response_set_status)
 * or the client gets 500. req and resp and everything borrowed from them live until it
 * returns.
 */
typedef void http_handler_fn(struct http_request *req, struct http_response *resp, void *arg);

enum http_client_auth {
	HTTP_CLIENT_AUTH_NONE, /* no client certificate is asked for */
	HTTP_CLIENT_AUTH_OPTIONAL, /* asked for; a client may send none, one sent must verify */
	HTTP_CLIENT_AUTH_REQUIRE, /* the handshake fails without a certificate that verifies */
	/*
	 * A certificate is asked for and, if sent, its possession is proven by the handshake;
	 * its chain is NOT verified by TLS (no trust anchors are given): the handler must,
	 * from http_request_client_cert and http_request_client_chain. For trust that lives
	 * elsewhere and changes at run time (the EST port).
	 */
	HTTP_CLIENT_AUTH_ANY,
};

/* Options; zero (or NULL) fields take the default named beside them. Borrowed by _new. */
struct http_server_opts {
	/*
	 * "ADDR:PORT" with a numeric address: "127.0.0.1:8443", "[::1]:8443", "0.0.0.0:80",
	 * "[::]:80". "PORT" or ":PORT" binds 127.0.0.1. Port 0 picks a free port
	 * (http_server_port tells which). NULL: "127.0.0.1:0".
	 */
	const char *listen;
	const char *name; /* the "server" label of its metrics and log lines; NULL: "http" */
	unsigned threads; /* worker threads; 0: HTTP_DEFAULT_THREADS */
	size_t max_body; /* request body bytes; 0: HTTP_DEFAULT_MAX_BODY; over: 413 */
	/*
	 * The body limit of one route, over max_body or under it: called on a worker thread
	 * with the method and the raw (percent-encoded) path of each request as soon as its
	 * request line has arrived, before its headers are read; 0 means max_body. NULL: every
	 * route has max_body. A request pipelined behind another has max_body.
	 */
	size_t (*body_limit)(const char *method, const char *path, void *arg);
	void *body_limit_arg;
	/* open connections in all; 0: HTTP_DEFAULT_MAX_CONNECTIONS; over: 503 and closed */
	unsigned max_connections;
	/* open connections from one client address; 0: no limit (behind a load balancer every
	 * client has its address); over: 503 and closed */
	unsigned max_client_connections;
	/* requests of one client address being handled at once; 0: no limit; over: 429 */
	unsigned max_client_requests;
	/* seconds from a request's first byte to the end of its headers, and to its last byte;
	 * 0: HTTP_DEFAULT_HEADER_TIMEOUT_SECS, HTTP_DEFAULT_REQUEST_TIMEOUT_SECS; a client too
	 * slow for either is disconnected (slow-loris) */
	unsigned header_timeout_secs;
	unsigned request_timeout_secs;
	size_t max_header_bytes; /* request line + headers; 0: HTTP_DEFAULT_MAX_HEADER_BYTES */
	size_t max_response; /* response body bytes a handler may build; 0: the default */
	unsigned timeout_secs; /* idle or stalled between reads or writes; 0: the default */

	/* TLS when tls_cert is set: a PEM chain (leaf first) and its PEM private key. */
	const char *tls_cert;
	const char *tls_key;
	enum http_client_auth client_auth;
	/* The trust anchors for client certificates (one of them, with client_auth OPTIONAL or
	 * REQUIRE; neither with NONE or ANY): a PEM file, or a store (the server takes its own
	 * reference). */
	const char *tls_ca_file;
	X509_STORE *tls_ca_store;

	http_handler_fn *handler; /* required */
	void *handler_arg;
	/* The registry the server counts into (borrowed, must outlive the server); NULL: the
	 * server makes its own, see http_server_metrics. */
	struct metrics *metrics;
};

/* 0 if spec is a listen address http_server_new takes ("ADDR:PORT", "[V6]:PORT", "PORT"). */
int http_listen_check(const char *spec, struct devid_error *e);

/*
 * Checks the options, loads the TLS files, binds and listens (so a port 0 is resolved), and
 * prepares the workers. Returns NULL with e set on any failure; nothing is left open.
 */
struct http_server *http_server_new(const struct http_server_opts *o, struct devid_error *e);

/* The bound port, and "ADDR:PORT" as bound ("127.0.0.1:43121", "[::1]:8443"); borrowed. */
uint16_t http_server_port(const struct http_server *s);
const char *http_server_address(const struct http_server *s);
/* The registry the server counts into (its own or the one given); borrowed. */
struct metrics *http_server_metrics(const struct http_server *s);

/*
 * Starts the workers and blocks until http_server_stop; then waits for the workers to stop
 * (each finishes its current handler and, up to HTTP_STOP_GRACE_MS, the responses being
 * written). Returns 0, or a DEVID_E* code when a worker could not start.
 */
int http_server_run(struct http_server *s);

/*
 * Asks a running (or not yet running) server to stop. Async-signal-safe: it only stores a
 * flag, writes one byte to a pipe and shuts the listening socket (new connections are
 * refused at once; those accepted finish), so a signal handler or any thread may call it.
 */
void http_server_stop(struct http_server *s);
/*
 * Reads the TLS certificate chain and key again from the files the server was made with,
 * and with ca_store as the client CAs when it is not NULL (the server takes a reference):
 * connections accepted from then on use them, connections already open keep what they
 * began with. On failure (DEVID_E*, e says why) the server keeps what it had. 0 for a
 * server without TLS. May be called while the server runs, from any thread.
 */
int http_server_reload_tls(struct http_server *s, X509_STORE *ca_store, struct devid_error *e);

/* Closes and frees everything; accepts NULL. Not while http_server_run is running. */
void http_server_free(struct http_server *s);

/* --- the request, borrowed by a handler ---------------------------------------------- */

/* "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS" or "HEAD". */
const char *http_request_method(const struct http_request *req);
/*
 * The path, percent-decoded, without the query: starts with '/', NUL-terminated, holds no
 * NUL or control character and no decoded '/' that was not a separator. *len if len != NULL.
 */
const char *http_request_path(const struct http_request *req, size_t *len);
/* The decoded value of a query parameter ('+' is a space), or NULL. Names appear once. */
const char *http_request_query(const struct http_request *req, const char *name);
/* The value of a header (name compared case-insensitively; the first if repeated) or NULL. */
const char *http_request_header(const struct http_request *req, const char *name);
/*
 * The body exactly as received: *len bytes at the pointer, NOT NUL-terminated (do not read
 * past len). Never NULL (an empty body is a zero-length array).
 */
const uint8_t *http_request_body(const struct http_request *req, size_t *len);
/* The client's address: "127.0.0.1:51234" or "[::1]:51234". */
const char *http_request_peer(const struct http_request *req);
/* Whether the request came over TLS. */
bool http_request_is_tls(const struct http_request *req);
/*
 * The client's certificate when TLS verified it (client_auth OPTIONAL or REQUIRE), else
 * NULL; and the verified chain, leaf first, ending at the trust anchor, which is NULL on a
 * resumed session (OpenSSL keeps the certificate and the verification's result across
 * resumption, not the chain). Borrowed: valid until the handler returns (X509_up_ref to
 * keep one).
 */
X509 *http_request_peer_cert(const struct http_request *req);
STACK_OF(X509) *http_request_peer_chain(const struct http_request *req);
/*
 * The client's certificate as the client sent it, whatever the client_auth mode, or NULL
 * (no TLS, or none sent); the handshake proved the client holds its key, nothing more: with
 * HTTP_CLIENT_AUTH_ANY the handler must verify it. And the other certificates the client sent
 * after it (OpenSSL's server-side SSL_get_peer_cert_chain: without the leaf), untrusted, as
 * sent; NULL or empty when none. Borrowed: valid until the handler returns.
 */
X509 *http_request_client_cert(const struct http_request *req);
STACK_OF(X509) *http_request_client_chain(const struct http_request *req);
/* A path parameter captured by the router ("{vendor}"), decoded, or NULL. */
const char *http_request_param(const struct http_request *req, const char *name);

/* For routers: the route label of metrics and logs (a pattern; must outlive the request),
 * and the captured parameters (borrowed until the handler returns). */
struct route_param;
void http_request_set_route(struct http_request *req, const char *route);
void http_request_set_params(struct http_request *req, const struct route_param *params, size_t n);

/* --- the response --------------------------------------------------------------------- */

/* Sets the status, 200 to 599 (anything else is sent as 500). */
void http_response_set_status(struct http_response *resp, int status);
/*
 * Sets a header, replacing one of the same name. The server owns Content-Length,
 * Transfer-Encoding, Connection and Date: setting those, a name that is not an HTTP token,
 * or a value with a control character is DEVID_EINVAL.
 */
int http_response_set_header(struct http_response *resp, const char *name, const char *value);
/* Closes the connection once this response is sent (a refusal no later request could change). */
void http_response_set_close(struct http_response *resp);
/* The body, capped at the server's max_response (appends past it fail with DEVID_ELIMIT).
 * Borrowed; the server sends and frees it after the handler returns. */
struct dynbuf *http_response_body(struct http_response *resp);

/* Status, Content-Type application/json and the compact serialization of j (borrowed). */
int http_json(struct http_response *resp, int status, const json_t *j);
/*
 * An error in DESIGN.md's shape: {"error":"<code>","message":"<sentence>"}. The message is
 * formatted, truncated to DEVID_ERROR_MAX and made valid UTF-8.
 */
int http_error(struct http_response *resp, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int http_verror(struct http_response *resp, int status, const char *code, const char *fmt,
    va_list ap) __attribute__((format(printf, 4, 0)));

/* --- ready-made handlers -------------------------------------------------------------- */

/* GET /healthz: 200 {"status":"ok"}. arg is unused. */
void http_handle_healthz(struct http_request *req, struct http_response *resp, void *arg);
/* GET /metrics: the registry arg (struct metrics *) in Prometheus text format 0.0.4. */
void http_handle_metrics(struct http_request *req, struct http_response *resp, void *arg);

#endif
