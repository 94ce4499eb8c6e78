/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_custody.c - libFuzzer target for custody_verify(), which reads the custody chain file
 * that `devid custody verify` is given (docs/custody.md).
 *
 * devid's key is a fixed public key whose private half signed the seed chains
 * (tests/data/fuzz/custody/), so mutations reach past the first signature. Besides what the
 * sanitizers catch, it aborts when the verifier breaks its contract: a failure must give a
 * reason and a negative code; a success must name at least one record and its batch.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "lib/custody.h"
#include "lib/error.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char root_pem[] = "-----BEGIN PUBLIC KEY-----\n"
			       "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE5DFL7gXf9hwIby0U349mkRweAgOg\n"
			       "i1X6gu7u9lr3fTNXRPDNOOgtdTXB43fLktz2NAOxcCDhrDIprMG2b1Hk8A==\n"
			       "-----END PUBLIC KEY-----\n";

static void
expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_custody: contract broken: %s\n", what);
		abort();
	}
}

static EVP_PKEY *
root(void)
{
	static EVP_PKEY *k;
	BIO *b;

	if (k == NULL) {
		b = BIO_new_mem_buf(root_pem, (int)sizeof(root_pem) - 1);
		k = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
		BIO_free(b);
		expect(k != NULL, "the fixed root key does not read");
	}
	return k;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	EVP_PKEY *roots[1] = {root()};
	struct custody_summary s;
	struct devid_error e;
	int rc;

	devid_error_clear(&e);
	rc = custody_verify(data, size, roots, 1, &s, &e);
	if (rc == 0) {
		expect(s.records >= 1, "success without records");
		expect(s.vendor[0] != '\0' && s.batch[0] != '\0', "success without a batch");
	} else {
		expect(rc < 0, "failure code is not negative");
		expect(e.code == rc, "error code differs from the return value");
		expect(memchr(e.msg, '\0', sizeof(e.msg)) != NULL, "message is not NUL-terminated");
		expect(e.msg[0] != '\0', "failure without a message");
	}
	return 0;
}
