/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynbuf.h"
#include "error.h"
#include "banned.h"

void
dynbuf_init(struct dynbuf *b, size_t max)
{
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

void
dynbuf_release(struct dynbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
}

void
dynbuf_reset(struct dynbuf *b)
{
	b->len = 0;
	if (b->p != NULL)
		b->p[0] = '\0';
}

/* Makes room for n more bytes plus the trailing NUL. */
static int
dynbuf_grow(struct dynbuf *b, size_t n)
{
	size_t need, cap;
	uint8_t *p;

	if (n > b->max - b->len)
		return DEVID_ELIMIT;
	need = b->len + n + 1;
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (b->max < SIZE_MAX && cap > b->max + 1)
		cap = b->max + 1;
	if ((p = realloc(b->p, cap)) == NULL)
		return DEVID_ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

int
dynbuf_add(struct dynbuf *b, const void *p, size_t n)
{
	int rc;

	if ((rc = dynbuf_grow(b, n)) != 0)
		return rc;
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int
dynbuf_addstr(struct dynbuf *b, const char *s)
{
	return dynbuf_add(b, s, strlen(s));
}

/*
 * Formats straight into the free space; only when the text does not fit is the buffer grown
 * (once, to the exact size vsnprintf reported) and the text formatted a second time. A
 * refused append may have scribbled past len, so the NUL after the content is put back.
 */
int
dynbuf_addf(struct dynbuf *b, const char *fmt, ...)
{
	va_list ap;
	size_t room;
	int n, rc;

	if (b->p == NULL && (rc = dynbuf_grow(b, 0)) != 0)
		return rc;
	room = b->cap - b->len; /* >= 1: grow always leaves room for the NUL */
	va_start(ap, fmt);
	n = vsnprintf((char *)b->p + b->len, room, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < room && (size_t)n <= b->max - b->len) {
		b->len += (size_t)n;
		return 0;
	}
	b->p[b->len] = '\0';
	if (n < 0)
		return DEVID_EINVAL;
	if ((rc = dynbuf_grow(b, (size_t)n)) != 0)
		return rc;
	va_start(ap, fmt);
	vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

const char *
dynbuf_str(const struct dynbuf *b)
{
	return b->p != NULL ? (const char *)b->p : "";
}

uint8_t *
dynbuf_detach(struct dynbuf *b, size_t *len)
{
	uint8_t *p = b->p;

	if (len != NULL)
		*len = b->len;
	if (p == NULL)
		p = calloc(1, 1);
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
	return p;
}
