/* SPDX-License-Identifier: Apache-2.0 */
/*
 * router.h - a table of routes: a method and a pattern to a handler.
 *
 * A pattern is '/'-separated segments, each a literal or a parameter "{name}"
 * (name [a-z_][a-z0-9_]*, at most ROUTER_MAX_NAME_LEN), e.g.
 * "/api/v1/batches/{vendor}/{batch}/manifest". A parameter matches one whole non-empty
 * segment other than "." and ".." of at most ROUTER_MAX_PARAM_LEN bytes; literals match
 * exactly (case-sensitive); a trailing '/' is significant. Routes are tried in the order
 * they were added and the first whose method and pattern match wins. HEAD is served by a
 * GET route unless a HEAD route exists.
 *
 * router_handle is an http_handler_fn: it answers 404 JSON when no pattern matches the
 * path and 405 JSON with an Allow header when patterns match but not for this method.
 *
 * The table is built at start-up, then read by every worker without locks: add every route
 * before the server runs.
 */
#ifndef DEVID_HTTP_ROUTER_H
#define DEVID_HTTP_ROUTER_H

#include <stddef.h>

#include "http/http_limits.h"
#include "http/server.h"
#include "lib/error.h"

struct router;
struct route;

/* One captured path parameter: name borrowed from the route, value decoded, NUL-terminated. */
struct route_param {
	const char *name;
	size_t len;
	char value[ROUTER_MAX_PARAM_LEN + 1];
};

enum router_result {
	ROUTER_NOT_FOUND, /* no pattern matches the path */
	ROUTER_MATCH, /* m->route and m->params are set */
	ROUTER_METHOD_NOT_ALLOWED, /* patterns match, not with this method; see m->allow */
};

/* The result of a match; caller-owned (it is large: keep one per call, not per route). */
struct route_match {
	const struct route *route;
	const char *pattern; /* of the route matched, or of the first path match on 405 */
	size_t nparams;
	struct route_param params[ROUTER_MAX_PARAMS];
	char allow[96]; /* "GET, HEAD, POST" on ROUTER_METHOD_NOT_ALLOWED */
};

struct router *router_new(void);
/* Frees the table (accepts NULL). */
void router_free(struct router *r);

/*
 * Adds a route. method is an upper-case token ("GET"); pattern as above, copied. Fails with
 * DEVID_EINVAL on a bad method or pattern (a repeated parameter name included) and
 * DEVID_ELIMIT past ROUTER_MAX_ROUTES, ROUTER_MAX_SEGMENTS or ROUTER_MAX_PARAMS.
 */
int router_add(struct router *r, const char *method, const char *pattern, http_handler_fn *fn,
    void *arg, struct devid_error *e);

/*
 * Matches a method and a decoded path p[0..n) (not NUL-terminated; it must begin with '/').
 * Pure: reads the table and the input only, writes only m.
 */
enum router_result router_match(
    const struct router *r, const char *method, const char *p, size_t n, struct route_match *m);

/* Calls fn with each route's method and pattern (borrowed), in the order they were added. */
void router_foreach(const struct router *r,
    void (*fn)(const char *method, const char *pattern, void *arg), void *arg);

/* The handler and argument of a matched route. */
http_handler_fn *route_handler(const struct route *rt, void **arg);

/* An http_handler_fn; arg is the struct router *. */
void router_handle(struct http_request *req, struct http_response *resp, void *arg);

#endif
