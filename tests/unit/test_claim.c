/* SPDX-License-Identifier: Apache-2.0 */
/* claim codes: generation, strict parsing, hashing. */
#include <string.h>

#include "lib/claim.h"
#include "test.h"
#include "lib/banned.h"

static void
rejects(const char *text, const char *want)
{
	struct claim_code c;
	struct devid_error e;

	devid_error_clear(&e);
	CHECK(claim_code_parse((const uint8_t *)text, strlen(text), &c, &e) != 0,
	    "\"%s\" must be rejected", text);
	CHECK(strstr(e.msg, want) != NULL, "\"%s\": message \"%s\" should mention \"%s\"", text,
	    e.msg, want);
}

int
main(void)
{
	struct claim_code c, p, c2;
	struct devid_error e;
	char h[65];

	devid_error_clear(&e);
	CHECK(claim_code_generate("ACME", "B-2026.11", &c, &e) == 0, "generate: %s", e.msg);
	CHECK(strncmp(c.text, "DEVID1:ACME:B-2026.11:", 22) == 0, "text %s", c.text);
	CHECK(strlen(c.code) == 26, "26 base32 characters, got %zu", strlen(c.code));
	CHECK(strspn(c.code, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") == 26, "base32 alphabet");
	CHECK(claim_code_parse((const uint8_t *)c.text, strlen(c.text), &p, &e) == 0,
	    "a generated code parses: %s", e.msg);
	CHECK(strcmp(p.vendor, "ACME") == 0 && strcmp(p.batch, "B-2026.11") == 0 &&
		strcmp(p.code, c.code) == 0 && strcmp(p.text, c.text) == 0,
	    "fields round-trip");
	CHECK(
	    claim_code_generate("ACME", "B-2026.11", &c2, &e) == 0 && strcmp(c.code, c2.code) != 0,
	    "two codes differ");
	/* every character of the text is in the QR alphanumeric set */
	CHECK(strspn(c.text, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:") == strlen(c.text),
	    "QR alphanumeric");

	CHECK(claim_code_generate("acme", "B1", &c2, &e) != 0, "lowercase vendor refused");
	CHECK(claim_code_generate("ACME", "", &c2, &e) != 0, "empty batch refused");

	rejects("DEVID2:ACME:B1:AAAAAAAAAAAAAAAAAAAAAAAAAA", "DEVID1");
	rejects("DEVID1:acme:B1:AAAAAAAAAAAAAAAAAAAAAAAAAA", "vendor");
	rejects("DEVID1:ACME::AAAAAAAAAAAAAAAAAAAAAAAAAA", "batch");
	rejects("DEVID1:ACME:B1:AAAAAAAAAAAAAAAAAAAAAAAAA", "26");
	rejects("DEVID1:ACME:B1:AAAAAAAAAAAAAAAAAAAAAAAAAAA", "26");
	rejects("DEVID1:ACME:B1:AAAAAAAAAAAAAAAAAAAAAAAAA1", "base32");
	rejects("DEVID1:ACME:B1:AAAAAAAAAAAAAAAAAAAAAAAAAB", "canonical");
	rejects("DEVID1:ACME:B1:AAAAAAAAAAAAAAAAAAAAAAAAAA:X", "four");
	rejects("DEVID1:ACME:B1", "expected");
	rejects("", "expected");
	rejects(" DEVID1:ACME:B1:AAAAAAAAAAAAAAAAAAAAAAAAAA", "DEVID1");
	rejects("DEVID1:ACME:B1:AAAAAAAAAAAAAAAAAAAAAAAAAA\n", "26");
	{
		/* exact length: bytes after n are not read */
		const char *s = "DEVID1:ACME:B1:AAAAAAAAAAAAAAAAAAAAAAAAAAGARBAGE";

		CHECK(claim_code_parse((const uint8_t *)s, 41, &p, &e) == 0,
		    "parses exactly n bytes: %s", e.msg);
	}
	/* SHA-256("abc") from FIPS 180-2 */
	claim_code_hash("abc", 3, h);
	CHECK(strcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0,
	    "hash %s", h);
	return test_done();
}
