/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_log - the log encoder: logfmt and JSON escaping of hostile values, UTF-8 repair, the
 * value and line limits. JSON lines are read back with jansson, an independent parser.
 */
#include <jansson.h>
#include <math.h>
#include <string.h>

#include "lib/log.h"
#include "test.h"
#include "lib/banned.h"

#define TS "2024-01-02T03:04:05.678Z"

static char line[LOG_LINE_MAX + 1];

static const char *
enc(enum log_format f, const char *rid, const struct log_field *fields)
{
	size_t n = log_encode(line, f, TS, LOG_LEVEL_WARN, "an event", rid, fields);

	CHECK(n == strlen(line), "length %zu, strlen %zu", n, strlen(line));
	CHECK(n > 0 && line[n - 1] == '\n', "no newline at the end: %s", line);
	CHECK(strchr(line, '\n') == line + n - 1, "a newline inside the line: %s", line);
	return line;
}

/* The one JSON line encoded from fields, parsed (the caller decrefs it). */
static json_t *
json_line(const struct log_field *fields)
{
	json_error_t err;
	json_t *j = json_loads(enc(LOG_FORMAT_JSON, NULL, fields), JSON_REJECT_DUPLICATES, &err);

	CHECK(j != NULL && json_is_object(j), "not a JSON object (%s): %s", err.text, line);
	return j;
}

static void
check_logfmt(const char *value, const char *want)
{
	char expect[512];

	snprintf(expect, sizeof(expect), "ts=" TS " level=warn msg=\"an event\" v=%s\n", want);
	enc(LOG_FORMAT_LOGFMT, NULL, (const struct log_field[]){LOG_STR("v", value), LOG_END});
	CHECK(strcmp(line, expect) == 0, "logfmt of a value:\n got  %s want %s", line, expect);
}

static void
check_json(const char *value, const char *want)
{
	json_t *j = json_line((const struct log_field[]){LOG_STR("v", value), LOG_END});
	const char *got = json_string_value(json_object_get(j, "v"));

	CHECK(got != NULL && strcmp(got, want) == 0, "JSON round trip of a value: got \"%s\"",
	    got != NULL ? got : "(none)");
	json_decref(j);
}

