/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "error.h"
#include "banned.h"

void
devid_error_clear(struct devid_error *e)
{
	if (e == NULL)
		return;
	e->code = 0;
	e->msg[0] = '\0';
}

/*
 * Keeps a message valid UTF-8, as JSON needs: a character that truncation cut at the end is
 * dropped, and any other byte that is not part of a well-formed character (messages may quote
 * outside input) becomes '?'.
 */
static void
utf8_sanitize(char *s)
{
	unsigned char *p = (unsigned char *)s;

	while (*p != '\0') {
		unsigned char c = *p, lo = 0x80, hi = 0xbf;
		size_t need, k;

		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			need = 1;
		else if (c >= 0xe0 && c <= 0xef)
			need = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			need = 3;
		else {
			*p++ = '?';
			continue;
		}
		/* no overlong forms, no surrogates, nothing above U+10FFFF (RFC 3629) */
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
		else if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
		for (k = 1; k <= need; k++) {
			unsigned char lim_lo = k == 1 ? lo : 0x80, lim_hi = k == 1 ? hi : 0xbf;

			if (p[k] < lim_lo || p[k] > lim_hi)
				break;
		}
		if (k <= need) {
			if (p[k] == '\0') {
				*p = '\0'; /* cut at the end */
				return;
			}
			*p++ = '?';
			continue;
		}
		p += need + 1;
	}
}

static void
error_vset(struct devid_error *e, int code, const char *fmt, va_list ap)
{
	e->code = code;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	utf8_sanitize(e->msg);
}

int
devid_error_set(struct devid_error *e, int code, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return code;
	va_start(ap, fmt);
	error_vset(e, code, fmt, ap);
	va_end(ap);
	return code;
}

int
devid_error_ssl(struct devid_error *e, int code, const char *fmt, ...)
{
	va_list ap;
	unsigned long err = ERR_peek_last_error();
	char buf[256];
	size_t n;

	if (e != NULL) {
		va_start(ap, fmt);
		error_vset(e, code, fmt, ap);
		va_end(ap);
		if (err != 0) {
			ERR_error_string_n(err, buf, sizeof(buf));
			n = strlen(e->msg);
			snprintf(e->msg + n, sizeof(e->msg) - n, ": %s", buf);
			utf8_sanitize(e->msg);
		}
	}
	ERR_clear_error();
	return code;
}

void
devid_error_prefix(struct devid_error *e, const char *fmt, ...)
{
	char prefix[DEVID_ERROR_MAX], old[DEVID_ERROR_MAX];
	size_t n, m;
	va_list ap;

	if (e == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	/* truncation keeps the start of the message, which says what failed */
	n = strlen(prefix);
	if (n > sizeof(e->msg) - 3)
		n = sizeof(e->msg) - 3;
	memcpy(e->msg, prefix, n);
	memcpy(e->msg + n, ": ", 2);
	m = strlen(old);
	if (m > sizeof(e->msg) - n - 3)
		m = sizeof(e->msg) - n - 3;
	memcpy(e->msg + n + 2, old, m);
	e->msg[n + 2 + m] = '\0';
	utf8_sanitize(e->msg);
}

const char *
devid_strerror(int code)
{
	switch (code) {
	case DEVID_OK:
		return "ok";
	case DEVID_EINVAL:
		return "invalid input";
	case DEVID_ENOMEM:
		return "out of memory";
	case DEVID_EIO:
		return "i/o error";
	case DEVID_ECRYPTO:
		return "cryptographic check failed";
	case DEVID_ENOTFOUND:
		return "not found";
	case DEVID_ECONFLICT:
		return "conflict";
	case DEVID_ELIMIT:
		return "limit exceeded";
	case DEVID_EAUTH:
		return "not allowed";
	default:
		return "internal error";
	}
}
