/* SPDX-License-Identifier: Apache-2.0 */
/*
 * uri.h - the path and query of a request target, percent-decoded strictly.
 *
 * Both are outside input: pure functions of (p, len), no NUL-termination assumed, nothing
 * read past len, every size capped by http_limits.h before anything is decoded. A decoded
 * path or parameter never contains a NUL byte or another control character (< 0x20, 0x7f),
 * so it is safe as a C string and in a log line; a path never carries an encoded '/' (%2F),
 * so decoding it cannot change where its segments begin and end.
 */
#ifndef DEVID_HTTP_URI_H
#define DEVID_HTTP_URI_H

#include <stddef.h>

#include "http/http_limits.h"
#include "lib/error.h"

/*
 * Decodes the raw path p[0..n) into out[0..outsz), NUL-terminated, its length in *outlen.
 * The path must begin with '/'. Errors: DEVID_ELIMIT when n or the result does not fit
 * (HTTP_MAX_PATH), DEVID_EINVAL for a malformed %XX, an encoded '/', NUL or control byte.
 */
int uri_path_decode(
    const char *p, size_t n, char *out, size_t outsz, size_t *outlen, struct devid_error *e);

struct uri_param {
	const char *name; /* decoded, NUL-terminated, points into the query's store */
	const char *value; /* decoded ('+' is a space), "" for a name without '=' */
};

/* A parsed query string; caller-owned, no heap memory (uri_query_parse fills it in place). */
struct uri_query {
	size_t n;
	struct uri_param params[HTTP_MAX_QUERY_PARAMS];
	char store[HTTP_MAX_QUERY + 2 * HTTP_MAX_QUERY_PARAMS];
};

/*
 * Parses the raw query p[0..n) (without the '?'): name=value pairs separated by '&', empty
 * pairs skipped. Errors: DEVID_ELIMIT over HTTP_MAX_QUERY bytes or HTTP_MAX_QUERY_PARAMS
 * parameters, DEVID_EINVAL for bad encoding, an empty name or a name given twice.
 * q is always left valid (empty on error).
 */
int uri_query_parse(const char *p, size_t n, struct uri_query *q, struct devid_error *e);

/* The decoded value of parameter name, borrowed from q, or NULL when absent. */
const char *uri_query_get(const struct uri_query *q, const char *name);

#endif
