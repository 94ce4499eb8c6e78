/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_ekcert.c - libFuzzer target for ekcert_check(), which reads a TPM's EK certificate
 * (its key, usages and the subjectAltName's TPM attributes) as a vendor or an OEM sends it.
 *
 * Besides what the sanitizers catch, it aborts when the checker breaks its contract: a
 * refusal gives a reason; an acceptance names a known key type and printable, bounded TPM
 * attributes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/ekcert.h"
#include "lib/x509.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_ekcert: contract broken: %s\n", what);
		abort();
	}
}

static int
printable(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > MAX_TPM_ATTR_LEN)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return 0;
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ekcert_info info;
	struct devid_error e;
	X509 *x;

	if ((x = x509_from_der(data, size, "fuzz", NULL)) == NULL)
		return 0;
	devid_error_clear(&e);
	if (ekcert_check(x, &info, &e) == 0) {
		expect(info.key == EKCERT_RSA2048 || info.key == EKCERT_P256 ||
			info.key == EKCERT_P384,
		    "key type");
		expect(printable(info.manufacturer) && printable(info.model) &&
			printable(info.version),
		    "TPM attributes");
	} else {
		expect(e.msg[0] != '\0', "a refusal without a reason");
	}
	X509_free(x);
	return 0;
}
