/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cookie.h - one cookie out of a request's Cookie header (RFC 6265 4.2.1, 5.4): "name=value"
 * pairs separated by ';', with optional spaces and tabs around each part. Outside input, read
 * as browsers write it and leniently where they differ: a pair without '=' and a pair whose
 * value holds a byte outside RFC 6265's cookie-octet are skipped, not fatal; a value in
 * double quotes is given without them. A pure function of (p, len): no NUL is needed and
 * nothing past len is read. Driven by the fuzz target fuzz_cookie.
 */
#ifndef DEVID_HTTP_COOKIE_H
#define DEVID_HTTP_COOKIE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The value of the first well-formed cookie named name (compared exactly: cookie names are
 * case-sensitive) in p[0..len): true with *val (borrowed from p, not NUL-terminated) and
 * *vlen, which may be 0; false when there is none.
 */
bool cookie_get(const char *p, size_t len, const char *name, const char **val, size_t *vlen);

/* Whether c is an RFC 6265 4.1.1 cookie-octet. */
bool cookie_octet(unsigned char c);

#endif
