/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_key_uri.c - libFuzzer target for the key URI parsers of the agent, which read what a
 * device's configuration or command line says in --key: agent_uri_scheme(),
 * agent_file_uri_path() and agent_tpm2_uri_parse().
 *
 * Besides what the sanitizers catch, it aborts when a parser breaks its contract: results are
 * 0 or DEVID_EINVAL; a failure gives a reason and no result; a tpm2: URI gives exactly one of
 * a persistent handle and a non-empty path inside the input; a tpm2: reason is short,
 * whatever the input: it quotes at most an attribute name's first characters, never a value.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/internal.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* longer than any key URI a device is configured with */
#define FUZZ_MAX_URI 4096
/* the longest reason agent_tpm2_uri_parse gives (a 24-character excerpt included) */
#define FUZZ_MAX_TPM2_REASON 160

static void
expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_key_uri: contract broken: %s\n", what);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char uri[FUZZ_MAX_URI + 1], scheme[AGENT_MAX_SCHEME_LEN + 1];
	struct agent_tpm2_uri t;
	struct devid_error e;
	const char *path;
	int rc;

	if (size > FUZZ_MAX_URI)
		return 0;
	memcpy(uri, data, size);
	uri[size] = '\0';

	devid_error_clear(&e);
	rc = agent_uri_scheme(uri, scheme, &e);
	expect(rc == 0 || rc == DEVID_EINVAL, "scheme: an undocumented result");
	expect(rc == 0 ? scheme[0] != '\0' : (scheme[0] == '\0' && e.msg[0] != '\0'),
	    "scheme: result and reason disagree");

	devid_error_clear(&e);
	rc = agent_file_uri_path(uri, &path, &e);
	expect(rc == 0 || rc == DEVID_EINVAL, "file: an undocumented result");
	expect(rc == 0 ? (path != NULL && path >= uri && path < uri + size && path[0] != '\0')
		       : (path == NULL && e.msg[0] != '\0'),
	    "file: result and reason disagree");

	devid_error_clear(&e);
	rc = agent_tpm2_uri_parse(uri, &t, &e);
	expect(rc == 0 || rc == DEVID_EINVAL, "tpm2: an undocumented result");
	if (rc == 0) {
		expect(
		    (t.path == NULL) != (t.handle == 0), "tpm2: not exactly one of handle, path");
		expect(t.handle == 0 ||
			(t.handle >= AGENT_TPM2_PERSISTENT_FIRST &&
			    t.handle <= AGENT_TPM2_PERSISTENT_LAST),
		    "tpm2: a handle outside the persistent range");
		expect(t.path == NULL || (t.path > uri && t.path < uri + size && t.path[0] != '\0'),
		    "tpm2: a path outside the input");
	} else {
		expect(t.path == NULL && t.handle == 0 && e.msg[0] != '\0',
		    "tpm2: a result after a failure, or no reason");
		/* a short excerpt of the input at most: a value is never echoed */
		expect(strlen(e.msg) <= FUZZ_MAX_TPM2_REASON, "tpm2: a reason quoting the input");
	}
	return 0;
}
