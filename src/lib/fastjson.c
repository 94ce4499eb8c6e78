/* SPDX-License-Identifier: Apache-2.0 */
#include <string.h>

#include "fastjson.h"
#include "banned.h"

struct fastjson {
	const uint8_t *p;
	size_t n, i;
	int depth;
};

static json_t *fastjson_value(struct fastjson *f);

static void
fastjson_ws(struct fastjson *f)
{
	while (f->i < f->n &&
	    (f->p[f->i] == ' ' || f->p[f->i] == '\t' || f->p[f->i] == '\n' || f->p[f->i] == '\r'))
		f->i++;
}

static bool
fastjson_string(struct fastjson *f, const char **s, size_t *len)
{
	size_t start;

	if (f->i >= f->n || f->p[f->i] != '"')
		return false;
	start = ++f->i;
	for (; f->i < f->n; f->i++) {
		uint8_t c = f->p[f->i];

		if (c == '"') {
			*s = (const char *)f->p + start;
			*len = f->i++ - start;
			return true;
		}
		if (c < 0x20 || c > 0x7e || c == '\\')
			return false;
	}
	return false;
}

static json_t *
fastjson_number(struct fastjson *f)
{
	json_int_t v = 0;
	bool neg = false;
	int digits = 0;

	if (f->p[f->i] == '-') {
		neg = true;
		f->i++;
	}
	if (f->i >= f->n || f->p[f->i] < '0' || f->p[f->i] > '9' ||
	    (f->p[f->i] == '0' && f->i + 1 < f->n && f->p[f->i + 1] >= '0' &&
		f->p[f->i + 1] <= '9'))
		return NULL;
	for (; f->i < f->n && f->p[f->i] >= '0' && f->p[f->i] <= '9'; f->i++)
		if (++digits > FASTJSON_MAX_DIGITS)
			return NULL;
		else
			v = v * 10 + (f->p[f->i] - '0');
	if (f->i < f->n && (f->p[f->i] == '.' || f->p[f->i] == 'e' || f->p[f->i] == 'E'))
		return NULL;
	return json_integer(neg ? -v : v);
}

static json_t *
fastjson_container(struct fastjson *f, bool object)
{
	json_t *c = object ? json_object() : json_array(), *v = NULL;
	const char *key = NULL;
	size_t keylen = 0;

	if (c == NULL || ++f->depth > FASTJSON_MAX_DEPTH)
		goto fail;
	f->i++;
	fastjson_ws(f);
	if (f->i < f->n && f->p[f->i] == (object ? '}' : ']')) {
		f->i++;
		f->depth--;
		return c;
	}
	for (;;) {
		fastjson_ws(f);
		if (object) {
			if (!fastjson_string(f, &key, &keylen))
				goto fail;
			fastjson_ws(f);
			if (f->i >= f->n || f->p[f->i++] != ':')
				goto fail;
		}
		if ((v = fastjson_value(f)) == NULL)
			goto fail;
		if (object && json_object_getn(c, key, keylen) != NULL) {
			/* a duplicate key: jansson reads the input and words the error */
			json_decref(v);
			goto fail;
		}
		/* the _new functions take v, also when they fail (and then release it) */
		if (object ? json_object_setn_new_nocheck(c, key, keylen, v) != 0
			   : json_array_append_new(c, v) != 0)
			goto fail;
		fastjson_ws(f);
		if (f->i >= f->n)
			goto fail;
		if (f->p[f->i] == ',') {
			f->i++;
			continue;
		}
		if (f->p[f->i++] != (object ? '}' : ']'))
			goto fail;
		f->depth--;
		return c;
	}
fail:
	json_decref(c);
	return NULL;
}

static json_t *
fastjson_value(struct fastjson *f)
{
	static const struct {
		const char *text;
		json_t *(*make)(void);
	} lit[] = {{"true", json_true}, {"false", json_false}, {"null", json_null}};
	const char *s;
	size_t len;

	fastjson_ws(f);
	if (f->i >= f->n)
		return NULL;
	switch (f->p[f->i]) {
	case '{':
		return fastjson_container(f, true);
	case '[':
		return fastjson_container(f, false);
	case '"':
		return fastjson_string(f, &s, &len) ? json_stringn_nocheck(s, len) : NULL;
	default:
		break;
	}
	for (size_t k = 0; k < sizeof(lit) / sizeof(lit[0]); k++) {
		len = strlen(lit[k].text);
		if (f->n - f->i >= len && memcmp(f->p + f->i, lit[k].text, len) == 0) {
			f->i += len;
			return lit[k].make();
		}
	}
	return f->p[f->i] == '-' || (f->p[f->i] >= '0' && f->p[f->i] <= '9') ? fastjson_number(f)
									     : NULL;
}

json_t *
fastjson_parse(const uint8_t *p, size_t n, bool any)
{
	struct fastjson f = {.p = p, .n = n};
	json_t *v;

	fastjson_ws(&f);
	if (f.i >= n || (!any && p[f.i] != '{' && p[f.i] != '['))
		return NULL;
	if ((v = fastjson_value(&f)) == NULL)
		return NULL;
	fastjson_ws(&f);
	if (f.i != n) {
		json_decref(v);
		return NULL;
	}
	return v;
}

bool
fastjson_is_compact(const uint8_t *p, size_t n)
{
	static const char *const lit[] = {"true", "false", "null"};
	size_t i = 0, k;

	while (i < n) {
		uint8_t c = p[i];

		if (c == '"') {
			for (i++; i < n && p[i] != '"'; i++)
				if (p[i] == '\\' || p[i] < 0x20 || p[i] > 0x7e)
					return false;
			if (i++ >= n)
				return false;
		} else if (c == '{' || c == '}' || c == '[' || c == ']' || c == ',' || c == ':') {
			i++;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			if (c == '-')
				i++;
			if (i >= n || p[i] < '0' || p[i] > '9' || (p[i] == '0' && c == '-'))
				return false;
			if (p[i] == '0' && i + 1 < n && p[i + 1] >= '0' && p[i + 1] <= '9')
				return false;
			while (i < n && p[i] >= '0' && p[i] <= '9')
				i++;
			if (i < n && (p[i] == '.' || p[i] == 'e' || p[i] == 'E'))
				return false;
		} else {
			for (k = 0; k < 3; k++)
				if (n - i >= strlen(lit[k]) &&
				    memcmp(p + i, lit[k], strlen(lit[k])) == 0)
					break;
			if (k == 3)
				return false;
			i += strlen(lit[k]);
		}
	}
	return true;
}
