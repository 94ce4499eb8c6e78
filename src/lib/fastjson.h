/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fastjson.h - a fast reader for the plain JSON vendors write (manifest entries and their
 * payloads), and a test of whether a text is already in jansson's compact form.
 *
 * fastjson_parse gives exactly the value jansson's json_loadb(p, n, JSON_REJECT_DUPLICATES
 * [| JSON_DECODE_ANY]) gives, for the inputs it takes: strings of printable ASCII without
 * escapes, integers of up to 18 digits, the literals, objects (without duplicate keys) and
 * arrays nested at most FASTJSON_MAX_DEPTH deep, JSON whitespace. For anything else it returns
 * NULL and the caller has jansson read the input (and word any error): jansson reads strings a
 * byte at a time through a UTF-8-checking stream, several times slower than an entry takes to
 * verify. Both functions are pure: they read p[0..n) only.
 */
#ifndef DEVID_FASTJSON_H
#define DEVID_FASTJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define FASTJSON_MAX_DEPTH 32
#define FASTJSON_MAX_DIGITS 18

/*
 * jansson's value of p[0..n) (a new reference), or NULL: then jansson must read it. Without
 * any, only an object or an array is taken (JSON_DECODE_ANY not given).
 */
json_t *fastjson_parse(const uint8_t *p, size_t n, bool any);

/*
 * Whether jansson's compact dump (json_dump_compact) of the JSON value in p[0..n) is p[0..n)
 * itself: no whitespace, strings of printable ASCII without escapes, integers in their
 * shortest form (no "-0", fraction or exponent), the literals, and nothing else. For a text
 * that parsed (objects keep their keys in the order read; duplicates were refused).
 */
bool fastjson_is_compact(const uint8_t *p, size_t n);

#endif
