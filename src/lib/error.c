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

/* Cuts a multi-byte UTF-8 character that truncation left incomplete at the end of s. */
static void
utf8_trim(char *s)
{
	size_t n = strlen(s), i = n, need;
	unsigned char c;

	while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80 && n - i < 3)
		i--;
	if (i == 0)
		return;
	c = (unsigned char)s[i - 1];
	if (c < 0x80)
		return;
	need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
	if (n - (i - 1) < need)
		s[i - 1] = '\0';
}

static void
error_vset(struct devid_error *e, int code, const char *fmt, va_list ap)
{
	e->code = code;
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	utf8_trim(e->msg);
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
			utf8_trim(e->msg);
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
	utf8_trim(e->msg);
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
