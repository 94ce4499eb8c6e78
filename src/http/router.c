/* SPDX-License-Identifier: Apache-2.0 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/router.h"
#include "lib/xmalloc.h"
#include "lib/banned.h"

#define METHOD_MAX 15

struct segment {
	bool param;
	const char *text; /* the literal, or the parameter's name; points into route->pattern */
	size_t len;
};

struct route {
	char method[METHOD_MAX + 1];
	char *pattern; /* as given, for labels and logs */
	char *names; /* a copy of pattern cut into NUL-terminated segment texts */
	size_t nseg;
	struct segment seg[ROUTER_MAX_SEGMENTS];
	http_handler_fn *fn;
	void *arg;
};

struct router {
	size_t n;
	struct route *routes[ROUTER_MAX_ROUTES];
};

/* One segment of a path being matched: p[0..len), not NUL-terminated. */
struct span {
	const char *p;
	size_t len;
};

struct router *
router_new(void)
{
	return xcalloc(1, sizeof(struct router));
}

static void
route_free(struct route *rt)
{
	if (rt == NULL)
		return;
	free(rt->pattern);
	free(rt->names);
	free(rt);
}

void
router_free(struct router *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		route_free(r->routes[i]);
	free(r);
}

static bool
method_ok(const char *m)
{
	size_t n = strlen(m);

	if (n == 0 || n > METHOD_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (m[i] < 'A' || m[i] > 'Z')
			return false;
	}
	return true;
}

static bool
param_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > ROUTER_MAX_NAME_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || c == '_' || (i > 0 && c >= '0' && c <= '9')))
			return false;
	}
	return true;
}

/* A literal segment: printable ASCII without the characters of templates and URIs. */
static bool
literal_ok(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= 0x20 || c >= 0x7f || strchr("{}?#%", c) != NULL)
			return false;
	}
	return true;
}

/* Cuts rt->names (a copy of the pattern) into segments. */
static int
route_parse(struct route *rt, struct devid_error *e)
{
	char *p = rt->names, *end;
	size_t nparams = 0;

	if (p[0] != '/')
		return devid_error_set(
		    e, DEVID_EINVAL, "route %s: does not begin with '/'", rt->pattern);
	p++;
	for (;;) {
		struct segment *sg;
		size_t len;

		if (rt->nseg == ROUTER_MAX_SEGMENTS)
			return devid_error_set(e, DEVID_ELIMIT, "route %s: more than %d segments",
			    rt->pattern, ROUTER_MAX_SEGMENTS);
		end = strchr(p, '/');
		len = end != NULL ? (size_t)(end - p) : strlen(p);
		sg = &rt->seg[rt->nseg++];
		if (len > 0 && p[0] == '{') {
			if (len < 3 || p[len - 1] != '}' || !param_name_ok(p + 1, len - 2))
				return devid_error_set(e, DEVID_EINVAL,
				    "route %s: segment %zu is not a valid {name}", rt->pattern,
				    rt->nseg);
			if (nparams == ROUTER_MAX_PARAMS)
				return devid_error_set(e, DEVID_ELIMIT,
				    "route %s: more than %d parameters", rt->pattern,
				    ROUTER_MAX_PARAMS);
			sg->param = true;
			sg->text = p + 1;
			sg->len = len - 2;
			p[len - 1] = '\0';
			for (size_t i = 0; i + 1 < rt->nseg; i++) {
				if (rt->seg[i].param && rt->seg[i].len == sg->len &&
				    memcmp(rt->seg[i].text, sg->text, sg->len) == 0)
					return devid_error_set(e, DEVID_EINVAL,
					    "route %s: parameter {%s} appears twice", rt->pattern,
					    sg->text);
			}
			nparams++;
		} else {
			/* an empty segment only as the root "/" or a trailing '/' */
			if (!literal_ok(p, len) || (len == 0 && end != NULL))
				return devid_error_set(e, DEVID_EINVAL,
				    "route %s: segment %zu is empty or has a character not allowed",
				    rt->pattern, rt->nseg);
			sg->param = false;
			sg->text = p;
			sg->len = len;
		}
		if (end == NULL)
			break;
		*end = '\0';
		p = end + 1;
	}
	return 0;
}

int
router_add(struct router *r, const char *method, const char *pattern, http_handler_fn *fn,
    void *arg, struct devid_error *e)
{
	struct route *rt = NULL;
	int rc = DEVID_EINVAL;

	if (!method_ok(method)) {
		devid_error_set(e, DEVID_EINVAL,
		    "route %s: method \"%s\" is not an upper-case token", pattern, method);
		goto out;
	}
	if (fn == NULL) {
		devid_error_set(e, DEVID_EINVAL, "route %s %s: no handler", method, pattern);
		goto out;
	}
	if (r->n == ROUTER_MAX_ROUTES) {
		rc = devid_error_set(e, DEVID_ELIMIT, "route %s %s: more than %d routes", method,
		    pattern, ROUTER_MAX_ROUTES);
		goto out;
	}
	rt = xcalloc(1, sizeof(*rt));
	snprintf(rt->method, sizeof(rt->method), "%s", method);
	rt->pattern = xstrdup(pattern);
	rt->names = xstrdup(pattern);
	rt->fn = fn;
	rt->arg = arg;
	if ((rc = route_parse(rt, e)) != 0)
		goto out;
	r->routes[r->n++] = rt;
	rt = NULL;
	rc = 0;
out:
	route_free(rt);
	return rc;
}

