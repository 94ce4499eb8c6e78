/* SPDX-License-Identifier: Apache-2.0 */
/* test_uri - src/http/uri.c: strict percent-decoding of request paths and query strings. */
#include <stdlib.h>
#include <string.h>

#include "http/uri.h"
#include "test.h"
#include "lib/banned.h"

/* Decodes s from an exact-size heap copy, so that a read past the end is an ASan report. */
static int
path(const char *s, char *out, size_t outsz, size_t *len)
{
	size_t n = strlen(s);
	char *p = malloc(n > 0 ? n : 1);
	struct devid_error e;
	int rc;

	memcpy(p, s, n);
	rc = uri_path_decode(p, n, out, outsz, len, &e);
	free(p);
	return rc;
}

static int
query(const char *s, struct uri_query *q)
{
	size_t n = strlen(s);
	char *p = malloc(n > 0 ? n : 1);
	struct devid_error e;
	int rc;

	memcpy(p, s, n);
	rc = uri_query_parse(p, n, q, &e);
	free(p);
	return rc;
}

static void
test_paths(void)
{
	static const char *const bad[] = {"", "abc", "/%2F", "/a%2fb", "/%zz", "/%4", "/%", "/%00",
	    "/a%0Ab", "/a\x01", "/a%7F", "/\x7f"};
	char out[HTTP_MAX_PATH + 1], *longp;
	size_t len;

	CHECK(path("/", out, sizeof(out), &len) == 0 && len == 1 && strcmp(out, "/") == 0,
	    "\"/\" decodes to itself");
	CHECK(path("/api/v1/batches/AC%4dE/B%2D1", out, sizeof(out), &len) == 0 &&
		strcmp(out, "/api/v1/batches/ACME/B-1") == 0 && len == strlen(out),
	    "hex digits in either case: got \"%s\"", out);
	CHECK(path("/a+b%20c", out, sizeof(out), &len) == 0 && strcmp(out, "/a+b c") == 0,
	    "'+' stays '+' in a path: got \"%s\"", out);
	CHECK(path("/caf%C3%A9", out, sizeof(out), &len) == 0 && strcmp(out, "/caf\xc3\xa9") == 0,
	    "UTF-8 bytes pass");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		out[0] = 'x';
		CHECK(path(bad[i], out, sizeof(out), &len) == DEVID_EINVAL && out[0] == '\0' &&
			len == 0,
		    "path %zu is refused as DEVID_EINVAL and leaves out empty", i);
	}

	/* exactly the limit passes, one byte more does not */
	longp = malloc(HTTP_MAX_PATH + 2);
	memset(longp, 'a', HTTP_MAX_PATH + 1);
	longp[0] = '/';
	longp[HTTP_MAX_PATH] = '\0';
	CHECK(path(longp, out, sizeof(out), &len) == 0 && len == HTTP_MAX_PATH,
	    "a path of HTTP_MAX_PATH bytes passes");
	longp[HTTP_MAX_PATH] = 'a';
	longp[HTTP_MAX_PATH + 1] = '\0';
	CHECK(path(longp, out, sizeof(out), &len) == DEVID_ELIMIT, "one byte more is DEVID_ELIMIT");
	free(longp);
	CHECK(path("/abcdef", out, 4, &len) == DEVID_ELIMIT, "a short output buffer is refused");

	/* only n bytes are read: a '%' just past the end is not seen */
	CHECK(uri_path_decode("/abc%", 4, out, sizeof(out), &len, NULL) == 0 &&
		strcmp(out, "/abc") == 0,
	    "decoding stops at len");
}

static void
test_queries(void)
{
	struct uri_query q;
	char *big;
	size_t n;

	CHECK(query("a=1&b=x+y&c=%41%2F&d", &q) == 0 && q.n == 4, "four parameters");
	CHECK(strcmp(uri_query_get(&q, "a"), "1") == 0, "a=1");
	CHECK(strcmp(uri_query_get(&q, "b"), "x y") == 0, "'+' is a space in a query");
	CHECK(strcmp(uri_query_get(&q, "c"), "A/") == 0, "an encoded '/' is fine in a query");
	CHECK(strcmp(uri_query_get(&q, "d"), "") == 0, "a name without '=' has the value \"\"");
	CHECK(uri_query_get(&q, "e") == NULL, "an absent name is NULL");
	CHECK(query("", &q) == 0 && q.n == 0, "an empty query");
	CHECK(query("&&a=1&", &q) == 0 && q.n == 1, "empty pairs are skipped");
	CHECK(query("a%3Db=c", &q) == 0 && strcmp(uri_query_get(&q, "a=b"), "c") == 0,
	    "a name may hold an encoded '='");

	CHECK(query("=1", &q) == DEVID_EINVAL && q.n == 0, "an empty name is refused");
	CHECK(query("%41=1", &q) == 0 && uri_query_get(&q, "A") != NULL, "a name is decoded");
	CHECK(query("a=1&a=2", &q) == DEVID_EINVAL && q.n == 0, "a repeated name is refused");
	CHECK(query("a=1&%61=2", &q) == DEVID_EINVAL, "a repeated name after decoding too");
	CHECK(query("a=%zz", &q) == DEVID_EINVAL, "a bad escape is refused");
	CHECK(query("a=%00", &q) == DEVID_EINVAL, "NUL is refused");
	CHECK(query("a=\t", &q) == DEVID_EINVAL, "a control character is refused");

	/* the parameter count: 32 pass, 33 do not */
	big = malloc(HTTP_MAX_QUERY + 2);
	n = 0;
	for (int i = 0; i < HTTP_MAX_QUERY_PARAMS; i++)
		n += (size_t)snprintf(
		    big + n, HTTP_MAX_QUERY + 2 - n, "%sp%d=%d", i ? "&" : "", i, i);
	CHECK(query(big, &q) == 0 && q.n == HTTP_MAX_QUERY_PARAMS, "32 parameters pass");
	snprintf(big + n, HTTP_MAX_QUERY + 2 - n, "&x=1");
	CHECK(query(big, &q) == DEVID_ELIMIT && q.n == 0, "33 parameters are DEVID_ELIMIT");

	/*
	 * The size: HTTP_MAX_QUERY bytes pass, one more does not. 32 distinct names without
	 * values, filling the whole query, are the most the store must hold (each decoded name
	 * and "" take their length plus two NULs).
	 */
	memset(big, 'a', HTTP_MAX_QUERY);
	for (int i = 0; i < HTTP_MAX_QUERY_PARAMS; i++) {
		char id[8];

		snprintf(id, sizeof(id), "%02d", i);
		memcpy(big + i * (HTTP_MAX_QUERY / HTTP_MAX_QUERY_PARAMS), i ? "&" : "a", 1);
		memcpy(big + i * (HTTP_MAX_QUERY / HTTP_MAX_QUERY_PARAMS) + 1, id, 2);
	}
	big[HTTP_MAX_QUERY] = '\0';
	CHECK(query(big, &q) == 0 && q.n == HTTP_MAX_QUERY_PARAMS,
	    "a query of HTTP_MAX_QUERY bytes, 32 names without values, passes (%zu)", q.n);
	big[HTTP_MAX_QUERY] = 'a';
	big[HTTP_MAX_QUERY + 1] = '\0';
	CHECK(query(big, &q) == DEVID_ELIMIT, "one byte more is DEVID_ELIMIT");
	free(big);
}

int
main(void)
{
	test_paths();
	test_queries();
	return test_done();
}
