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

enum column_kind {
	COL_TEXT, /* a string, a number or a boolean as JSON writes it; null: "-" */
	COL_TIME, /* epoch seconds as RFC 3339 UTC; null or absent: "-" */
	COL_JSON, /* any value as compact JSON */
};

struct column {
	const char *title;
	const char *key; /* a key of the row, or keys joined by '.' into nested objects */
	enum column_kind kind;
};

/* Epoch seconds as RFC 3339 UTC (2026-12-03T19:45:00Z) into buf; "-" when not an integer. */
const char *output_time(const json_t *v, char buf[32]);

/* The rows of an array as a table with a header line, columns padded to their widest cell. */
void output_table(FILE *f, const json_t *rows, const struct column *cols, size_t ncols);

/*
 * One object as aligned "key  value" lines: nested objects by dotted keys, times (keys "at",
 * "notBefore", "notAfter" and those ending in "At") in RFC 3339, and every array of objects
 * as a table of its own under its key.
 */
void output_object(FILE *f, const json_t *obj);

/* The JSON of an answer, indented, with a final newline. */
void output_json(FILE *f, const json_t *j);

#endif
