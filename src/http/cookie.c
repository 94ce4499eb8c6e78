/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cookie.c - reading one cookie from a Cookie header (see cookie.h).
 */
#include <string.h>

#include "http/cookie.h"
#include "lib/banned.h"

bool
cookie_octet(unsigned char c)
{
	/* %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E: no CTL, space, DQUOTE, ',', ';', '\' */
	return c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' && c != '\\';
}

static bool
ows(char c)
{
	return c == ' ' || c == '\t';
}

/* p[*start..*end) without the optional white space at either end. */
static void
trim(const char *p, size_t *start, size_t *end)
{
	while (*start < *end && ows(p[*start]))
		(*start)++;
	while (*end > *start && ows(p[*end - 1]))
		(*end)--;
}

bool
cookie_get(const char *p, size_t len, const char *name, const char **val, size_t *vlen)
{
	size_t nlen = strlen(name), pos = 0;

	*val = NULL;
	*vlen = 0;
	while (pos < len) {
		const char *semi = memchr(p + pos, ';', len - pos), *eq;
		size_t end = semi != NULL ? (size_t)(semi - p) : len, ns = pos, ne, vs, ve;
		bool ok = true;

		pos = end + 1;
		if ((eq = memchr(p + ns, '=', end - ns)) == NULL)
			continue;
		ne = (size_t)(eq - p);
		vs = ne + 1;
		ve = end;
		trim(p, &ns, &ne);
		trim(p, &vs, &ve);
		if (ne - ns != nlen || memcmp(p + ns, name, nlen) != 0)
			continue;
		if (ve - vs >= 2 && p[vs] == '"' && p[ve - 1] == '"') {
			vs++;
			ve--;
		}
		for (size_t i = vs; i < ve && ok; i++)
			ok = cookie_octet((unsigned char)p[i]);
		if (!ok)
			continue;
		*val = p + vs;
		*vlen = ve - vs;
		return true;
	}
	return false;
}
