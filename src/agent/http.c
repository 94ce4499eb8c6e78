/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http.c - the agent's HTTP/1.x response parser (RFC 9112), a pure function of the bytes
 * received so far. The server is authenticated by then, but its bytes are still outside
 * input: every length is checked before use, and nothing is read past len.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"
#include "lib/banned.h"

/* a chunk-size line, extensions included (RFC 9112 7.1) */
#define MAX_CHUNK_LINE 1024

/* The offset of the first CRLF in p[from..len), or len if there is none. */
static size_t
find_crlf(const uint8_t *p, size_t from, size_t len)
{
	for (size_t i = from; i + 1 < len; i++)
		if (p[i] == '\r' && p[i + 1] == '\n')
			return i;
	return len;
}

static bool
is_tchar(uint8_t c)
{
	/* RFC 9110 5.6.2 */
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static bool
name_is(const uint8_t *p, size_t n, const char *name)
{
	return strlen(name) == n && strncasecmp((const char *)p, name, n) == 0;
}

/* Trims optional whitespace (SP / HTAB) around p[*a..*b). */
static void
trim_ows(const uint8_t *p, size_t *a, size_t *b)
{
	while (*a < *b && (p[*a] == ' ' || p[*a] == '\t'))
		(*a)++;
	while (*b > *a && (p[*b - 1] == ' ' || p[*b - 1] == '\t'))
		(*b)--;
}

struct head {
	int status;
	bool chunked;
	bool has_length;
	size_t length;
};

/* Parses "HTTP/1.x NNN reason" in p[0..n). */
static int
parse_status_line(const uint8_t *p, size_t n, struct agent_http_response *out, struct head *h,
    struct devid_error *e)
{
	size_t i;

	if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9' || p[8] != ' ')
		return devid_error_set(
		    e, DEVID_EINVAL, "response: not an HTTP/1.x status line (RFC 9112 4)");
	h->status = 0;
	for (i = 9; i < 12; i++) {
		if (p[i] < '0' || p[i] > '9')
			return devid_error_set(
			    e, DEVID_EINVAL, "response: status code is not 3 digits (RFC 9112 4)");
		h->status = h->status * 10 + (p[i] - '0');
	}
	if (h->status < 100 || h->status > 599)
		return devid_error_set(
		    e, DEVID_EINVAL, "response: status code %d (RFC 9110 15)", h->status);
	if (n > 12 && p[12] != ' ')
		return devid_error_set(
		    e, DEVID_EINVAL, "response: no space after the status code (RFC 9112 4)");
	if (n > 13)
		agent_printable(
		    p + 13, n - 13, AGENT_MAX_REASON_LEN, out->reason, sizeof(out->reason));
	else
		out->reason[0] = '\0';
	return 0;
}

/* Parses one "name: value" field line p[0..n) into h. */
static int
parse_field(const uint8_t *p, size_t n, struct head *h, struct devid_error *e)
{
	size_t colon, a, b;

	if (n > 0 && (p[0] == ' ' || p[0] == '\t'))
		return devid_error_set(
		    e, DEVID_EINVAL, "response: obsolete line folding (RFC 9112 5.2)");
	for (colon = 0; colon < n && is_tchar(p[colon]); colon++)
		;
	if (colon == 0 || colon == n || p[colon] != ':')
		return devid_error_set(e, DEVID_EINVAL, "response: malformed header field");
	for (size_t i = colon + 1; i < n; i++)
		if (p[i] == '\0' || p[i] == '\r' || p[i] == '\n')
			return devid_error_set(e, DEVID_EINVAL,
			    "response: NUL, CR or LF in a field value (RFC 9110 5.5)");
	a = colon + 1;
	b = n;
	trim_ows(p, &a, &b);
	if (name_is(p, colon, "transfer-encoding")) {
		/* we send no TE, so only chunked may come back (RFC 9112 6.1) */
		if (!(b - a == 7 && strncasecmp((const char *)p + a, "chunked", 7) == 0))
			return devid_error_set(e, DEVID_EINVAL,
			    "response: transfer coding other than chunked (RFC 9112 6.1)");
		h->chunked = true;
	} else if (name_is(p, colon, "content-length")) {
		size_t v = 0;

		if (a == b)
			return devid_error_set(e, DEVID_EINVAL, "response: empty Content-Length");
		for (size_t i = a; i < b; i++) {
			if (p[i] < '0' || p[i] > '9' || v > (SIZE_MAX - 9) / 10)
				return devid_error_set(e, DEVID_EINVAL,
				    "response: Content-Length is not a number (RFC 9110 8.6)");
			v = v * 10 + (size_t)(p[i] - '0');
		}
		if (h->has_length && h->length != v)
			return devid_error_set(e, DEVID_EINVAL,
			    "response: two different Content-Length values (RFC 9110 8.6)");
		h->has_length = true;
		h->length = v;
	}
	return 0;
}

/* Adds p[0..n) to the body, or as much as fits and marks it truncated. */
static int
body_add(struct agent_http_response *out, const uint8_t *p, size_t n)
{
	size_t room = out->body.max - out->body.len;

	if (n > room) {
		n = room;
		out->truncated = true;
	}
	return dynbuf_add(&out->body, p, n);
}

static int
parse_chunked(const uint8_t *p, size_t len, size_t q, bool eof, struct agent_http_response *out,
    struct devid_error *e)
{
	int rc;

	for (;;) {
		size_t eol = find_crlf(p, q, len), size = 0, i, avail, room;

		if (eol == len) {
			if (len - q > MAX_CHUNK_LINE)
				return devid_error_set(e, DEVID_EINVAL,
				    "response: chunk-size line longer than %d bytes",
				    MAX_CHUNK_LINE);
			goto short_read;
		}
		if (eol - q > MAX_CHUNK_LINE)
			return devid_error_set(e, DEVID_EINVAL,
			    "response: chunk-size line longer than %d bytes", MAX_CHUNK_LINE);
		for (i = q; i < eol; i++) {
			uint8_t c = p[i];
			int d;

			if (c >= '0' && c <= '9')
				d = c - '0';
			else if (c >= 'a' && c <= 'f')
				d = c - 'a' + 10;
			else if (c >= 'A' && c <= 'F')
				d = c - 'A' + 10;
			else
				break;
			if (size > (SIZE_MAX >> 4))
				return devid_error_set(
				    e, DEVID_EINVAL, "response: chunk size overflows");
			size = size << 4 | (size_t)d;
		}
		/* after the digits only chunk extensions may follow (RFC 9112 7.1.1) */
		if (i == q || (i < eol && p[i] != ';' && p[i] != ' ' && p[i] != '\t'))
			return devid_error_set(
			    e, DEVID_EINVAL, "response: malformed chunk size (RFC 9112 7.1)");
		q = eol + 2;
		if (size == 0)
			return 0; /* last-chunk: the body is whole; trailers do not matter to us */
		avail = len - q;
		room = out->body.max - out->body.len;
		if (size > room && avail >= room) {
			/* the part we keep is here; the rest is not needed */
			out->truncated = true;
			return dynbuf_add(&out->body, p + q, room);
		}
		if (avail < size + 2)
			goto short_read;
		if (p[q + size] != '\r' || p[q + size + 1] != '\n')
			return devid_error_set(e, DEVID_EINVAL,
			    "response: chunk data not followed by CRLF (RFC 9112 7.1)");
		if ((rc = body_add(out, p + q, size)) != 0)
			return rc;
		if (out->truncated)
			return 0;
		q += size + 2;
	}
short_read:
	if (eof)
		return devid_error_set(e, DEVID_EINVAL,
		    "response: the connection closed in the middle of a chunked body");
	return AGENT_HTTP_NEED_MORE;
}

int
agent_http_response_parse(
    const uint8_t *p, size_t len, bool eof, struct agent_http_response *out, struct devid_error *e)
{
	size_t pos = 0, hend, line, next;
	struct head h;
	int rc, interim = 0;

	dynbuf_reset(&out->body);
	out->status = 0;
	out->reason[0] = '\0';
	out->truncated = false;
	out->close_delimited = false;
	for (;;) {
		/* the head ends at the first empty line */
		size_t limit =
		    len - pos > AGENT_MAX_RESPONSE_HEAD ? pos + AGENT_MAX_RESPONSE_HEAD : len;

		for (hend = pos; hend + 3 < limit; hend++)
			if (memcmp(p + hend, "\r\n\r\n", 4) == 0)
				break;
		if (hend + 3 >= limit) {
			if (len - pos >= AGENT_MAX_RESPONSE_HEAD)
				return devid_error_set(e, DEVID_ELIMIT,
				    "response: head longer than %d bytes", AGENT_MAX_RESPONSE_HEAD);
			if (!eof)
				return AGENT_HTTP_NEED_MORE;
			if (len == 0)
				return devid_error_set(e, DEVID_EINVAL,
				    "the server closed the connection without a response");
			return devid_error_set(e, DEVID_EINVAL,
			    "response: the connection closed before the end of the head");
		}
		hend += 2; /* the CRLF that ends the last line */
		memset(&h, 0, sizeof(h));
		line = find_crlf(p, pos, hend);
		if ((rc = parse_status_line(p + pos, line - pos, out, &h, e)) != 0)
			return rc;
		for (next = line + 2; next < hend; next = line + 2) {
			line = find_crlf(p, next, hend);
			if ((rc = parse_field(p + next, line - next, &h, e)) != 0)
				return rc;
		}
		pos = hend + 2;
		if (h.status >= 200)
			break;
		if (h.status == 101)
			return devid_error_set(
			    e, DEVID_EINVAL, "response: 101 Switching Protocols was not asked for");
		if (++interim > AGENT_MAX_INTERIM_RESPONSES)
			return devid_error_set(e, DEVID_EINVAL,
			    "response: more than %d interim responses",
			    AGENT_MAX_INTERIM_RESPONSES);
	}
	out->status = h.status;
	/* make the body a string even when it is empty */
	if ((rc = dynbuf_add(&out->body, "", 0)) != 0)
		return rc;
	/* RFC 9112 6.3: 204 and 304 have no body; chunked wins over Content-Length */
	if (h.status == 204 || h.status == 304)
		return 0;
	if (h.chunked)
		return parse_chunked(p, len, pos, eof, out, e);
	if (h.has_length) {
		size_t avail = len - pos, want = h.length;

		if (want > out->body.max)
			want = out->body.max;
		if (avail < want) {
			if (eof)
				return devid_error_set(e, DEVID_EINVAL,
				    "response: the connection closed after %zu of %zu body bytes",
				    avail, h.length);
			return AGENT_HTTP_NEED_MORE;
		}
		out->truncated = h.length > want;
		return dynbuf_add(&out->body, p + pos, want);
	}
	out->close_delimited = true;
	if (len - pos > out->body.max || eof)
		return body_add(out, p + pos, len - pos);
	return AGENT_HTTP_NEED_MORE;
}
