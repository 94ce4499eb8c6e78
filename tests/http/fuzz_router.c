/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_router - libFuzzer target for what src/http does with a request target before any
 * handler sees it: the path percent-decoded (uri_path_decode), the query parsed
 * (uri_query_parse), and the decoded path matched against the routes of DESIGN.md's REST API
 * (router_match). The raw bytes are matched too, so the router also sees NUL bytes, '%' and
 * paths that decoding would refuse.
 *
 * Input: "METHOD SP TARGET", TARGET = PATH ["?" QUERY]; without a space the method is GET.
 * Beyond not crashing, it checks the promises of uri.h and router.h and aborts on a broken
 * one: a decoded path holds no control byte; a captured parameter is non-empty, not "." or
 * "..", at most ROUTER_MAX_PARAM_LEN bytes, without '/' or NUL; query names are unique.
 *
 * The whole input is also an X-Request-Id value (request_id_valid): one it keeps is 1 to
 * HTTP_MAX_REQUEST_ID bytes that a log line and a header can carry as they are.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/request_id.h"
#include "http/router.h"
#include "http/uri.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
h(struct http_request *req, struct http_response *resp, void *arg)
{
	(void)req;
	(void)resp;
	(void)arg;
}

static struct router *
routes(void)
{
	static const char *const table[][2] = {
	    {"POST", "/api/v1/vendor/batches"},
	    {"POST", "/api/v1/claims"},
	    {"POST", "/api/v1/imports"},
	    {"GET", "/api/v1/batches"},
	    {"GET", "/api/v1/batches/{vendor}/{batch}"},
	    {"GET", "/api/v1/batches/{vendor}/{batch}/manifest"},
	    {"POST", "/api/v1/batches/{vendor}/{batch}/transfer"},
	    {"POST", "/api/v1/batches/{vendor}/{batch}/release"},
	    {"GET", "/api/v1/devices"},
	    {"GET", "/api/v1/devices/{udid}"},
	    {"POST", "/api/v1/devices/{udid}/revoke"},
	    {"GET", "/api/v1/connectors"},
	    {"POST", "/api/v1/connectors"},
	    {"GET", "/api/v1/connectors/{name}"},
	    {"PUT", "/api/v1/connectors/{name}"},
	    {"DELETE", "/api/v1/connectors/{name}"},
	    {"POST", "/api/v1/provision"},
	    {"GET", "/api/v1/jobs"},
	    {"GET", "/api/v1/audit"},
	    {"GET", "/api/v1/tenants/{tenant}/crl"},
	    {"GET", "/healthz"},
	    {"GET", "/metrics"},
	    {"GET", "/"},
	    {"GET", "/static/"},
	    {"HEAD", "/static/"},
	    {"GET", "/a/{p0}/{p1}/{p2}/{p3}/{p4}/{p5}/{p6}/{p7}"},
	};
	static struct router *r;

	if (r == NULL) {
		r = router_new();
		for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
			if (router_add(r, table[i][0], table[i][1], h, NULL, NULL) != 0)
				abort();
		}
	}
	return r;
}

static void
check_match(const char *method, const char *p, size_t n)
{
	struct route_match m;
	enum router_result res = router_match(routes(), method, p, n, &m);

	if (res == ROUTER_MATCH) {
		if (m.route == NULL || m.pattern == NULL || m.nparams > ROUTER_MAX_PARAMS)
			abort();
		for (size_t i = 0; i < m.nparams; i++) {
			const struct route_param *rp = &m.params[i];

			if (rp->len == 0 || rp->len > ROUTER_MAX_PARAM_LEN ||
			    strlen(rp->value) != rp->len ||
			    memchr(rp->value, '/', rp->len) != NULL ||
			    strcmp(rp->value, ".") == 0 || strcmp(rp->value, "..") == 0 ||
			    rp->name == NULL || rp->name[0] == '\0')
				abort();
		}
	} else if (res == ROUTER_METHOD_NOT_ALLOWED) {
		if (m.allow[0] == '\0' || m.pattern == NULL || m.route != NULL)
			abort();
	} else if (res != ROUTER_NOT_FOUND) {
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"};
	const char *in = (const char *)data, *method = "GET", *target = in, *sp, *qm;
	char path[HTTP_MAX_PATH + 1];
	struct uri_query q;
	size_t tlen = size, plen, dlen;

	if ((sp = memchr(in, ' ', size)) != NULL) {
		for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
			if ((size_t)(sp - in) == strlen(methods[i]) &&
			    memcmp(in, methods[i], strlen(methods[i])) == 0)
				method = methods[i];
		}
		target = sp + 1;
		tlen = size - (size_t)(target - in);
	}
	qm = memchr(target, '?', tlen);
	plen = qm != NULL ? (size_t)(qm - target) : tlen;

	if (request_id_valid(in, size)) {
		if (size == 0 || size > HTTP_MAX_REQUEST_ID)
			abort();
		for (size_t i = 0; i < size; i++) {
			if (in[i] <= 0x20 || in[i] >= 0x7f || strchr("=\"\\", in[i]) != NULL)
				abort();
		}
	}
	check_match(method, target, plen);
	if (uri_path_decode(target, plen, path, sizeof(path), &dlen, NULL) == 0) {
		if (dlen > HTTP_MAX_PATH || strlen(path) != dlen || path[0] != '/')
			abort();
		for (size_t i = 0; i < dlen; i++) {
			if ((unsigned char)path[i] < 0x20 || path[i] == 0x7f)
				abort();
		}
		check_match(method, path, dlen);
	}
	if (qm != NULL && uri_query_parse(qm + 1, tlen - plen - 1, &q, NULL) == 0) {
		if (q.n > HTTP_MAX_QUERY_PARAMS)
			abort();
		for (size_t i = 0; i < q.n; i++) {
			if (q.params[i].name[0] == '\0' ||
			    uri_query_get(&q, q.params[i].name) != q.params[i].value)
				abort();
		}
	}
	return 0;
}
