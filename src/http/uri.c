/* SPDX-License-Identifier: Apache-2.0 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "http/uri.h"
#include "lib/base64.h"
#include "lib/banned.h"

/*
 * Decodes p[0..n) into out, which has room for at least n + 1 bytes (decoding never
 * lengthens). plus: '+' means a space (query strings). slash_ok: an encoded '/' is allowed.
 * Returns the decoded length, or -1 with e set; what names the part ("path", "query").
 */
static long
pct_decode(const char *p, size_t n, char *out, bool plus, bool slash_ok, const char *what,
    struct devid_error *e)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '%') {
			int hi, lo;

			if (n - i < 3 || (hi = hex_digit((unsigned char)p[i + 1])) < 0 ||
			    (lo = hex_digit((unsigned char)p[i + 2])) < 0) {
				devid_error_set(e, DEVID_EINVAL,
				    "%s: '%%' at byte %zu is not followed by two hex digits", what,
				    i);
				return -1;
			}
			c = (unsigned char)(hi << 4 | lo);
			i += 2;
			if (c == '/' && !slash_ok) {
				devid_error_set(e, DEVID_EINVAL,
				    "%s: an encoded '/' (%%2F) is not allowed", what);
				return -1;
			}
		} else if (c == '+' && plus) {
			c = ' ';
		}
		if (c < 0x20 || c == 0x7f) {
			devid_error_set(e, DEVID_EINVAL, "%s: control character 0x%02x", what, c);
			return -1;
		}
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return (long)o;
}

int
uri_path_decode(
    const char *p, size_t n, char *out, size_t outsz, size_t *outlen, struct devid_error *e)
{
	long len;

	*outlen = 0;
	if (outsz > 0)
		out[0] = '\0';
	if (n > HTTP_MAX_PATH || n >= outsz)
		return devid_error_set(
		    e, DEVID_ELIMIT, "path: %zu bytes, limit %d", n, HTTP_MAX_PATH);
	if (n == 0 || p[0] != '/')
		return devid_error_set(e, DEVID_EINVAL, "path: does not begin with '/'");
	if ((len = pct_decode(p, n, out, false, false, "path", e)) < 0) {
		out[0] = '\0';
		return DEVID_EINVAL;
	}
	*outlen = (size_t)len;
	return 0;
}

int
uri_query_parse(const char *p, size_t n, struct uri_query *q, struct devid_error *e)
{
	size_t i = 0, used = 0;
	int rc = DEVID_EINVAL;

	q->n = 0;
	if (n > HTTP_MAX_QUERY) {
		rc = devid_error_set(
		    e, DEVID_ELIMIT, "query: %zu bytes, limit %d", n, HTTP_MAX_QUERY);
		goto out;
	}
	while (i < n) {
		const char *pair = p + i, *amp, *eq;
		size_t plen, nlen, vlen;
		char *name, *value;
		long dn, dv;

		amp = memchr(pair, '&', n - i);
		plen = amp != NULL ? (size_t)(amp - pair) : n - i;
		i += plen + 1;
		if (plen == 0)
			continue;
		if (q->n == HTTP_MAX_QUERY_PARAMS) {
			rc = devid_error_set(e, DEVID_ELIMIT, "query: more than %d parameters",
			    HTTP_MAX_QUERY_PARAMS);
			goto out;
		}
		eq = memchr(pair, '=', plen);
		nlen = eq != NULL ? (size_t)(eq - pair) : plen;
		vlen = eq != NULL ? plen - nlen - 1 : 0;
		if (nlen == 0) {
			devid_error_set(e, DEVID_EINVAL, "query: a parameter has no name");
			goto out;
		}
		/* each part decodes to at most its own length, plus a NUL: the store has room */
		name = q->store + used;
		if ((dn = pct_decode(pair, nlen, name, true, true, "query", e)) < 0)
			goto out;
		used += (size_t)dn + 1;
		value = q->store + used;
		if ((dv = pct_decode(
			 eq != NULL ? eq + 1 : "", vlen, value, true, true, "query", e)) < 0)
			goto out;
		used += (size_t)dv + 1;
		if (dn == 0 || uri_query_get(q, name) != NULL) {
			devid_error_set(e, DEVID_EINVAL, "query: parameter \"%s\" %s", name,
			    dn == 0 ? "has an empty name" : "is given twice");
			goto out;
		}
		q->params[q->n].name = name;
		q->params[q->n].value = value;
		q->n++;
	}
	rc = 0;
out:
	if (rc != 0)
		q->n = 0;
	return rc;
}

const char *
uri_query_get(const struct uri_query *q, const char *name)
{
	for (size_t i = 0; i < q->n; i++) {
		if (strcmp(q->params[i].name, name) == 0)
			return q->params[i].value;
	}
	return NULL;
}
