/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.h - one structured event per line on stderr (journald picks it up), as logfmt or JSON.
 *
 * An event is a level, a fixed message and typed fields; the message is a constant that
 * names the event ("http request", "delivery failed"), every variable part is a field:
 *
 *   log_info("batch ingested", LOG_STR("vendor", v), LOG_STR("batch", b), LOG_INT("count", n));
 *   log_info("serve stopped");
 *
 * The macros build the fields as an array on the caller's stack: nothing is allocated, and a
 * line is encoded into a fixed buffer under one lock. Each line has, in this order, "ts"
 * (UTC, RFC 3339 with milliseconds), "level", "msg", "request_id" while a request is being
 * handled on this thread (see log_set_request_id), then the fields in the order given.
 *
 * Keys are constants of the code, [a-z0-9_], never one of the four above. Values may hold
 * any bytes: the encoder escapes them for the format, turns bytes that are not UTF-8 into
 * U+FFFD, and cuts a value at LOG_VALUE_MAX bytes (marked "..."). A LOG_STR whose value is
 * NULL is left out. A line that would pass LOG_LINE_MAX loses its last fields and gets
 * "truncated=true". docs/logging.md lists every event and its fields.
 *
 * Never log a secret, a token or a private key.
 */
#ifndef DEVID_LOG_H
#define DEVID_LOG_H

#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR };
enum log_format { LOG_FORMAT_LOGFMT, LOG_FORMAT_JSON };
enum log_type { LOG_T_END, LOG_T_STR, LOG_T_INT, LOG_T_DBL };

/* a value longer than this is cut; a whole line, newline included, fits in LOG_LINE_MAX */
#define LOG_VALUE_MAX 1024
#define LOG_LINE_MAX 8192

struct log_field {
	const char *key;
	enum log_type type;
	union {
		const char *s;
		int64_t i;
		double d;
	} v;
};

#define LOG_STR(k, x) ((struct log_field){.key = (k), .type = LOG_T_STR, .v.s = (x)})
#define LOG_INT(k, x) ((struct log_field){.key = (k), .type = LOG_T_INT, .v.i = (int64_t)(x)})
/* a number with three decimals (durations in ms); not finite: null in JSON, NaN in logfmt */
#define LOG_DBL(k, x) ((struct log_field){.key = (k), .type = LOG_T_DBL, .v.d = (double)(x)})
#define LOG_END ((struct log_field){.key = NULL, .type = LOG_T_END})

/* Not thread-safe: set both at start, before any thread logs. */
void log_set_level(enum log_level level);
void log_set_format(enum log_format format);
/* Parses "debug", "info", "warn" or "error"; returns -1 if unknown. */
int log_level_parse(const char *s, enum log_level *out);
/* Parses "logfmt" or "json"; returns -1 if unknown. */
int log_format_parse(const char *s, enum log_format *out);

/*
 * The request id put on every line this thread logs until the next call; NULL for none.
 * Borrowed: id must stay valid until it is replaced (the HTTP server sets it around each
 * request). It is written as given, so it must be a short token without spaces or quotes.
 */
void log_set_request_id(const char *id);

/* Writes one event to stderr if level passes the threshold. fields ends with LOG_END. */
void log_emit(enum log_level level, const char *msg, const struct log_field *fields);

/*
 * Encodes one event as a line ending in '\n' into buf, which holds LOG_LINE_MAX bytes (and a
 * NUL); returns its length. ts is the timestamp as written, request_id may be NULL. For
 * log_emit and the tests.
 */
size_t log_encode(char *buf, enum log_format format, const char *ts, enum log_level level,
    const char *msg, const char *request_id, const struct log_field *fields);

#define LOG_EMIT_(level, msg, ...) log_emit((level), (msg), (const struct log_field[]){__VA_ARGS__})
#define log_debug(...) LOG_EMIT_(LOG_LEVEL_DEBUG, __VA_ARGS__, LOG_END)
#define log_info(...) LOG_EMIT_(LOG_LEVEL_INFO, __VA_ARGS__, LOG_END)
#define log_warn(...) LOG_EMIT_(LOG_LEVEL_WARN, __VA_ARGS__, LOG_END)
#define log_error(...) LOG_EMIT_(LOG_LEVEL_ERROR, __VA_ARGS__, LOG_END)

#endif
