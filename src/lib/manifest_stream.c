/* SPDX-License-Identifier: Apache-2.0 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonscan.h"
#include "limits.h"
#include "manifest_stream.h"
#include "banned.h"

/* Input read at once; the buffer also holds the unread rest, up to an element. */
#define STREAM_READ_CHUNK ((size_t)1 << 20)
#define STREAM_BUF (STREAM_READ_CHUNK + MAX_STREAM_ELEMENT)

enum stream_state {
	STREAM_START, /* before '[' */
	STREAM_FIRST, /* after '[': the first element, or a ']' that makes the array empty */
	STREAM_NEXT, /* after an element: ',' or ']' */
	STREAM_END, /* after ']' and the whitespace to the end */
	STREAM_FAILED,
};

struct manifest_stream {
	manifest_stream_read_fn *read;
	void *arg;
	uint8_t *buf;
	size_t len, pos; /* buf[0..len) read, buf[pos..len) not used yet */
	uint64_t consumed; /* the input's offset of buf[0] */
	bool eof;
	enum stream_state st;
	uint64_t elements;
	int failed_rc;
	struct devid_error failed; /* what made it fail, told again on every call */
};

struct manifest_stream *
manifest_stream_new(manifest_stream_read_fn *read, void *arg)
{
	struct manifest_stream *s = calloc(1, sizeof(*s));

	if (s == NULL || (s->buf = malloc(STREAM_BUF)) == NULL) {
		free(s);
		return NULL;
	}
	s->read = read;
	s->arg = arg;
	return s;
}

void
manifest_stream_free(struct manifest_stream *s)
{
	if (s == NULL)
		return;
	free(s->buf);
	free(s);
}

uint64_t
manifest_stream_offset(const struct manifest_stream *s)
{
	return s->consumed + s->pos;
}

uint64_t
manifest_stream_elements(const struct manifest_stream *s)
{
	return s->elements;
}

static int __attribute__((format(printf, 4, 5)))
fail(struct manifest_stream *s, struct devid_error *e, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->failed.msg, sizeof(s->failed.msg), fmt, ap);
	va_end(ap);
	s->failed.code = rc;
	s->failed_rc = rc;
	s->st = STREAM_FAILED;
	return devid_error_set(e, rc, "%s", s->failed.msg);
}

/* Reads more after what is unread, which moves to the front. At the end of input: eof. */
static int
fill(struct manifest_stream *s, struct devid_error *e)
{
	struct devid_error re;
	size_t got = 0;
	int rc;

	if (s->pos > 0) {
		memmove(s->buf, s->buf + s->pos, s->len - s->pos);
		s->consumed += s->pos;
		s->len -= s->pos;
		s->pos = 0;
	}
	devid_error_clear(&re);
	if ((rc = s->read(s->arg, s->buf + s->len, STREAM_BUF - s->len, &got, &re)) != 0)
		return fail(s, e, rc, "%s", re.msg);
	if (got == 0)
		s->eof = true;
	s->len += got;
	return 0;
}

/* Skips whitespace, reading on as needed: *c the next byte, or -1 at the end of input. */
static int
peek(struct manifest_stream *s, int *c, struct devid_error *e)
{
	int rc;

	for (;;) {
		s->pos = jsonscan_ws(s->buf, s->len, s->pos);
		if (s->pos < s->len) {
			*c = s->buf[s->pos];
			return 0;
		}
		if (s->eof) {
			*c = -1;
			return 0;
		}
		if ((rc = fill(s, e)) != 0)
			return rc;
	}
}