static void
test_escaping(void)
{
	static const struct {
		const char *in, *logfmt, *json;
	} cases[] = {
	    {"plain", "plain", "plain"},
	    {"", "\"\"", ""},
	    {"two words", "\"two words\"", "two words"},
	    {"a=b", "\"a=b\"", "a=b"},
	    {"say \"hi\"", "\"say \\\"hi\\\"\"", "say \"hi\""},
	    {"C:\\dir", "\"C:\\\\dir\"", "C:\\dir"},
	    {"line1\nline2", "\"line1\\nline2\"", "line1\nline2"},
	    {"tab\there\r", "\"tab\\there\\r\"", "tab\there\r"},
	    {"bell\x07 esc\x1b del\x7f", "\"bell\\u0007 esc\\u001b del\\u007f\"",
		"bell\x07 esc\x1b del\x7f"},
	    {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91",
		"\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91\"",
		"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91"},
	    {"caf\xc3\xa9", "caf\xc3\xa9", "caf\xc3\xa9"},
	    /* a stray continuation byte, an overlong '/', a surrogate, a cut sequence */
	    {"a\x80z", "\"a\xef\xbf\xbdz\"", "a\xef\xbf\xbdz"},
	    {"\xc0\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\"", "\xef\xbf\xbd\xef\xbf\xbd"},
	    {"\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"",
		"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
	    {"x\xe2\x82", "\"x\xef\xbf\xbd\xef\xbf\xbd\"", "x\xef\xbf\xbd\xef\xbf\xbd"},
	    {"/.well-known/est/OEM1/simpleenroll", "/.well-known/est/OEM1/simpleenroll",
		"/.well-known/est/OEM1/simpleenroll"},
	    {"k=\"v\" msg=\"forged\"\nts=x level=error",
		"\"k=\\\"v\\\" msg=\\\"forged\\\"\\nts=x level=error\"",
		"k=\"v\" msg=\"forged\"\nts=x level=error"},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		check_logfmt(cases[i].in, cases[i].logfmt);
		check_json(cases[i].in, cases[i].json);
	}
}

static void
test_every_byte(void)
{
	char v[256];
	json_t *j;

	/* every byte 1..255 in one value: the JSON line parses, ASCII survives as is */
	for (int i = 1; i < 256; i++)
		v[i - 1] = (char)i;
	v[255] = '\0';
	j = json_line((const struct log_field[]){LOG_STR("v", v), LOG_END});
	CHECK(json_string_value(json_object_get(j, "v")) != NULL &&
		strncmp(json_string_value(json_object_get(j, "v")), v, 127) == 0,
	    "bytes 1 to 127 did not survive JSON");
	json_decref(j);
	enc(LOG_FORMAT_LOGFMT, NULL, (const struct log_field[]){LOG_STR("v", v), LOG_END});
	for (const char *p = line; *p != '\n'; p++)
		CHECK((unsigned char)*p >= 0x20 && *p != 0x7f, "a control byte 0x%02x in logfmt",
		    (unsigned char)*p);
}

static void
test_fields(void)
{
	json_t *j;

	enc(LOG_FORMAT_LOGFMT, "req-1",
	    (const struct log_field[]){LOG_STR("s", "x"), LOG_INT("n", -42), LOG_DBL("ms", 1.5),
		LOG_STR("gone", NULL), LOG_INT("big", INT64_MAX), LOG_END});
	CHECK(strcmp(line,
		  "ts=" TS " level=warn msg=\"an event\" request_id=req-1 s=x n=-42 "
		  "ms=1.500 big=9223372036854775807\n") == 0,
	    "logfmt fields: %s", line);
	enc(LOG_FORMAT_JSON, "req-1",
	    (const struct log_field[]){LOG_STR("s", "x"), LOG_INT("n", -42), LOG_DBL("ms", 1.5),
		LOG_STR("gone", NULL), LOG_DBL("nan", NAN), LOG_END});
	CHECK(strcmp(line,
		  "{\"ts\":\"" TS "\",\"level\":\"warn\",\"msg\":\"an event\","
		  "\"request_id\":\"req-1\",\"s\":\"x\",\"n\":-42,\"ms\":1.500,"
		  "\"nan\":null}\n") == 0,
	    "JSON fields: %s", line);
	j = json_line((const struct log_field[]){LOG_END});
	CHECK(json_object_size(j) == 3 && json_object_get(j, "request_id") == NULL,
	    "no fields and no request id: %s", line);
	json_decref(j);
}

static void
test_limits(void)
{
	static char big[3 * LOG_VALUE_MAX];
	static const char *const keys[] = {"q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8",
	    "q9", "q10", "q11", "q12", "q13", "q14", "q15", "q16", "q17", "q18", "q19", "q20",
	    "q21", "q22", "q23", "q24", "q25", "q26", "q27", "q28", "q29", "q30"};
	struct log_field many[32];
	json_t *j;
	size_t i;

	/* a value over LOG_VALUE_MAX is cut and marked; a cut UTF-8 sequence is not kept */
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big + LOG_VALUE_MAX - 1, "\xc3\xa9", 2);
	j = json_line((const struct log_field[]){LOG_STR("v", big), LOG_END});
	CHECK(j != NULL &&
		strlen(json_string_value(json_object_get(j, "v"))) == LOG_VALUE_MAX - 1 + 3 + 3,
	    "a long value is not cut at %d bytes", LOG_VALUE_MAX);
	CHECK(j != NULL &&
		strcmp(json_string_value(json_object_get(j, "v")) + LOG_VALUE_MAX - 1,
		    "\xef\xbf\xbd...") == 0,
	    "the cut is not marked");
	json_decref(j);

	/* more than a line holds: the last fields go and the line says so */
	memset(big, '"', sizeof(big) - 1);
	for (i = 0; i < 31; i++)
		many[i] = LOG_STR(keys[i], big);
	many[31] = LOG_END;
	for (int f = 0; f < 2; f++) {
		size_t n =
		    log_encode(line, (enum log_format)f, TS, LOG_LEVEL_INFO, "an event", "r", many);

		CHECK(n <= LOG_LINE_MAX && line[n - 1] == '\n', "an overlong line: %zu bytes", n);
		CHECK(strstr(line, f == 0 ? " truncated=true\n" : ",\"truncated\":true}\n") != NULL,
		    "a truncated line is not marked: ...%s", line + n - 40);
	}
	j = json_loads(line, JSON_REJECT_DUPLICATES, NULL);
	CHECK(j != NULL && json_is_true(json_object_get(j, "truncated")) &&
		json_object_get(j, "q0") != NULL && json_object_get(j, "q30") == NULL,
	    "a truncated JSON line does not parse or keeps the wrong fields");
	json_decref(j);
	many[1] = LOG_END;
	j = json_line(many);
	CHECK(j != NULL && json_object_get(j, "truncated") == NULL,
	    "one field that fits is marked truncated");
	json_decref(j);
}

static void
test_parse(void)
{
	enum log_format f = LOG_FORMAT_JSON;
	enum log_level l = LOG_LEVEL_ERROR;

	CHECK(log_format_parse("logfmt", &f) == 0 && f == LOG_FORMAT_LOGFMT, "logfmt");
	CHECK(log_format_parse("json", &f) == 0 && f == LOG_FORMAT_JSON, "json");
	CHECK(log_format_parse("JSON", &f) != 0 && log_format_parse("", &f) != 0,
	    "an unknown format accepted");
	CHECK(log_level_parse("debug", &l) == 0 && l == LOG_LEVEL_DEBUG, "debug");
	CHECK(log_level_parse("verbose", &l) != 0, "an unknown level accepted");
}

int
main(void)
{
	test_escaping();
	test_every_byte();
	test_fields();
	test_limits();
	test_parse();
	return test_done();
}
