/* SPDX-License-Identifier: Apache-2.0 */
/* test_router - src/http/router.c: patterns, matching, captured parameters, 404 and 405. */
#include <stdlib.h>
#include <string.h>

#include "http/router.h"
#include "test.h"
#include "lib/banned.h"

static void
h_a(struct http_request *req, struct http_response *resp, void *arg)
{
	(void)req;
	(void)resp;
	(void)arg;
}

static void
h_b(struct http_request *req, struct http_response *resp, void *arg)
{
	(void)req;
	(void)resp;
	(void)arg;
}

/* Matches method and path from an exact-size heap copy (ASan sees any read past it). */
static enum router_result
match(const struct router *r, const char *method, const char *p, size_t n, struct route_match *m)
{
	char *copy = malloc(n > 0 ? n : 1);
	enum router_result res;

	memcpy(copy, p, n);
	res = router_match(r, method, copy, n, m);
	free(copy);
	return res;
}

static enum router_result
match_s(const struct router *r, const char *method, const char *p, struct route_match *m)
{
	return match(r, method, p, strlen(p), m);
}

static const char *
param(const struct route_match *m, const char *name)
{
	for (size_t i = 0; i < m->nparams; i++) {
		if (strcmp(m->params[i].name, name) == 0)
			return m->params[i].value;
	}
	return NULL;
}

static void
test_patterns(void)
{
	static const char *const bad[] = {"", "noslash", "/a/{}", "/a/{Bad}", "/a/{x}/{x}", "/a//b",
	    "/a/{x", "/a/b{x}", "/a?x", "/a b", "/a/%41", "/{1x}", "//"};
	struct router *r = router_new();
	struct devid_error e;
	char many[512];
	size_t n = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(router_add(r, "GET", bad[i], h_a, NULL, &e) == DEVID_EINVAL,
		    "pattern \"%s\" is refused", bad[i]);
	CHECK(router_add(r, "get", "/x", h_a, NULL, &e) == DEVID_EINVAL, "a lower-case method");
	CHECK(router_add(r, "", "/x", h_a, NULL, &e) == DEVID_EINVAL, "an empty method");
	CHECK(router_add(r, "GET", "/x", NULL, NULL, &e) == DEVID_EINVAL, "no handler");

	for (int i = 0; i <= ROUTER_MAX_SEGMENTS; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "/s");
	CHECK(router_add(r, "GET", many, h_a, NULL, &e) == DEVID_ELIMIT,
	    "more than ROUTER_MAX_SEGMENTS segments");
	n = 0;
	for (int i = 0; i <= ROUTER_MAX_PARAMS; i++)
		n += (size_t)snprintf(many + n, sizeof(many) - n, "/{p%d}", i);
	CHECK(router_add(r, "GET", many, h_a, NULL, &e) == DEVID_ELIMIT,
	    "more than ROUTER_MAX_PARAMS parameters: %s", e.msg);

	CHECK(router_add(r, "GET", "/", h_a, NULL, &e) == 0, "the root");
	CHECK(router_add(r, "GET", "/dir/", h_a, NULL, &e) == 0, "a trailing slash");
	router_free(r);
	router_free(NULL);
}

