/* SPDX-License-Identifier: Apache-2.0 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "error.h"
#include "banned.h"

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *
encode(const uint8_t *p, size_t n, const char *alpha, int pad)
{
	size_t olen = (n / 3) * 4 + 5, i, o = 0;
	char *out;
	uint32_t v;

	if (n > (SIZE_MAX - 5) / 4 * 3 - 3)
		return NULL;
	if ((out = malloc(olen)) == NULL)
		return NULL;
	for (i = 0; i + 2 < n; i += 3) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		out[o++] = alpha[v >> 6 & 63];
		out[o++] = alpha[v & 63];
	}
	if (n - i == 1) {
		v = (uint32_t)p[i] << 16;
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		if (pad) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (n - i == 2) {
		v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[o++] = alpha[v >> 18 & 63];
		out[o++] = alpha[v >> 12 & 63];
		out[o++] = alpha[v >> 6 & 63];
		if (pad)
			out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

char *
b64_encode(const uint8_t *p, size_t n)
{
	return encode(p, n, b64_std, 1);
}

char *
b64url_encode(const uint8_t *p, size_t n)
{
	return encode(p, n, b64_url, 0);
}

static int
sym_value(unsigned char c, int url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

/* sym_value of every byte, 0xff for none: [0] standard, [1] URL alphabet (quads_decode). */
static uint8_t sym_table[2][256];
static pthread_once_t sym_once = PTHREAD_ONCE_INIT;

static void
sym_table_init(void)
{
	for (int url = 0; url < 2; url++)
		for (int c = 0; c < 256; c++) {
			int v = sym_value((unsigned char)c, url);

			sym_table[url][c] = v < 0 ? 0xff : (uint8_t)v;
		}
}

/*
 * The leading run of whole quads of symbols (no padding, whitespace or foreign byte) in
 * s[0..n), decoded into buf by table: what the loop of decode() would make of them, four
 * times as fast. Returns the symbols consumed (a multiple of 4); *o the bytes written.
 */
static size_t
quads_decode(const char *s, size_t n, int url, uint8_t *buf, size_t *o)
{
	const uint8_t *t;
	size_t i = 0;

	if (pthread_once(&sym_once, sym_table_init) != 0)
		return 0;
	t = sym_table[url != 0];
	for (; i + 4 <= n; i += 4) {
		uint8_t a = t[(unsigned char)s[i]], b = t[(unsigned char)s[i + 1]];
		uint8_t c = t[(unsigned char)s[i + 2]], d = t[(unsigned char)s[i + 3]];
		uint32_t acc;

		if ((a | b | c | d) & 0xc0)
			break;
		acc = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | d;
		buf[(*o)++] = (uint8_t)(acc >> 16);
		buf[(*o)++] = (uint8_t)(acc >> 8);
		buf[(*o)++] = (uint8_t)acc;
	}
	return i;
}

/*
 * Decodes the symbols in s[0..n) (whitespace already removed when allowed). With pad, the
 * length must be a multiple of 4 with at most two '='; without, '=' is not allowed at all.
 */
static int
decode(const char *s, size_t n, int url, int pad, int allow_ws, uint8_t **out, size_t *outlen)
{
	uint8_t *buf;
	size_t o = 0, nsym = 0, npad = 0, i;
	uint32_t acc = 0;
	int v;

	*out = NULL;
	*outlen = 0;
	if ((buf = malloc(n / 4 * 3 + 4)) == NULL)
		return DEVID_ENOMEM;
	/* the common case first: quads of symbols; the loop below takes the rest as before */
	nsym = i = quads_decode(s, n, url, buf, &o);
	for (; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (allow_ws && (c == '\r' || c == '\n' || c == ' ' || c == '\t'))
			continue;
		if (c == '=' && pad) {
			npad++;
			continue;
		}
		if (npad > 0 || (v = sym_value(c, url)) < 0)
			goto bad;
		acc = acc << 6 | (uint32_t)v;
		if (++nsym % 4 == 0) {
			buf[o++] = (uint8_t)(acc >> 16);
			buf[o++] = (uint8_t)(acc >> 8);
			buf[o++] = (uint8_t)acc;
			acc = 0;
		}
	}
	switch (nsym % 4) {
	case 0:
		if (npad != 0)
			goto bad;
		break;
	case 1:
		goto bad;
	case 2:
		if ((pad && npad != 2) || (acc & 0xf) != 0)
			goto bad;
		buf[o++] = (uint8_t)(acc >> 4);
		break;
	case 3:
		if ((pad && npad != 1) || (acc & 0x3) != 0)
			goto bad;
		buf[o++] = (uint8_t)(acc >> 10);
		buf[o++] = (uint8_t)(acc >> 2);
		break;
	}
	buf[o] = '\0';
	*out = buf;
	*outlen = o;
	return 0;
bad:
	free(buf);
	return DEVID_EINVAL;
}

int
b64_decode(const char *s, size_t n, int flags, uint8_t **out, size_t *outlen)
{
	return decode(s, n, 0, 1, (flags & B64_ALLOW_WS) != 0, out, outlen);
}

int
b64url_decode(const char *s, size_t n, uint8_t **out, size_t *outlen)
{
	return decode(s, n, 1, 0, 0, out, outlen);
}

void
hex_encode(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

int
hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
pct_encode(struct dynbuf *b, const char *p, size_t n, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		char esc[3] = {'%', hex[c >> 4], hex[c & 15]};
		bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~' ||
		    (keep_slash && c == '/');

		if ((plain ? dynbuf_add(b, &p[i], 1) : dynbuf_add(b, esc, 3)) != 0)
			return DEVID_ENOMEM;
	}
	return 0;
}
