/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>

#include <openssl/rand.h>
#include <openssl/sha.h>

#include "base64.h"
#include "claim.h"
#include "banned.h"

static const char b32_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

bool
claim_name_valid(const char *s, size_t n)
{
	if (n < 1 || n > MAX_NAME_LEN)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-'))
			return false;
	}
	return true;
}

static void
b32_encode16(const uint8_t in[CLAIM_CODE_RANDOM_BYTES], char out[CLAIM_CODE_B32_LEN + 1])
{
	unsigned int acc = 0, bits = 0;
	size_t o = 0;

	for (size_t i = 0; i < CLAIM_CODE_RANDOM_BYTES; i++) {
		acc = (acc << 8 | in[i]) & 0xfff;
		bits += 8;
		while (bits >= 5) {
			out[o++] = b32_alpha[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[o++] = b32_alpha[(acc << (5 - bits)) & 31];
	out[o] = '\0';
}

int
claim_code_generate(
    const char *vendor, const char *batch, struct claim_code *c, struct devid_error *e)
{
	uint8_t rnd[CLAIM_CODE_RANDOM_BYTES];

	memset(c, 0, sizeof(*c));
	if (!claim_name_valid(vendor, strlen(vendor)))
		return devid_error_set(e, DEVID_EINVAL,
		    "vendor \"%s\" must match [A-Z0-9.-]{1,64} to appear in a claim code", vendor);
	if (!claim_name_valid(batch, strlen(batch)))
		return devid_error_set(e, DEVID_EINVAL,
		    "batch \"%s\" must match [A-Z0-9.-]{1,64} to appear in a claim code", batch);
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return devid_error_ssl(e, DEVID_ECRYPTO, "claim code: no randomness");
	b32_encode16(rnd, c->code);
	OPENSSL_cleanse(rnd, sizeof(rnd));
	snprintf(c->vendor, sizeof(c->vendor), "%s", vendor);
	snprintf(c->batch, sizeof(c->batch), "%s", batch);
	snprintf(
	    c->text, sizeof(c->text), "%s:%s:%s:%s", CLAIM_CODE_PREFIX, vendor, batch, c->code);
	return 0;
}

int
claim_code_parse(const uint8_t *p, size_t n, struct claim_code *c, struct devid_error *e)
{
	const char *s = (const char *)p, *end = s + n, *f[4];
	size_t flen[4], k = 0;
	const char *start = s;

	memset(c, 0, sizeof(*c));
	if (n == 0)
		return devid_error_set(
		    e, DEVID_EINVAL, "claim code: empty, expected DEVID1:<VENDOR>:<BATCH>:<CODE>");
	if (n > MAX_CLAIM_TEXT_LEN)
		return devid_error_set(
		    e, DEVID_EINVAL, "claim code: %zu characters, limit %d", n, MAX_CLAIM_TEXT_LEN);
	for (const char *q = s; q <= end; q++) {
		if (q == end || *q == ':') {
			if (k == 4)
				return devid_error_set(e, DEVID_EINVAL,
				    "claim code: more than four ':'-separated fields");
			f[k] = start;
			flen[k++] = (size_t)(q - start);
			start = q + 1;
		}
	}
	if (k != 4)
		return devid_error_set(
		    e, DEVID_EINVAL, "claim code: expected DEVID1:<VENDOR>:<BATCH>:<CODE>");
	if (flen[0] != strlen(CLAIM_CODE_PREFIX) || memcmp(f[0], CLAIM_CODE_PREFIX, flen[0]) != 0)
		return devid_error_set(e, DEVID_EINVAL, "claim code: does not start with DEVID1:");
	if (!claim_name_valid(f[1], flen[1]))
		return devid_error_set(
		    e, DEVID_EINVAL, "claim code: vendor must match [A-Z0-9.-]{1,64}");
	if (!claim_name_valid(f[2], flen[2]))
		return devid_error_set(
		    e, DEVID_EINVAL, "claim code: batch must match [A-Z0-9.-]{1,64}");
	if (flen[3] != CLAIM_CODE_B32_LEN)
		return devid_error_set(e, DEVID_EINVAL,
		    "claim code: code has %zu characters, must be %d", flen[3], CLAIM_CODE_B32_LEN);
	for (size_t i = 0; i < flen[3]; i++) {
		const char *hit = memchr(b32_alpha, f[3][i], 32);

		if (f[3][i] == '\0' || hit == NULL)
			return devid_error_set(e, DEVID_EINVAL,
			    "claim code: character %zu of the code is not RFC 4648 base32", i + 1);
		/* 26 symbols carry 130 bits for 128: the last symbol's 2 low bits are zero */
		if (i == flen[3] - 1 && ((hit - b32_alpha) & 3) != 0)
			return devid_error_set(
			    e, DEVID_EINVAL, "claim code: last character is not canonical base32");
	}
	memcpy(c->vendor, f[1], flen[1]);
	memcpy(c->batch, f[2], flen[2]);
	memcpy(c->code, f[3], flen[3]);
	memcpy(c->text, s, n);
	return 0;
}

void
claim_code_hash(const char *text, size_t n, char out[65])
{
	uint8_t md[SHA256_DIGEST_LENGTH];

	SHA256((const uint8_t *)text, n, md);
	hex_encode(md, sizeof(md), out);
}