static void
test_matching(void)
{
	struct router *r = router_new();
	struct devid_error e;
	struct route_match m;
	http_handler_fn *fn;
	void *arg = NULL;
	char seg[ROUTER_MAX_PARAM_LEN + 64];
	int ok = 0;

	ok |= router_add(r, "GET", "/healthz", h_a, NULL, &e);
	ok |= router_add(r, "GET", "/", h_a, NULL, &e);
	ok |= router_add(r, "GET", "/dir/", h_a, NULL, &e);
	ok |= router_add(r, "GET", "/api/v1/batches/{vendor}/{batch}", h_a, NULL, &e);
	ok |= router_add(r, "GET", "/api/v1/batches/{vendor}/{batch}/manifest", h_b, &ok, &e);
	ok |= router_add(r, "POST", "/api/v1/batches/{vendor}/{batch}/transfer", h_a, NULL, &e);
	ok |= router_add(r, "GET", "/api/v1/connectors/{name}", h_a, NULL, &e);
	ok |= router_add(r, "PUT", "/api/v1/connectors/{name}", h_a, NULL, &e);
	ok |= router_add(r, "DELETE", "/api/v1/connectors/{name}", h_a, NULL, &e);
	ok |= router_add(r, "GET", "/x/{a}", h_a, NULL, &e);
	ok |= router_add(r, "GET", "/x/lit", h_b, NULL, &e);
	ok |= router_add(r, "HEAD", "/h", h_b, NULL, &e);
	ok |= router_add(r, "GET", "/h", h_a, NULL, &e);
	CHECK(ok == 0, "the routes are added: %s", e.msg);

	CHECK(match_s(r, "GET", "/api/v1/batches/ACME/B-1/manifest", &m) == ROUTER_MATCH,
	    "a route with two parameters matches");
	fn = route_handler(m.route, &arg);
	CHECK(fn == h_b && arg == &ok, "its handler and argument come back");
	CHECK(m.nparams == 2 && strcmp(param(&m, "vendor"), "ACME") == 0 &&
		strcmp(param(&m, "batch"), "B-1") == 0 && m.params[0].len == 4,
	    "the parameters are captured");
	CHECK(strcmp(m.pattern, "/api/v1/batches/{vendor}/{batch}/manifest") == 0,
	    "the pattern names the route: %s", m.pattern);

	CHECK(match_s(r, "GET", "/api/v1/batches/ACME/B-1/transfer", &m) ==
		    ROUTER_METHOD_NOT_ALLOWED &&
		strcmp(m.allow, "POST") == 0,
	    "405 with Allow: POST, got \"%s\"", m.allow);
	CHECK(match_s(r, "PATCH", "/api/v1/connectors/hook", &m) == ROUTER_METHOD_NOT_ALLOWED &&
		strcmp(m.allow, "GET, HEAD, PUT, DELETE") == 0,
	    "Allow lists each method once, HEAD after GET: \"%s\"", m.allow);
	CHECK(match_s(r, "HEAD", "/healthz", &m) == ROUTER_MATCH, "HEAD is served by GET");
	CHECK(match_s(r, "HEAD", "/h", &m) == ROUTER_MATCH && route_handler(m.route, &arg) == h_b,
	    "an explicit HEAD route wins over GET");
	CHECK(match_s(r, "POST", "/h", &m) == ROUTER_METHOD_NOT_ALLOWED &&
		strcmp(m.allow, "HEAD, GET") == 0,
	    "Allow: \"%s\"", m.allow);
	CHECK(
	    match_s(r, "GET", "/x/lit", &m) == ROUTER_MATCH && route_handler(m.route, &arg) == h_a,
	    "the first route added wins");

	CHECK(match_s(r, "GET", "/", &m) == ROUTER_MATCH && m.nparams == 0, "the root");
	CHECK(match_s(r, "GET", "/dir/", &m) == ROUTER_MATCH, "a trailing slash matches itself");
	CHECK(match_s(r, "GET", "/dir", &m) == ROUTER_NOT_FOUND, "and only itself");
	CHECK(match_s(r, "GET", "/healthz/", &m) == ROUTER_NOT_FOUND, "a trailing slash counts");
	CHECK(match_s(r, "GET", "/Healthz", &m) == ROUTER_NOT_FOUND, "literals are case-sensitive");
	CHECK(match_s(r, "GET", "/api/v1/batches/ACME/", &m) == ROUTER_NOT_FOUND,
	    "a parameter never matches an empty segment");
	CHECK(match_s(r, "GET", "/api/v1/batches/../B1", &m) == ROUTER_NOT_FOUND &&
		match_s(r, "GET", "/api/v1/batches/./B1", &m) == ROUTER_NOT_FOUND,
	    "nor \".\" or \"..\"");
	CHECK(match_s(r, "GET", "/api/v1/batches/...", &m) == ROUTER_NOT_FOUND, "too few segments");
	CHECK(match_s(r, "GET", "/api/v1/batches/.../B1", &m) == ROUTER_MATCH,
	    "\"...\" is an ordinary name");
	CHECK(match_s(r, "GET", "healthz", &m) == ROUTER_NOT_FOUND, "no leading '/'");
	CHECK(match(r, "GET", "", 0, &m) == ROUTER_NOT_FOUND, "an empty path");
	CHECK(match(r, "GET", "/api/v1/batches/A\0B/C", 21, &m) == ROUTER_NOT_FOUND,
	    "a parameter never holds a NUL byte");
	CHECK(match(r, "GET", "/healthzXYZ", 8, &m) == ROUTER_MATCH, "only n bytes are read");

	/* parameter length: ROUTER_MAX_PARAM_LEN passes, one more does not */
	memset(seg, 'v', sizeof(seg));
	memcpy(seg, "/api/v1/connectors/", 19);
	CHECK(match(r, "GET", seg, 19 + ROUTER_MAX_PARAM_LEN, &m) == ROUTER_MATCH &&
		m.params[0].len == ROUTER_MAX_PARAM_LEN &&
		strlen(m.params[0].value) == ROUTER_MAX_PARAM_LEN,
	    "a parameter of ROUTER_MAX_PARAM_LEN bytes");
	CHECK(match(r, "GET", seg, 19 + ROUTER_MAX_PARAM_LEN + 1, &m) == ROUTER_NOT_FOUND,
	    "one byte longer matches nothing");

	/* more segments than any pattern may have */
	memset(seg, '/', 2 * ROUTER_MAX_SEGMENTS + 10);
	CHECK(match(r, "GET", seg, 2 * ROUTER_MAX_SEGMENTS + 10, &m) == ROUTER_NOT_FOUND,
	    "a path of many segments");
	router_free(r);
}

int
main(void)
{
	test_patterns();
	test_matching();
	return test_done();
}
