/* SPDX-License-Identifier: Apache-2.0 */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "banned.h"

/* room kept at the end of a line for the truncation mark and the end of the line */
#define LOG_TAIL_RESERVE 32

static enum log_level log_threshold = LOG_LEVEL_INFO;
static enum log_format log_fmt = LOG_FORMAT_LOGFMT;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local const char *tl_request_id;

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char *const format_names[] = {"logfmt", "json"};

void
log_set_level(enum log_level level)
{
	log_threshold = level;
}

void
log_set_format(enum log_format format)
{
	log_fmt = format;
}

int
log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

int
log_format_parse(const char *s, enum log_format *out)
{
	for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
		if (strcmp(s, format_names[i]) == 0) {
			*out = (enum log_format)i;
			return 0;
		}
	}
	return -1;
}

void
log_set_request_id(const char *id)
{
	tl_request_id = id;
}

/* --- the encoder ---------------------------------------------------------------------------- */

/* A line being written: bytes past cap are not written, and full says so. */
struct line {
	char *p;
	size_t n, cap;
	bool full;
	bool first; /* no field written yet: no separator before the next */
};

static void
put(struct line *l, const char *s, size_t len)
{
	if (l->full || len > l->cap - l->n) {
		l->full = true;
		return;
	}
	memcpy(l->p + l->n, s, len);
	l->n += len;
}

static void
puts0(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

/*
 * The length of the UTF-8 sequence at s (at most len bytes), or 0 if it is not one: no
 * overlong forms, no surrogates, nothing past U+10FFFF (RFC 3629).
 */
static size_t
utf8_len(const unsigned char *s, size_t len)
{
	size_t n;
	unsigned lo = 0x80, hi = 0xbf;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (n > len)
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++) {
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	}
	return n;
}

/* Whether a logfmt value must be quoted: empty, or holding a byte a bare value cannot. */
static bool
logfmt_needs_quotes(const unsigned char *s, size_t len)
{
	if (len == 0)
		return true;
	for (size_t i = 0; i < len; i++) {
		if (s[i] <= 0x20 || s[i] == 0x7f || s[i] == '=' || s[i] == '"' || s[i] == '\\')
			return true;
		if (s[i] >= 0x80) {
			size_t n = utf8_len(s + i, len - i);

			if (n == 0)
				return true; /* becomes U+FFFD: quoted, as go-logfmt does */
			i += n - 1;
		}
	}
	return false;
}

/* A string value: quoted and escaped as JSON does it (also inside logfmt's quotes). */
static void
put_str(struct line *l, enum log_format f, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t len = strnlen(str, LOG_VALUE_MAX + 1), i = 0;
	bool cut = len > LOG_VALUE_MAX, quote;
	char esc[8];

	if (cut)
		len = LOG_VALUE_MAX;
	quote = f == LOG_FORMAT_JSON || cut || logfmt_needs_quotes(s, len);
	if (quote)
		put(l, "\"", 1);
	while (i < len) {
		unsigned char c = s[i];
		size_t n;

		if (c == '"' || c == '\\') {
			esc[0] = '\\';
			esc[1] = (char)c;
			put(l, esc, 2);
			i++;
		} else if (c == '\n') {
			put(l, "\\n", 2);
			i++;
		} else if (c == '\r') {
			put(l, "\\r", 2);
			i++;
		} else if (c == '\t') {
			put(l, "\\t", 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", c);
			put(l, esc, 6);
			i++;
		} else if ((n = utf8_len(s + i, len - i)) == 0) {
			/* a stray byte, or a sequence cut by LOG_VALUE_MAX */
			put(l, "\xef\xbf\xbd", 3);
			i++;
		} else {
			put(l, str + i, n);
			i += n;
		}
	}
	if (cut)
		put(l, "...", 3);
	if (quote)
		put(l, "\"", 1);
}

static void
put_key(struct line *l, enum log_format f, const char *key)
{
	if (!l->first)
		put(l, f == LOG_FORMAT_JSON ? "," : " ", 1);
	l->first = false;
	if (f == LOG_FORMAT_JSON) {
		put(l, "\"", 1);
		puts0(l, key);
		put(l, "\":", 2);
	} else {
		puts0(l, key);
		put(l, "=", 1);
	}
}

static void
put_field(struct line *l, enum log_format f, const struct log_field *fd)
{
	char num[64];

	put_key(l, f, fd->key);
	switch (fd->type) {
	case LOG_T_STR:
		put_str(l, f, fd->v.s);
		break;
	case LOG_T_INT:
		snprintf(num, sizeof(num), "%lld", (long long)fd->v.i);
		puts0(l, num);
		break;
	case LOG_T_DBL:
		if (isfinite(fd->v.d))
			snprintf(num, sizeof(num), "%.3f", fd->v.d);
		else
			snprintf(num, sizeof(num), "%s", f == LOG_FORMAT_JSON ? "null" : "NaN");
		puts0(l, num);
		break;
	case LOG_T_END:
		break;
	}
}

/* Adds the fields up to LOG_END; false if one did not fit (it and the rest are left out). */
static bool
put_fields(struct line *l, enum log_format f, const struct log_field *fields)
{
	for (; fields->type != LOG_T_END; fields++) {
		size_t mark = l->n;
		bool first = l->first;

		if (fields->type == LOG_T_STR && fields->v.s == NULL)
			continue;
		put_field(l, f, fields);
		if (l->full) {
			l->n = mark;
			l->first = first;
			return false;
		}
	}
	return true;
}

size_t
log_encode(char *buf, enum log_format f, const char *ts, enum log_level level, const char *msg,
    const char *request_id, const struct log_field *fields)
{
	struct line l = {
	    .p = buf, .n = 0, .cap = LOG_LINE_MAX - LOG_TAIL_RESERVE, .full = false, .first = true};
	const struct log_field head[] = {LOG_STR("ts", ts), LOG_STR("level", level_names[level]),
	    LOG_STR("msg", msg), LOG_STR("request_id", request_id), LOG_END};
	bool whole;

	if (f == LOG_FORMAT_JSON)
		put(&l, "{", 1);
	whole = put_fields(&l, f, head) && put_fields(&l, f, fields);
	/* the reserve holds this tail whatever happened above */
	l.cap = LOG_LINE_MAX;
	l.full = false;
	if (!whole) {
		put_key(&l, f, "truncated");
		puts0(&l, "true"); /* a JSON boolean; in logfmt the bare word */
	}
	puts0(&l, f == LOG_FORMAT_JSON ? "}\n" : "\n");
	buf[l.n] = '\0';
	return l.n;
}

void
log_emit(enum log_level level, const char *msg, const struct log_field *fields)
{
	char line[LOG_LINE_MAX + 1], ts[48];
	struct timespec now;
	struct tm tm;
	size_t n, o;

	if (level < log_threshold)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	o = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + o, sizeof(ts) - o, ".%03ldZ", now.tv_nsec / 1000000);
	n = log_encode(line, log_fmt, ts, level, msg, tl_request_id, fields);
	pthread_mutex_lock(&log_lock);
	fwrite(line, 1, n, stderr);
	pthread_mutex_unlock(&log_lock);
}
