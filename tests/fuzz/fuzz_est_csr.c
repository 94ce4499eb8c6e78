/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_est_csr.c - libFuzzer target for the CSR intake of EST: csr_from_est_body over
 * arbitrary bytes (base64 with RFC 8951 whitespace, then a strict DER PKCS#10 request).
 * Aborts when the parser breaks its contract: a failure returns no request and gives a
 * reason; a success returns a request whose key and signature pass the checks again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/x509.h>

#include "lib/csr.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_est_csr: contract broken: %s\n", what);
		abort();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct devid_error e;
	X509_REQ *req = NULL;
	unsigned char *der = NULL;
	X509_REQ *again = NULL;
	X509 *holder;
	int rc, len;

	devid_error_clear(&e);
	rc = csr_from_est_body(data, size, NULL, &req, &e);
	if (rc != 0) {
		expect(req == NULL && e.msg[0] != '\0' && e.code == rc, "a refusal with a reason");
		return 0;
	}
	expect(req != NULL, "a success returns a request");
	/* what was accepted is DER: it decodes again, to the same verdict */
	len = i2d_X509_REQ(req, &der);
	expect(len > 0, "an accepted request encodes");
	devid_error_clear(&e);
	expect(csr_from_der(der, (size_t)len, NULL, &again, &e) == 0 && again != NULL,
	    "an accepted request is accepted again from its DER");
	/* and again with a holder of its key, which leaves the request's copy undecoded */
	X509_REQ_free(again);
	again = NULL;
	holder = X509_new();
	expect(holder != NULL && X509_set_pubkey(holder, X509_REQ_get0_pubkey(req)) == 1,
	    "a holder of the key");
	devid_error_clear(&e);
	expect(csr_from_der(der, (size_t)len, holder, &again, &e) == 0 && again != NULL &&
		X509_REQ_get0_pubkey(again) == NULL,
	    "an accepted request is accepted with its holder, its key undecoded");
	X509_free(holder);
	OPENSSL_free(der);
	X509_REQ_free(again);
	X509_REQ_free(req);
	return 0;
}
