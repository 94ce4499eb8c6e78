/* SPDX-License-Identifier: Apache-2.0 */
/*
 * claim.h - claim codes: DEVID1:<VENDOR>:<BATCH>:<CODE>.
 *
 * VENDOR and BATCH match [A-Z0-9.-]{1,64}; CODE is 26 characters of RFC 4648 base32 without
 * padding of 16 random bytes (canonical: the 2 unused bits of the last symbol are zero). The
 * whole text is in the QR alphanumeric set. devid stores only the SHA-256 of the text.
 */
#ifndef DEVID_CLAIM_H
#define DEVID_CLAIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "limits.h"

#define CLAIM_CODE_PREFIX "DEVID1"

struct claim_code {
	char vendor[MAX_NAME_LEN + 1];
	char batch[MAX_NAME_LEN + 1];
	char code[CLAIM_CODE_B32_LEN + 1];
	char text[MAX_CLAIM_TEXT_LEN + 1]; /* the whole code, as hashed */
};

/* True if s[0..n) matches [A-Z0-9.-]{1,64}. */
bool claim_name_valid(const char *s, size_t n);

/* Fills c with a new code for vendor/batch from 16 bytes of RAND_bytes. */
int claim_code_generate(
    const char *vendor, const char *batch, struct claim_code *c, struct devid_error *e);

/* Parses exactly p[0..n) (no surrounding whitespace). The message names the bad part. */
int claim_code_parse(const uint8_t *p, size_t n, struct claim_code *c, struct devid_error *e);

/* Lowercase hex SHA-256 of the text. */
void claim_code_hash(const char *text, size_t n, char out[65]);

#endif
