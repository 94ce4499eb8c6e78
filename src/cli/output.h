/* SPDX-License-Identifier: Apache-2.0 */
/*
 * output.h - what the client commands print: the API's JSON as it came (--output json), or
 * aligned tables with times in RFC 3339 UTC (--output table). The JSON keeps the API's epoch
 * seconds; only tables convert them.
 */
#ifndef DEVID_CLI_OUTPUT_H
#define DEVID_CLI_OUTPUT_H

#include <stdio.h>

#include <jansson.h>

enum output_format {
	OUTPUT_AUTO, /* table when stdout is a terminal, else json */
	OUTPUT_JSON,
	OUTPUT_TABLE,
};

/* "json" or "table": 0, or -1 (nothing stored). */
int output_parse(const char *s, enum output_format *out);
/* OUTPUT_AUTO resolved against stdout. */
enum output_format output_resolve(enum output_format f);

struct column {
	const char *title;
	const char *key; /* a key of the row, or keys joined by '.' into nested objects */
};

/*
 * The rows of an array as a table with a header line, columns padded to their widest cell.
 * A cell shows a string as it is (the API's times are RFC 3339 strings), a number or a
 * boolean as JSON writes it, null or absent as "-", anything else as compact JSON.
 */
void output_table(FILE *f, const json_t *rows, const struct column *cols, size_t ncols);

/*
 * One object as aligned "key  value" lines: nested objects by dotted keys, and every array of
 * objects as a table of its own under its key.
 */
void output_object(FILE *f, const json_t *obj);

/* The JSON of an answer, indented, with a final newline. */
void output_json(FILE *f, const json_t *j);

/* How an answer shows as a table: the array under key, in these columns. */
struct output_view {
	const char *key;
	const struct column *cols;
	size_t ncols;
};

/* An answer in format f: JSON as it is, else a table by view (NULL: output_object). */
void output_show(enum output_format f, const json_t *j, const struct output_view *view);

/* The lists that both `devid` (over the API) and `devid admin` (on the database) show. */
extern const struct output_view output_tenants_view;
extern const struct output_view output_tokens_view;
extern const struct output_view output_trust_view;

#endif
