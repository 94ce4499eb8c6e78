/* SPDX-License-Identifier: Apache-2.0 */
/* JSON helpers: duplicate keys, types, lengths and ranges are checked and named. */
#include <string.h>

#include "lib/json.h"
#include "test.h"
#include "lib/banned.h"

static json_t *
parse(const char *s, struct devid_error *e)
{
	return json_parse((const uint8_t *)s, strlen(s), "doc", e);
}

int
main(void)
{
	struct devid_error e;
	const char *s;
	size_t n;
	json_int_t v;
	json_t *j, *o;

	devid_error_clear(&e);
	CHECK(parse("{\"a\":1,\"a\":2}", &e) == NULL, "duplicate keys rejected");
	CHECK(strstr(e.msg, "duplicate") != NULL, "message names duplicates: %s", e.msg);
	CHECK(parse("{\"a\":\"x\\u0000y\"}", &e) == NULL, "NUL in a string rejected");
	CHECK(parse("{\"a\":1} x", &e) == NULL, "trailing garbage rejected");
	j = json_parse((const uint8_t *)"{\"a\":1}xx", 7, "doc", &e);
	CHECK(j != NULL, "exactly n bytes are parsed");
	json_decref(j);

	j = parse("{\"s\":\"hello\",\"i\":42,\"o\":{},\"a\":[1],\"e\":[]}", &e);
	CHECK(j != NULL, "parse: %s", e.msg);
	CHECK(json_get_str(j, "s", 1, 5, true, &s, &n, "doc", &e) == 0 && n == 5 &&
		strcmp(s, "hello") == 0,
	    "string read");
	CHECK(json_get_str(j, "s", 1, 4, true, &s, &n, "doc", &e) == DEVID_EINVAL &&
		strstr(e.msg, "\"s\" has 5 characters") != NULL,
	    "too long named: %s", e.msg);
	CHECK(json_get_str(j, "i", 1, 4, true, &s, &n, "doc", &e) == DEVID_EINVAL &&
		strstr(e.msg, "not a string") != NULL,
	    "wrong type named: %s", e.msg);
	CHECK(json_get_str(j, "zz", 1, 4, false, &s, &n, "doc", &e) == DEVID_ENOTFOUND,
	    "optional absent");
	CHECK(json_get_str(j, "zz", 1, 4, true, &s, &n, "doc", &e) == DEVID_EINVAL &&
		strstr(e.msg, "missing") != NULL,
	    "required absent: %s", e.msg);
	CHECK(json_get_int(j, "i", 0, 100, &v, "doc", &e) == 0 && v == 42, "int read");
	CHECK(json_get_int(j, "i", 0, 10, &v, "doc", &e) == DEVID_EINVAL, "int out of range");
	CHECK(json_get_obj(j, "o", true, &o, "doc", &e) == 0, "object read");
	CHECK(json_get_arr(j, "a", 1, &o, "doc", &e) == 0, "array read");
	CHECK(json_get_arr(j, "e", 4, &o, "doc", &e) == DEVID_EINVAL, "empty array refused");
	json_decref(j);

	/* times as the API shows them */
	j = json_time(1796339042);
	CHECK(json_is_string(j) && strcmp(json_string_value(j), "2026-12-03T23:04:02Z") == 0,
	    "json_time: %s", json_string_value(j));
	json_decref(j);
	j = json_time(0);
	CHECK(strcmp(json_string_value(j), "1970-01-01T00:00:00Z") == 0, "json_time(0) is a time");
	json_decref(j);
	j = json_time_or_null(0);
	CHECK(json_is_null(j), "json_time_or_null(0) is null");
	json_decref(j);
	{
		static const char *const keys[] = {"type", "mode", NULL};
		struct devid_error e2;

		j = json_pack("{s:s, s:s}", "type", "webhook", "mode", "auto");
		CHECK(json_only_keys(j, keys, "connector", &e2) == 0, "known members pass");
		json_object_set_new(j, "bogus", json_integer(1));
		CHECK(json_only_keys(j, keys, "connector", &e2) == DEVID_EINVAL &&
			strstr(e2.msg, "unknown member \"bogus\"") != NULL,
		    "an unknown member is named: %s", e2.msg);
	}
	json_decref(j);
	return test_done();
}
