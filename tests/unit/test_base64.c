/* SPDX-License-Identifier: Apache-2.0 */
/* base64 and base64url: RFC 4648 section 10 vectors and strict rejection of the rest. */
#include <stdlib.h>
#include <string.h>

#include "lib/base64.h"
#include "lib/error.h"
#include "test.h"
#include "lib/banned.h"

static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
static const char *const std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
static const char *const url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};

static void
check_decode_fails(const char *s, int url_mode, int flags)
{
	uint8_t *out = NULL;
	size_t n;
	int rc = url_mode ? b64url_decode(s, strlen(s), &out, &n)
			  : b64_decode(s, strlen(s), flags, &out, &n);

	CHECK(rc != 0, "\"%s\" (%s) must be rejected", s, url_mode ? "base64url" : "base64");
	CHECK(out == NULL, "no output for rejected \"%s\"", s);
	free(out);
}

int
main(void)
{
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		char *a = b64_encode((const uint8_t *)plain[i], strlen(plain[i]));
		char *b = b64url_encode((const uint8_t *)plain[i], strlen(plain[i]));
		uint8_t *d = NULL;
		size_t n = 0;

		CHECK(strcmp(a, std[i]) == 0, "base64(\"%s\") = \"%s\", want \"%s\"", plain[i], a,
		    std[i]);
		CHECK(strcmp(b, url[i]) == 0, "base64url(\"%s\") = \"%s\", want \"%s\"", plain[i],
		    b, url[i]);
		CHECK(b64_decode(std[i], strlen(std[i]), 0, &d, &n) == 0 && n == strlen(plain[i]) &&
			memcmp(d, plain[i], n) == 0,
		    "decode \"%s\"", std[i]);
		free(d);
		d = NULL;
		CHECK(b64url_decode(url[i], strlen(url[i]), &d, &n) == 0 && n == strlen(plain[i]) &&
			memcmp(d, plain[i], n) == 0,
		    "decode url \"%s\"", url[i]);
		free(d);
		free(a);
		free(b);
	}
	/* the alphabets differ in two symbols */
	{
		const uint8_t b[] = {0xfb, 0xff};
		char *s = b64_encode(b, 2), *u = b64url_encode(b, 2);

		CHECK(strcmp(s, "+/8=") == 0, "standard alphabet: %s", s);
		CHECK(strcmp(u, "-_8") == 0, "url alphabet: %s", u);
		free(s);
		free(u);
	}
	check_decode_fails("Zg", 0, 0); /* padding required */
	check_decode_fails("Zg=", 0, 0); /* short padding */
	check_decode_fails("Zg===", 0, 0); /* long padding */
	check_decode_fails("Zh==", 0, 0); /* non-zero trailing bits */
	check_decode_fails("Zm9v=", 0, 0); /* padding after a full quantum */
	check_decode_fails("Zg==Zg==", 0, 0); /* data after padding */
	check_decode_fails("Zm9v\n", 0, 0); /* whitespace without B64_ALLOW_WS */
	check_decode_fails("-_8=", 0, 0); /* url alphabet in standard */
	check_decode_fails("Zg==", 1, 0); /* padding in base64url */
	check_decode_fails("+/8", 1, 0); /* standard alphabet in base64url */
	check_decode_fails("Z", 1, 0); /* impossible length */
	check_decode_fails("Zh", 1, 0); /* non-zero trailing bits */
	check_decode_fails("Zm\0v", 1, 0); /* NUL inside (length 2 here, "Zm" is bad bits) */
	{
		uint8_t *d = NULL;
		size_t n;
		const char *s = "Zm9v\r\nYmFy\n";

		CHECK(b64_decode(s, strlen(s), B64_ALLOW_WS, &d, &n) == 0 && n == 6 &&
			memcmp(d, "foobar", 6) == 0,
		    "line breaks allowed with B64_ALLOW_WS");
		free(d);
	}
	{
		const uint8_t b[] = {0x00, 0xab, 0xff};
		char hex[7];

		hex_encode(b, 3, hex);
		CHECK(strcmp(hex, "00abff") == 0, "hex: %s", hex);
	}
	/* RFC 3986 percent-encoding: unreserved bytes stay, the rest %XX upper-case */
	{
		struct dynbuf b;
		const char in[] = "aZ09-_.~ /+=%\xff";

		dynbuf_init(&b, 256);
		CHECK(pct_encode(&b, in, sizeof(in) - 1, false) == 0 &&
			strcmp(dynbuf_str(&b), "aZ09-_.~%20%2F%2B%3D%25%FF") == 0,
		    "pct_encode: %s", dynbuf_str(&b));
		dynbuf_reset(&b);
		CHECK(
		    pct_encode(&b, "/a b/", 5, true) == 0 && strcmp(dynbuf_str(&b), "/a%20b/") == 0,
		    "pct_encode keeping '/': %s", dynbuf_str(&b));
		dynbuf_release(&b);
		dynbuf_init(&b, 4);
		CHECK(pct_encode(&b, "a b", 3, false) == DEVID_ENOMEM,
		    "pct_encode past the buffer's cap says so");
		dynbuf_release(&b);
	}
	return test_done();
}
