/* SPDX-License-Identifier: Apache-2.0 */
/*
 * json.h - helpers over jansson for outside input.
 *
 * Parsing rejects duplicate object keys and NUL bytes inside strings. The getters check each
 * field's type, length and range and name the field in the error. `what` names the document
 * ("batch descriptor", "manifest entry 12") and starts every message.
 */
#ifndef DEVID_JSON_H
#define DEVID_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "error.h"

/* Parses exactly p[0..n). Returns a new reference, or NULL with e set. */
json_t *json_parse(const uint8_t *p, size_t n, const char *what, struct devid_error *e);

/*
 * Reads the string member key of obj. Absent: DEVID_ENOTFOUND when !required (out = NULL),
 * DEVID_EINVAL otherwise. The string is borrowed from obj; *len excludes the NUL.
 */
int json_get_str(const json_t *obj, const char *key, size_t minlen, size_t maxlen, bool required,
    const char **out, size_t *len, const char *what, struct devid_error *e);
/* The same, required and not empty, copied into *out (free()); *len (may be NULL) its length. */
int json_get_strdup(const json_t *obj, const char *key, size_t maxlen, char **out, size_t *len,
    const char *what, struct devid_error *e);
/* Reads an integer member in [min, max]. */
int json_get_int(const json_t *obj, const char *key, json_int_t min, json_int_t max,
    json_int_t *out, const char *what, struct devid_error *e);
/* Reads an object or array member (borrowed). */
int json_get_obj(const json_t *obj, const char *key, bool required, json_t **out, const char *what,
    struct devid_error *e);
int json_get_arr(const json_t *obj, const char *key, size_t maxlen, json_t **out, const char *what,
    struct devid_error *e);
/*
 * 0 if every member of obj is one of keys (a NULL-terminated list); else DEVID_EINVAL naming
 * the first member that is not, so a misspelt option is refused instead of ignored.
 */
int json_only_keys(
    const json_t *obj, const char *const *keys, const char *what, struct devid_error *e);

/*
 * A time as the API shows it: RFC 3339 in UTC with whole seconds ("2026-12-03T23:04:02Z").
 * json_time_or_null maps 0 (never) to null. NULL only when out of memory.
 */
json_t *json_time(int64_t t);
json_t *json_time_or_null(int64_t t);

/* Compact serialization in member order; malloc'ed (free()), NULL when out of memory. */
char *json_dump_compact(const json_t *j);

#endif
