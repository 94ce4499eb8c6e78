/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_cookie.c - libFuzzer target for cookie_get(), which reads the Cookie header a browser
 * (or anyone) sends: the session cookie of the web console comes out of it. The first byte
 * chooses the cookie name looked for; the rest is the header value.
 *
 * Besides what the sanitizers catch, it aborts when the reader breaks its contract: nothing
 * found means no value; a value found lies inside the header, is made of cookie-octets only,
 * and stands where a pair "name=value" puts it: after the name, optional white space, '='
 * and optional white space (and a '"' when quoted), with the name at the start of the
 * header or after a ';' and white space.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/cookie.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_cookie: contract broken: %s\n", what);
		abort();
	}
}

static bool
ows(char c)
{
	return c == ' ' || c == '\t';
}

/* Checks that p[0..at) ends with "name" OWS "=" OWS, the name starting a pair. */
static void
check_pair(const char *p, size_t at, const char *name, bool quoted)
{
	size_t nlen = strlen(name), i = at;

	if (quoted) {
		expect(i > 0 && p[i - 1] == '"', "a quoted value without its quote");
		i--;
	}
	while (i > 0 && ows(p[i - 1]))
		i--;
	expect(i > 0 && p[i - 1] == '=', "no '=' before the value");
	i--;
	while (i > 0 && ows(p[i - 1]))
		i--;
	expect(i >= nlen && memcmp(p + i - nlen, name, nlen) == 0, "the name is not before '='");
	i -= nlen;
	while (i > 0 && ows(p[i - 1]))
		i--;
	expect(i == 0 || p[i - 1] == ';', "the name does not start a pair");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {"devid_session", "a", "x y", "="};
	const char *p, *val, *name;
	size_t len, vlen, at;
	bool found, quoted;

	if (size < 1)
		return 0;
	name = names[data[0] % (sizeof(names) / sizeof(names[0]))];
	p = (const char *)data + 1;
	len = size - 1;
	found = cookie_get(p, len, name, &val, &vlen);
	if (!found) {
		expect(val == NULL && vlen == 0, "nothing found, yet a value");
		return 0;
	}
	expect(val != NULL && val >= p && val <= p + len && vlen <= (size_t)(p + len - val),
	    "the value is not inside the header");
	for (size_t i = 0; i < vlen; i++)
		expect(cookie_octet((unsigned char)val[i]), "a value byte that is no cookie-octet");
	at = (size_t)(val - p);
	quoted = at > 0 && p[at - 1] == '"' && at + vlen < len && p[at + vlen] == '"';
	expect(
	    at + vlen + quoted == len || p[at + vlen + quoted] == ';' || ows(p[at + vlen + quoted]),
	    "the value does not end its pair");
	check_pair(p, at, name, quoted);
	return 0;
}
