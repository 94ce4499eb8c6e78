/* SPDX-License-Identifier: Apache-2.0 */
#include <stdint.h>

#include <openssl/rand.h>

#include "http/request_id.h"
#include "lib/banned.h"

bool
request_id_valid(const char *p, size_t len)
{
	if (len == 0 || len > HTTP_MAX_REQUEST_ID)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)p[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
			c == '.' || c == '_' || c == ':' || c == '-'))
			return false;
	}
	return true;
}

void
request_id_new(char out[REQUEST_ID_GENERATED_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t r[REQUEST_ID_GENERATED_LEN / 2] = {0};

	/* an id is for correlation, not a secret: a failed RAND_bytes leaves zeros, no harm */
	RAND_bytes(r, sizeof(r));
	for (size_t i = 0; i < sizeof(r); i++) {
		out[2 * i] = hex[r[i] >> 4];
		out[2 * i + 1] = hex[r[i] & 0xf];
	}
	out[REQUEST_ID_GENERATED_LEN] = '\0';
}