/* Whether rt's pattern matches the segments; captures the parameters into m if m != NULL. */
static bool
route_try(const struct route *rt, const struct span *segs, size_t nsegs, struct route_match *m)
{
	size_t np = 0;

	if (rt->nseg != nsegs)
		return false;
	for (size_t i = 0; i < nsegs; i++) {
		const struct segment *sg = &rt->seg[i];
		const struct span *s = &segs[i];

		if (!sg->param) {
			if (s->len != sg->len || memcmp(s->p, sg->text, s->len) != 0)
				return false;
			continue;
		}
		if (s->len == 0 || s->len > ROUTER_MAX_PARAM_LEN ||
		    memchr(s->p, '\0', s->len) != NULL || (s->len == 1 && s->p[0] == '.') ||
		    (s->len == 2 && s->p[0] == '.' && s->p[1] == '.'))
			return false;
		if (m != NULL) {
			struct route_param *rp = &m->params[np];

			rp->name = sg->text;
			rp->len = s->len;
			memcpy(rp->value, s->p, s->len);
			rp->value[s->len] = '\0';
		}
		np++;
	}
	if (m != NULL)
		m->nparams = np;
	return true;
}

/* Appends method to the comma-separated allow list unless it is there already. */
static void
allow_add(char *allow, size_t size, const char *method)
{
	size_t len = strlen(allow), mlen = strlen(method);
	const char *p = allow;

	while ((p = strstr(p, method)) != NULL) {
		if ((p == allow || p[-1] == ' ') && (p[mlen] == ',' || p[mlen] == '\0'))
			return;
		p += mlen;
	}
	if (len + mlen + 3 > size)
		return; /* the list is full: the status is still right */
	snprintf(allow + len, size - len, "%s%s", len > 0 ? ", " : "", method);
}

enum router_result
router_match(
    const struct router *r, const char *method, const char *p, size_t n, struct route_match *m)
{
	struct span segs[ROUTER_MAX_SEGMENTS];
	const struct route *found = NULL, *get = NULL, *first = NULL;
	bool head = strcmp(method, "HEAD") == 0;
	size_t nsegs = 0, i = 1;

	memset(m, 0, offsetof(struct route_match, params));
	m->allow[0] = '\0';
	if (n == 0 || p[0] != '/')
		return ROUTER_NOT_FOUND;
	/* cut p[1..n) at each '/': "/" is one empty segment, "/a/" is "a" and "" */
	for (;;) {
		const char *slash = memchr(p + i, '/', n - i);
		size_t len = slash != NULL ? (size_t)(slash - (p + i)) : n - i;

		if (nsegs == ROUTER_MAX_SEGMENTS)
			return ROUTER_NOT_FOUND; /* longer than any pattern can be */
		segs[nsegs].p = p + i;
		segs[nsegs].len = len;
		nsegs++;
		if (slash == NULL)
			break;
		i += len + 1;
	}

	for (i = 0; i < r->n; i++) {
		const struct route *rt = r->routes[i];

		if (!route_try(rt, segs, nsegs, NULL))
			continue;
		if (first == NULL)
			first = rt;
		allow_add(m->allow, sizeof(m->allow), rt->method);
		if (strcmp(rt->method, "GET") == 0) /* GET routes answer HEAD too */
			allow_add(m->allow, sizeof(m->allow), "HEAD");
		if (found == NULL && strcmp(rt->method, method) == 0)
			found = rt;
		if (get == NULL && strcmp(rt->method, "GET") == 0)
			get = rt;
	}
	if (first == NULL)
		return ROUTER_NOT_FOUND;
	if (found == NULL && head && get != NULL)
		found = get;
	if (found == NULL) {
		m->pattern = first->pattern;
		return ROUTER_METHOD_NOT_ALLOWED;
	}
	route_try(found, segs, nsegs, m);
	m->route = found;
	m->pattern = found->pattern;
	return ROUTER_MATCH;
}

void
router_foreach(const struct router *r,
    void (*fn)(const char *method, const char *pattern, void *arg), void *arg)
{
	for (size_t i = 0; i < r->n; i++)
		fn(r->routes[i]->method, r->routes[i]->pattern, arg);
}

http_handler_fn *
route_handler(const struct route *rt, void **arg)
{
	*arg = rt->arg;
	return rt->fn;
}

void
router_handle(struct http_request *req, struct http_response *resp, void *arg)
{
	struct router *r = arg;
	struct route_match m;
	const char *method = http_request_method(req), *path;
	http_handler_fn *fn;
	void *fnarg;
	size_t n;

	path = http_request_path(req, &n);
	switch (router_match(r, method, path, n, &m)) {
	case ROUTER_MATCH:
		http_request_set_route(req, m.pattern);
		http_request_set_params(req, m.params, m.nparams);
		fn = route_handler(m.route, &fnarg);
		fn(req, resp, fnarg);
		http_request_set_params(req, NULL, 0);
		break;
	case ROUTER_METHOD_NOT_ALLOWED:
		http_request_set_route(req, m.pattern);
		http_response_set_header(resp, "Allow", m.allow);
		http_error(resp, 405, "method_not_allowed",
		    "%s is not allowed on this resource; allowed: %s", method, m.allow);
		break;
	case ROUTER_NOT_FOUND:
	default:
		http_error(resp, 404, "not_found", "no such resource");
		break;
	}
}
