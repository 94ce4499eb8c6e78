/* SPDX-License-Identifier: Apache-2.0 */
/* dynbuf: growth, the required maximum, NUL termination, detach. */
#include <stdlib.h>
#include <string.h>

#include "lib/dynbuf.h"
#include "lib/error.h"
#include "test.h"
#include "lib/banned.h"

int
main(void)
{
	struct dynbuf b;
	uint8_t *p;
	size_t n;

	dynbuf_init(&b, 10);
	CHECK(strcmp(dynbuf_str(&b), "") == 0, "empty buffer reads as \"\"");
	CHECK(dynbuf_addstr(&b, "hello") == 0 && b.len == 5, "add within the limit");
	CHECK(dynbuf_addf(&b, "%d", 12345) == 0 && b.len == 10, "addf up to the limit");
	CHECK(strcmp(dynbuf_str(&b), "hello12345") == 0, "content: %s", dynbuf_str(&b));
	CHECK(dynbuf_add(&b, "x", 1) == DEVID_ELIMIT, "one byte past the maximum is refused");
	CHECK(b.len == 10 && strcmp(dynbuf_str(&b), "hello12345") == 0,
	    "a refused append leaves the buffer unchanged");
	dynbuf_reset(&b);
	CHECK(b.len == 0 && strcmp(dynbuf_str(&b), "") == 0, "reset empties");
	CHECK(dynbuf_addf(&b, "%s", "0123456789A") == DEVID_ELIMIT, "long addf refused");
	dynbuf_release(&b);

	dynbuf_init(&b, 1 << 20);
	for (int i = 0; i < 10000; i++)
		if (dynbuf_addf(&b, "%04d,", i % 10000) != 0)
			break;
	CHECK(b.len == 50000, "10000 appends grow to 50000 bytes, got %zu", b.len);
	CHECK(memcmp(b.p + 49995, "9999,", 5) == 0, "last record intact");
	p = dynbuf_detach(&b, &n);
	CHECK(n == 50000 && p[n] == '\0', "detach hands over a NUL-terminated buffer");
	CHECK(b.p == NULL && b.len == 0, "detach leaves the buffer empty");
	free(p);
	dynbuf_release(&b);
	return test_done();
}
