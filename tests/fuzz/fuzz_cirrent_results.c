/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_cirrent_results.c - libFuzzer target for the cirrent connector's reading of a
 * receiver's answer (an array of {"ref","status","message"}, one per certificate pushed).
 * The delivery is fixed: two devices. Aborts when the reader breaks its contract: success
 * only for exactly two SUCCESS results naming the two devices in order; every failure says why.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "connectors/connector.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define UDID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define UDID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct delivery_device dev[2] = {
	    {.udid = UDID_A, .serial = "1", .batch = "B"},
	    {.udid = UDID_B, .serial = "2", .batch = "B"},
	};
	const struct delivery d = {.event_id = "e", .tenant = "T", .devices = dev, .n = 2};
	struct devid_error e;
	json_t *j;
	int rc;

	devid_error_clear(&e);
	rc = cirrent_results_parse(data, size, &d, &e);
	if (rc != 0 && e.msg[0] == '\0') {
		fprintf(stderr, "fuzz_cirrent_results: a failure without a reason\n");
		abort();
	}
	if (rc == 0) {
		j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
		if (json_array_size(j) != 2 ||
		    strcmp(json_string_value(json_object_get(json_array_get(j, 0), "ref")),
			UDID_A) != 0 ||
		    strcmp(json_string_value(json_object_get(json_array_get(j, 1), "status")),
			"SUCCESS") != 0) {
			fprintf(stderr, "fuzz_cirrent_results: accepted a wrong answer\n");
			abort();
		}
		json_decref(j);
	}
	return 0;
}
