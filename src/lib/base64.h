/*
 * base64.h - RFC 4648 base64 (standard alphabet, padded) and base64url (unpadded).
 *
 * Decoders are strict: they read exactly n bytes (no NUL needed), reject characters outside
 * the alphabet, wrong padding and non-zero trailing bits, so that every decoded value has one
 * encoding. B64_ALLOW_WS lets the standard decoder skip CR, LF, space and tab (PEM and EST
 * bodies). Results are malloc'ed, NUL-terminated, and freed by the caller with free().
 */
#ifndef DEVID_BASE64_H
#define DEVID_BASE64_H

#include <stddef.h>
#include <stdint.h>

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

#endif
