/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sighting_report.c - libFuzzer target for sighting_report_parse(), which reads the seen
 * reports product clouds post to POST /api/v1/sightings (docs/clone-detection.md). Besides
 * what the sanitizers catch, it aborts when the parser breaks its contract: a success holds
 * 1 to SIGHTING_MAX_PER_REPORT sightings, each with first <= last, a count of at least one
 * and an origin the network function reads; a failure is DEVID_EINVAL (or out of memory)
 * with a message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/error.h"
#include "lib/sighting.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_sighting_report: contract broken: %s\n", what);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char net[SIGHTING_MAX_ORIGIN + 4];
	struct sighting_report r;
	struct devid_error e;
	int rc;

	devid_error_clear(&e);
	rc = sighting_report_parse(data, size, &r, &e);
	if (rc == 0) {
		expect(r.n >= 1 && r.n <= SIGHTING_MAX_PER_REPORT, "a count out of range");
		expect(r.id[0] != '\0' && r.tenant[0] != '\0', "no id or tenant");
		for (size_t i = 0; i < r.n; i++) {
			expect(r.s[i].first_ms <= r.s[i].last_ms, "first after last");
			expect(r.s[i].count >= 1, "a count under one");
			expect(strlen(r.s[i].udid) == 64 && strlen(r.s[i].certificate) == 64,
			    "a short udid or certificate");
			expect(sighting_network(r.s[i].origin, 24, 48, net, &e) == 0,
			    "an origin the rules cannot read");
		}
	} else {
		expect(rc == DEVID_EINVAL || rc == DEVID_ENOMEM, "an unexpected error code");
		expect(memchr(e.msg, '\0', sizeof(e.msg)) != NULL && e.msg[0] != '\0',
		    "a failure without a message");
	}
	sighting_report_release(&r);
	return 0;
}
