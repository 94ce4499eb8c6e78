/* SPDX-License-Identifier: Apache-2.0 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "output.h"
#include "lib/json.h"
#include "lib/xmalloc.h"
#include "lib/banned.h"

int
output_parse(const char *s, enum output_format *out)
{
	if (strcmp(s, "json") == 0)
		*out = OUTPUT_JSON;
	else if (strcmp(s, "table") == 0)
		*out = OUTPUT_TABLE;
	else
		return -1;
	return 0;
}

enum output_format
output_resolve(enum output_format f)
{
	if (f != OUTPUT_AUTO)
		return f;
	return isatty(STDOUT_FILENO) ? OUTPUT_TABLE : OUTPUT_JSON;
}

/* A cell as text (malloc'd), control characters shown as spaces so a row stays one line. */
static char *
cell_text(const json_t *v)
{
	char buf[64], *s;

	if (v == NULL || json_is_null(v))
		s = xstrdup("-");
	else if (json_is_string(v))
		s = xstrdup(json_string_value(v));
	else if (json_is_integer(v)) {
		snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
		s = xstrdup(buf);
	} else if (json_is_boolean(v))
		s = xstrdup(json_is_true(v) ? "true" : "false");
	else if ((s = json_dump_compact(v)) == NULL)
		s = xstrdup("?");
	for (char *p = s; *p != '\0'; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return s;
}

/* The value at a dotted path ("devices.active"); NULL when absent. */
static const json_t *
lookup(const json_t *row, const char *path)
{
	char key[128];
	const char *dot;
	size_t n;

	while ((dot = strchr(path, '.')) != NULL) {
		n = (size_t)(dot - path);
		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		row = json_object_get(row, key);
		path = dot + 1;
	}
	return json_object_get(row, path);
}

void
output_table(FILE *f, const json_t *rows, const struct column *cols, size_t ncols)
{
	size_t nrows = json_array_size(rows), *width = xcalloc(ncols, sizeof(*width));
	char **cells = xcalloc((nrows + 1) * ncols, sizeof(*cells));

	for (size_t c = 0; c < ncols; c++) {
		cells[c] = xstrdup(cols[c].title);
		for (size_t r = 0; r < nrows; r++)
			cells[(r + 1) * ncols + c] =
			    cell_text(lookup(json_array_get(rows, r), cols[c].key));
		for (size_t r = 0; r <= nrows; r++)
			if (strlen(cells[r * ncols + c]) > width[c])
				width[c] = strlen(cells[r * ncols + c]);
	}
	for (size_t r = 0; r <= nrows; r++)
		for (size_t c = 0; c < ncols; c++)
			if (c + 1 < ncols)
				fprintf(f, "%-*s  ", (int)width[c], cells[r * ncols + c]);
			else
				fprintf(f, "%s\n", cells[r * ncols + c]);
	for (size_t i = 0; i < (nrows + 1) * ncols; i++)
		free(cells[i]);
	free(cells);
	free(width);
}

/* A table of an array of objects, one column per key in the order the rows first show them. */
static void
output_auto_table(FILE *f, const json_t *rows)
{
	struct column *cols = NULL;
	size_t ncols = 0, i;
	const char *key;
	json_t *row, *v;

	json_array_foreach(rows, i, row)
	{
		json_object_foreach((json_t *)row, key, v)
		{
			size_t c;

			for (c = 0; c < ncols && strcmp(cols[c].key, key) != 0; c++)
				;
			if (c < ncols)
				continue;
			cols = xreallocarray(cols, ncols + 1, sizeof(*cols));
			cols[ncols++] = (struct column){key, key};
		}
	}
	output_table(f, rows, cols, ncols);
	free(cols);
}

struct kv {
	char *key, *value;
};

static bool
is_object_array(const json_t *v)
{
	return json_is_array(v) && json_array_size(v) > 0 && json_is_object(json_array_get(v, 0));
}

static void
collect(const json_t *obj, const char *prefix, struct kv **kv, size_t *n)
{
	const char *key;
	json_t *v;
	char name[256];

	json_object_foreach((json_t *)obj, key, v)
	{
		snprintf(name, sizeof(name), "%s%s%s", prefix, prefix[0] ? "." : "", key);
		if (json_is_object(v) && json_object_size(v) > 0) {
			collect(v, name, kv, n);
			continue;
		}
		if (is_object_array(v))
			continue;
		*kv = xreallocarray(*kv, *n + 1, sizeof(**kv));
		(*kv)[*n].key = xstrdup(name);
		(*kv)[*n].value =
		    json_is_array(v) && json_array_size(v) == 0 ? xstrdup("(none)") : cell_text(v);
		(*n)++;
	}
}

static void
tables_of(FILE *f, const json_t *obj, const char *prefix)
{
	const char *key;
	json_t *v;
	char name[256];

	json_object_foreach((json_t *)obj, key, v)
	{
		snprintf(name, sizeof(name), "%s%s%s", prefix, prefix[0] ? "." : "", key);
		if (json_is_object(v))
			tables_of(f, v, name);
		else if (is_object_array(v)) {
			fprintf(f, "\n%s:\n", name);
			output_auto_table(f, v);
		}
	}
}

void
output_object(FILE *f, const json_t *obj)
{
	struct kv *kv = NULL;
	size_t n = 0, width = 0;

	collect(obj, "", &kv, &n);
	for (size_t i = 0; i < n; i++)
		if (strlen(kv[i].key) > width)
			width = strlen(kv[i].key);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%-*s  %s\n", (int)width, kv[i].key, kv[i].value);
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
	tables_of(f, obj, "");
}

void
output_json(FILE *f, const json_t *j)
{
	json_dumpf(j, f, JSON_INDENT(2));
	fputc('\n', f);
}

void
output_show(enum output_format f, const json_t *j, const struct output_view *view)
{
	if (output_resolve(f) == OUTPUT_JSON)
		output_json(stdout, j);
	else if (view == NULL)
		output_object(stdout, j);
	else
		output_table(stdout, json_object_get(j, view->key), view->cols, view->ncols);
}

static const struct column tenant_cols[] = {
    {"NAME", "name"},
    {"KIND", "kind"},
    {"CREATED", "createdAt"},
};

static const struct column token_cols[] = {
    {"ID", "id"},
    {"NAME", "name"},
    {"ROLE", "role"},
    {"STATE", "state"},
    {"CREATED", "createdAt"},
    {"EXPIRES", "expiresAt"},
    {"LAST USED", "lastUsedAt"},
    {"REVOKED", "revokedAt"},
};

static const struct column trust_cols[] = {
    {"ID", "id"},
    {"VENDOR", "vendor"},
    {"OWNER", "owner"},
    {"ADDED", "addedAt"},
    {"REMOVED", "removedAt"},
    {"SHA-256", "sha256"},
    {"SIGNER", "signer"},
};

#define VIEW(k, c)                                                                                 \
	{                                                                                          \
		(k), (c), sizeof(c) / sizeof((c)[0])                                               \
	}
const struct output_view output_tenants_view = VIEW("tenants", tenant_cols);
const struct output_view output_tokens_view = VIEW("tokens", token_cols);
const struct output_view output_trust_view = VIEW("trust", trust_cols);
