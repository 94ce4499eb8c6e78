/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jsonscan.h - finding the ends of JSON tokens in bytes, without parsing them (RFC 8259
 * grammar only as far as strings and brackets go). For cutting a large document into the
 * pieces a real parser then reads (src/lib/submission.c), and for libdevid-agent, which has
 * no JSON library, to find one member of a server's error answer. Pure: never reads p[n].
 */
#ifndef DEVID_JSONSCAN_H
#define DEVID_JSONSCAN_H

#include <stddef.h>
#include <stdint.h>

/* The index of the first byte at or after i that is not JSON whitespace (n if none). */
size_t jsonscan_ws(const uint8_t *p, size_t n, size_t i);
/* One past the closing quote of the string that starts at p[i] == '"'; 0 if it does not end. */
size_t jsonscan_string_end(const uint8_t *p, size_t n, size_t i);
/*
 * One past the value that starts at p[i]: a string, an object or array (brackets nested at
 * most MAX_JSON_DEPTH deep), or a number or literal (up to the next delimiter); 0 if it does
 * not end, is empty or nests too deep.
 */
size_t jsonscan_value_end(const uint8_t *p, size_t n, size_t i);

#endif
