/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_http_response.c - libFuzzer target for agent_http_response_parse(), which reads what a
 * product cloud answers to devid-agent hello.
 *
 * The first byte chooses the case (bit 0: the stream has ended; bit 1: a body limit of 16
 * bytes instead of DEVID_HELLO_MAX_BODY); the rest is the response. Besides what the
 * sanitizers catch, it aborts when the parser breaks its contract: a result is one of the
 * documented codes; at the end of the stream it never asks for more; a failure gives a reason;
 * a success has a final status, a body within the limit and a printable reason phrase, and
 * the same bytes parse the same way again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/internal.h"
#include "devid/agent.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_http_response: contract broken: %s\n", what);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_http_response r, again;
	struct devid_error e;
	bool eof;
	size_t max;
	int rc;

	if (size < 1)
		return 0;
	eof = (data[0] & 1) != 0;
	max = (data[0] & 2) != 0 ? 16 : DEVID_HELLO_MAX_BODY;
	data++;
	size--;
	dynbuf_init(&r.body, max);
	devid_error_clear(&e);
	rc = agent_http_response_parse(data, size, eof, &r, &e);
	expect(rc == 0 || rc == AGENT_HTTP_NEED_MORE || rc == DEVID_EINVAL || rc == DEVID_ELIMIT ||
		rc == DEVID_ENOMEM,
	    "an undocumented result");
	expect(!(eof && rc == AGENT_HTTP_NEED_MORE), "asked for more after the end of the stream");
	if (rc < 0)
		expect(e.msg[0] != '\0', "a failure without a reason");
	if (rc == 0) {
		expect(r.status >= 200 && r.status <= 599,
		    "a complete response without a final status");
		expect(r.body.len <= max, "a body over the limit");
		expect(!r.truncated || r.body.len == max, "truncated below the limit");
		for (const char *p = r.reason; *p != '\0'; p++)
			expect(*p >= 0x20 && *p <= 0x7e, "an unprintable reason phrase");
		/* the same bytes give the same answer (no state between calls) */
		dynbuf_init(&again.body, max);
		expect(agent_http_response_parse(data, size, eof, &again, NULL) == 0 &&
			again.status == r.status && again.body.len == r.body.len &&
			(r.body.len == 0 || memcmp(again.body.p, r.body.p, r.body.len) == 0),
		    "not deterministic");
		dynbuf_release(&again.body);
	}
	dynbuf_release(&r.body);
	return 0;
}
