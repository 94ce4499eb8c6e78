/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_openapi - docs/openapi.json as compiled into devid describes every route the API's
 * router has (api_new), and nothing more: each (method, pattern) of the router is an
 * operation of the document's paths, and each operation is a route. Methods are compared
 * case-insensitively; a document's "head" needs a GET (the router answers HEAD with it).
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "http/api.h"
#include "http/openapi.h"
#include "test.h"
#include "lib/banned.h"

#define MAX_SEEN 128

/* The routes of the router, and which of them the document describes. */
struct routes {
	size_t n;
	struct {
		char method[16];
		char pattern[256];
		bool described;
	} r[MAX_SEEN];
};

static void
collect(const char *method, const char *pattern, void *arg)
{
	struct routes *rs = arg;

	CHECK(rs->n < MAX_SEEN, "more than %d routes: raise MAX_SEEN", MAX_SEEN);
	if (rs->n == MAX_SEEN)
		return;
	snprintf(rs->r[rs->n].method, sizeof(rs->r[rs->n].method), "%s", method);
	snprintf(rs->r[rs->n].pattern, sizeof(rs->r[rs->n].pattern), "%s", pattern);
	rs->n++;
}

/* The route (method, pattern), or with head, the GET the router answers HEAD with. */
static bool
route_has(struct routes *rs, const char *method, const char *pattern)
{
	bool head = strcasecmp(method, "HEAD") == 0, found = false;

	for (size_t i = 0; i < rs->n; i++) {
		if (strcmp(rs->r[i].pattern, pattern) != 0)
			continue;
		if (strcasecmp(rs->r[i].method, method) == 0) {
			rs->r[i].described = true;
			found = true;
		} else if (head && strcmp(rs->r[i].method, "GET") == 0) {
			found = true;
		}
	}
	return found;
}

static bool
is_operation(const char *key)
{
	static const char *const ops[] = {
	    "get", "put", "post", "delete", "options", "head", "patch", "trace"};

	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(key, ops[i]) == 0)
			return true;
	return false;
}

int
main(void)
{
	struct devid_error e;
	struct routes rs = {0};
	struct api *a;
	json_error_t je;
	json_t *doc, *paths, *item, *op;
	const char *path, *key, *version;
	size_t nops = 0;

	devid_error_clear(&e);
	CHECK(openapi_nfiles == 1 && strcmp(openapi_files[0].name, "openapi.json") == 0,
	    "one embedded file, openapi.json");
	CHECK(strcmp(openapi_files[0].type, "application/json") == 0, "served as %s",
	    openapi_files[0].type);
	doc = json_loadb(
	    (const char *)openapi_files[0].data, openapi_files[0].len, JSON_REJECT_DUPLICATES, &je);
	CHECK(doc != NULL, "docs/openapi.json: line %d: %s", je.line, je.text);
	if (doc == NULL)
		return test_done();
	version = json_string_value(json_object_get(doc, "openapi"));
	CHECK(version != NULL && strcmp(version, "3.1.0") == 0, "openapi is 3.1.0");

	/* the router as devid serve builds it: no service, metrics or key needed for that */
	a = api_new(NULL, NULL, NULL, &e);
	CHECK(a != NULL, "api_new: %s", e.msg);
	if (a == NULL)
		return test_done();
	router_foreach(api_router(a), collect, &rs);
	CHECK(rs.n > 0, "the router has routes");

	paths = json_object_get(doc, "paths");
	CHECK(json_is_object(paths), "the document has paths");
	json_object_foreach(paths, path, item)
	{
		json_object_foreach(item, key, op)
		{
			if (!is_operation(key))
				continue;
			nops++;
			CHECK(route_has(&rs, key, path),
			    "docs/openapi.json describes %s %s, which the router does not have",
			    key, path);
		}
	}
	for (size_t i = 0; i < rs.n; i++)
		CHECK(rs.r[i].described,
		    "the router has %s %s, which docs/openapi.json does not describe",
		    rs.r[i].method, rs.r[i].pattern);
	printf("%zu routes, %zu operations in docs/openapi.json\n", rs.n, nops);

	api_free(a);
	json_decref(doc);
	return test_done();
}
