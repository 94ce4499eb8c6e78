/* SPDX-License-Identifier: Apache-2.0 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "banned.h"

json_t *
json_parse(const uint8_t *p, size_t n, const char *what, struct devid_error *e)
{
	json_error_t jerr;
	json_t *j;

	j = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL)
		devid_error_set(e, DEVID_EINVAL, "%s: not valid JSON at line %d column %d: %s",
		    what, jerr.line, jerr.column, jerr.text);
	return j;
}

int
json_get_str(const json_t *obj, const char *key, size_t minlen, size_t maxlen, bool required,
    const char **out, size_t *len, const char *what, struct devid_error *e)
{
	json_t *v = json_object_get(obj, key);
	size_t n;

	*out = NULL;
	if (len != NULL)
		*len = 0;
	if (v == NULL) {
		if (!required)
			return DEVID_ENOTFOUND;
		return devid_error_set(e, DEVID_EINVAL, "%s: \"%s\" is missing", what, key);
	}
	if (!json_is_string(v))
		return devid_error_set(e, DEVID_EINVAL, "%s: \"%s\" is not a string", what, key);
	n = json_string_length(v);
	if (n < minlen || n > maxlen)
		return devid_error_set(e, DEVID_EINVAL,
		    "%s: \"%s\" has %zu characters, allowed %zu to %zu", what, key, n, minlen,
		    maxlen);
	if (strlen(json_string_value(v)) != n)
		return devid_error_set(
		    e, DEVID_EINVAL, "%s: \"%s\" contains a NUL character", what, key);
	*out = json_string_value(v);
	if (len != NULL)
		*len = n;
	return 0;
}

int
json_get_strdup(const json_t *obj, const char *key, size_t maxlen, char **out, size_t *len,
    const char *what, struct devid_error *e)
{
	const char *s;
	size_t n;

	*out = NULL;
	if (json_get_str(obj, key, 1, maxlen, true, &s, &n, what, e) != 0)
		return DEVID_EINVAL;
	if ((*out = strdup(s)) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "%s: out of memory", what);
	if (len != NULL)
		*len = n;
	return 0;
}

int
json_get_int(const json_t *obj, const char *key, json_int_t min, json_int_t max, json_int_t *out,
    const char *what, struct devid_error *e)
{
	json_t *v = json_object_get(obj, key);

	if (v == NULL)
		return devid_error_set(e, DEVID_EINVAL, "%s: \"%s\" is missing", what, key);
	if (!json_is_integer(v))
		return devid_error_set(e, DEVID_EINVAL, "%s: \"%s\" is not an integer", what, key);
	*out = json_integer_value(v);
	if (*out < min || *out > max)
		return devid_error_set(e, DEVID_EINVAL, "%s: \"%s\" is %lld, allowed %lld to %lld",
		    what, key, (long long)*out, (long long)min, (long long)max);
	return 0;
}

int
json_get_obj(const json_t *obj, const char *key, bool required, json_t **out, const char *what,
    struct devid_error *e)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (v == NULL) {
		if (!required)
			return DEVID_ENOTFOUND;
		return devid_error_set(e, DEVID_EINVAL, "%s: \"%s\" is missing", what, key);
	}
	if (!json_is_object(v))
		return devid_error_set(e, DEVID_EINVAL, "%s: \"%s\" is not an object", what, key);
	*out = v;
	return 0;
}

int
json_get_arr(const json_t *obj, const char *key, size_t maxlen, json_t **out, const char *what,
    struct devid_error *e)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (v == NULL)
		return devid_error_set(e, DEVID_EINVAL, "%s: \"%s\" is missing", what, key);
	if (!json_is_array(v))
		return devid_error_set(e, DEVID_EINVAL, "%s: \"%s\" is not an array", what, key);
	if (json_array_size(v) == 0 || json_array_size(v) > maxlen)
		return devid_error_set(e, DEVID_EINVAL,
		    "%s: \"%s\" has %zu elements, allowed 1 to %zu", what, key, json_array_size(v),
		    maxlen);
	*out = v;
	return 0;
}

int
json_only_keys(const json_t *obj, const char *const *keys, const char *what, struct devid_error *e)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)obj, key, v)
	{
		const char *const *k = keys;

		while (*k != NULL && strcmp(*k, key) != 0)
			k++;
		if (*k == NULL)
			return devid_error_set(
			    e, DEVID_EINVAL, "%s: unknown member \"%.64s\"", what, key);
	}
	return 0;
}

char *
json_dump_compact(const json_t *j)
{
	return json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
}

json_t *
json_time(int64_t t)
{
	char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		return json_null();
	return json_string(buf);
}

json_t *
json_time_or_null(int64_t t)
{
	return t != 0 ? json_time(t) : json_null();
}