/* The end of the element at buf[pos], reading on until it is all in the buffer. */
static int
element_end(struct manifest_stream *s, size_t *end, struct devid_error *e)
{
	int rc;

	if (memchr(",]}:", s->buf[s->pos], 4) != NULL)
		return fail(s, e, DEVID_EINVAL, "manifest: a value was expected at byte %llu",
		    (unsigned long long)manifest_stream_offset(s));
	for (;;) {
		/* a value that reaches the end of the buffer may go on in the input */
		*end = jsonscan_value_end(s->buf, s->len, s->pos);
		if (*end != 0 && (*end < s->len || s->eof))
			return 0;
		if (s->len - s->pos >= MAX_STREAM_ELEMENT)
			return fail(s, e, DEVID_EINVAL,
			    "manifest: entry %llu (at byte %llu) is over %d bytes, or does not end",
			    (unsigned long long)s->elements,
			    (unsigned long long)manifest_stream_offset(s), MAX_STREAM_ELEMENT);
		if (s->eof)
			return fail(s, e, DEVID_EINVAL,
			    "manifest: entry %llu (at byte %llu) does not end",
			    (unsigned long long)s->elements,
			    (unsigned long long)manifest_stream_offset(s));
		if ((rc = fill(s, e)) != 0)
			return rc;
	}
}

/* After ']': nothing but whitespace to the end. */
static int
array_end(struct manifest_stream *s, struct devid_error *e)
{
	int c, rc;

	s->pos++;
	if ((rc = peek(s, &c, e)) != 0)
		return rc;
	if (c != -1)
		return fail(s, e, DEVID_EINVAL, "manifest: bytes after the array at byte %llu",
		    (unsigned long long)manifest_stream_offset(s));
	s->st = STREAM_END;
	return 0;
}

int
manifest_stream_page(
    struct manifest_stream *s, size_t n, struct dynbuf *out, size_t *count, struct devid_error *e)
{
	size_t end = 0;
	int c, rc;

	*count = 0;
	dynbuf_reset(out);
	if (s->st == STREAM_FAILED)
		return devid_error_set(e, s->failed_rc, "%s", s->failed.msg);
	if (s->st == STREAM_START) {
		if ((rc = peek(s, &c, e)) != 0)
			return rc;
		if (c != '[')
			return fail(s, e, DEVID_EINVAL,
			    "manifest: not a JSON array (byte %llu is not '[')",
			    (unsigned long long)manifest_stream_offset(s));
		s->pos++;
		s->st = STREAM_FIRST;
	}
	while (s->st != STREAM_END && *count < n) {
		if ((rc = peek(s, &c, e)) != 0)
			return rc;
		if (s->st == STREAM_NEXT) {
			if (c == ']') {
				if ((rc = array_end(s, e)) != 0)
					return rc;
				break;
			}
			if (c != ',')
				return fail(s, e, DEVID_EINVAL,
				    "manifest: ',' or ']' was expected at byte %llu",
				    (unsigned long long)manifest_stream_offset(s));
			s->pos++;
			if ((rc = peek(s, &c, e)) != 0)
				return rc;
		} else if (c == ']') {
			return fail(s, e, DEVID_EINVAL,
			    "manifest: the array is empty; a manifest has at least one entry");
		}
		if (c == -1)
			return fail(s, e, DEVID_EINVAL, "manifest: the array does not end");
		if ((rc = element_end(s, &end, e)) != 0)
			return rc;
		if (dynbuf_add(out, *count == 0 ? "[" : ",", 1) != 0 ||
		    dynbuf_add(out, s->buf + s->pos, end - s->pos) != 0)
			return fail(s, e, DEVID_ELIMIT,
			    "manifest: a page of %zu entries from entry %llu is over %zu bytes", n,
			    (unsigned long long)(s->elements - *count), out->max);
		s->pos = end;
		s->st = STREAM_NEXT;
		s->elements++;
		(*count)++;
	}
	if (*count > 0 && dynbuf_add(out, "]", 1) != 0)
		return fail(s, e, DEVID_ELIMIT,
		    "manifest: a page of %zu entries from entry %llu is over %zu bytes", n,
		    (unsigned long long)(s->elements - *count), out->max);
	return 0;
}
