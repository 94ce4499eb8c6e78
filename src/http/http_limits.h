/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_limits.h - every limit of the HTTP layer on outside input, named, in one place.
 *
 * These belong beside the others in src/lib/limits.h; they live here until src/http is wired
 * into the build, because src/http owns no file outside its folder. Sizes are in bytes.
 */
#ifndef DEVID_HTTP_LIMITS_H
#define DEVID_HTTP_LIMITS_H

/* the request line plus every header line; over it libevent answers 400 (made JSON by us) */
#define HTTP_DEFAULT_MAX_HEADER_BYTES 16384
/* header fields in one request; over it the answer is 431 */
#define HTTP_MAX_HEADERS 100
/* a request body, unless the server's options say otherwise; over it the answer is 413 */
#define HTTP_DEFAULT_MAX_BODY ((size_t)1 << 20)
/* a response body a handler may build, unless the options say otherwise */
#define HTTP_DEFAULT_MAX_RESPONSE ((size_t)64 << 20)
/* the path of a request, before and after percent-decoding; over it the answer is 414 */
#define HTTP_MAX_PATH 2048
/* the query string, raw, and how many parameters it may carry; over either: 414 and 400 */
#define HTTP_MAX_QUERY 4096
#define HTTP_MAX_QUERY_PARAMS 32
/* seconds a connection may sit idle or stall in a read or write */
#define HTTP_DEFAULT_TIMEOUT_SECS 60
/* seconds from a request's first byte to the end of its headers, and to its last byte */
#define HTTP_DEFAULT_HEADER_TIMEOUT_SECS 10
#define HTTP_DEFAULT_REQUEST_TIMEOUT_SECS 300
/* open connections of one server (each takes a descriptor) */
#define HTTP_DEFAULT_MAX_CONNECTIONS 1024
/* worker threads, each with its own event loop */
#define HTTP_DEFAULT_THREADS 4
#define HTTP_MAX_THREADS 256
/* what libevent 2.1 reads of a socket at a time (its EVBUFFER_MAX_READ), and what a body
 * arriving faster is read in instead: a piece, and at most a turn of the loop */
#define HTTP_LIBEVENT_READ 4096
#define HTTP_BODY_READ ((size_t)256 << 10)
#define HTTP_BODY_READ_TURN ((size_t)4 << 20)
/* a request body at least this large leaves memory to give back: a worker does, with
 * malloc_trim, once no such body has come to it for HTTP_TRIM_DELAY_MS */
#define HTTP_TRIM_BODY ((size_t)1 << 20)
#define HTTP_TRIM_DELAY_MS 1000
/* the listen(2) backlog of the shared listening socket */
#define HTTP_LISTEN_BACKLOG 511
/* milliseconds a stopping worker waits for responses already being written */
#define HTTP_STOP_GRACE_MS 2000
/* depth of a client certificate chain the TLS port verifies (leaf, intermediates, root) */
#define HTTP_TLS_VERIFY_DEPTH 5
/* the "ADDR:PORT" text of a listen option */
#define HTTP_MAX_LISTEN_LEN 128
/* an incoming X-Request-Id kept as the request's id; a longer one is replaced by ours */
#define HTTP_MAX_REQUEST_ID 64

/* router: patterns, captured path parameters */
#define ROUTER_MAX_ROUTES 256
#define ROUTER_MAX_SEGMENTS 32
#define ROUTER_MAX_PARAMS 8
#define ROUTER_MAX_PARAM_LEN 256
#define ROUTER_MAX_NAME_LEN 32

/* metrics: registered families, labels per family, series per family, histogram buckets */
#define METRICS_MAX_FAMILIES 64
#define METRICS_MAX_LABELS 4
#define METRICS_MAX_SERIES 1024
#define METRICS_MAX_BUCKETS 16
#define METRICS_MAX_NAME_LEN 64
#define METRICS_MAX_LABEL_VALUE_LEN 256
#define METRICS_MAX_HELP_LEN 256
#define METRICS_MAX_COLLECTORS 4
/* the rendered /metrics text */
#define METRICS_MAX_RENDER ((size_t)4 << 20)

#endif
