/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_est_certs.c - libFuzzer target for agent_est_certs_parse(), which reads what an EST
 * server answers to cacerts, simpleenroll and simplereenroll (base64 of a certs-only PKCS#7),
 * and for agent_json_get_string(), which reads its error answers.
 *
 * Besides what the sanitizers catch, it aborts when the parser breaks its contract: a result
 * is one of the documented codes; a failure gives a reason and no stack; a success gives 1 to
 * AGENT_MAX_EST_CERTS certificates, and the same bytes parse the same way again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "agent/internal.h"
#include "devid/agent.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_est_certs: contract broken: %s\n", what);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	STACK_OF(X509) *certs = NULL, *again = NULL;
	struct devid_error e;
	char msg[64];
	int rc, n;

	devid_error_clear(&e);
	rc = agent_est_certs_parse(data, size, &certs, &e);
	expect(rc == 0 || rc == DEVID_EINVAL || rc == DEVID_ELIMIT || rc == DEVID_ENOMEM,
	    "an undocumented result");
	if (rc != 0) {
		expect(certs == NULL, "a stack after a failure");
		expect(e.msg[0] != '\0', "a failure without a reason");
	} else {
		n = sk_X509_num(certs);
		expect(n >= 1 && n <= AGENT_MAX_EST_CERTS, "a certificate count out of bounds");
		expect(
		    agent_est_certs_parse(data, size, &again, NULL) == 0 && sk_X509_num(again) == n,
		    "not deterministic");
		for (int i = 0; i < n; i++)
			expect(X509_cmp(sk_X509_value(certs, i), sk_X509_value(again, i)) == 0,
			    "not the same certificates again");
		sk_X509_pop_free(again, X509_free);
		sk_X509_pop_free(certs, X509_free);
	}

	/* the same bytes as an error answer */
	if (agent_json_get_string(data, size, "message", msg, sizeof(msg))) {
		expect(strlen(msg) < sizeof(msg), "an unterminated message");
		for (const char *p = msg; *p != '\0'; p++)
			expect(*p >= 0x20 && *p <= 0x7e, "an unprintable message");
	} else {
		expect(msg[0] == '\0', "a message although none was found");
	}
	return 0;
}
