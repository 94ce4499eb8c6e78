/* SPDX-License-Identifier: Apache-2.0 */
/*
 * base64.h - RFC 4648 base64 (standard alphabet, padded) and base64url (unpadded); hex;
 * RFC 3986 percent-encoding.
 *
 * Decoders are strict: they read exactly n bytes (no NUL needed), reject characters outside
 * the alphabet, wrong padding and non-zero trailing bits, so that every decoded value has one
 * encoding. B64_ALLOW_WS lets the standard decoder skip CR, LF, space and tab (PEM and EST
 * bodies). Results are malloc'ed, NUL-terminated, and freed by the caller with free().
 */
#ifndef DEVID_BASE64_H
#define DEVID_BASE64_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dynbuf.h"

#define B64_ALLOW_WS 0x1

/* Returns NULL only when out of memory. */
char *b64_encode(const uint8_t *p, size_t n);
char *b64url_encode(const uint8_t *p, size_t n);

/* 0, DEVID_EINVAL for bad input, DEVID_ENOMEM. */
int b64_decode(const char *s, size_t n, int flags, uint8_t **out, size_t *outlen);
int b64url_decode(const char *s, size_t n, uint8_t **out, size_t *outlen);

/* Lowercase hex of n bytes into out, which must hold 2n + 1 bytes. */
void hex_encode(const uint8_t *p, size_t n, char *out);
/* The value of a hex digit (either case), or -1 if c is none. */
int hex_digit(int c);

/*
 * RFC 3986 2.1 percent-encoding of p[0..n), appended to b: every byte but the unreserved
 * characters (2.3) as %XX in upper-case hex (what AWS SigV4 and Azure SAS tokens sign);
 * keep_slash leaves '/' alone (a path). 0, or DEVID_ENOMEM.
 */
int pct_encode(struct dynbuf *b, const char *p, size_t n, bool keep_slash);

#endif
