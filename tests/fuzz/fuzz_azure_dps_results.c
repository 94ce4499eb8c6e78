/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_azure_dps_results.c - libFuzzer target for the azure-dps connector's reading of a bulk
 * enrollment answer (BulkEnrollmentOperationResult) for a call that carried three registration
 * ids. Aborts when the reader breaks its contract: every failure says why; on success every
 * code is 0 or a six-digit DPS error code, and an answer that says it succeeded in its entirety
 * with no errors leaves every code 0.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "connectors/azure_dps.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const ids[] = {"aa", "bb", "cc"};
	long codes[3];
	struct devid_error e;
	json_t *j;
	int rc;

	devid_error_clear(&e);
	rc = azure_dps_results_parse(data, size, ids, 3, codes, &e);
	if (rc != 0 && e.msg[0] == '\0') {
		fprintf(stderr, "fuzz_azure_dps_results: a failure without a reason\n");
		abort();
	}
	if (rc == 0) {
		for (int i = 0; i < 3; i++)
			if (codes[i] != 0 && (codes[i] < 100000 || codes[i] > 999999)) {
				fprintf(stderr, "fuzz_azure_dps_results: code %ld\n", codes[i]);
				abort();
			}
		j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
		if (json_is_true(json_object_get(j, "isSuccessful")) &&
		    json_array_size(json_object_get(j, "errors")) == 0 &&
		    (codes[0] != 0 || codes[1] != 0 || codes[2] != 0)) {
			fprintf(stderr, "fuzz_azure_dps_results: a success read as a failure\n");
			abort();
		}
		json_decref(j);
	}
	return 0;
}
