// SPDX-License-Identifier: Apache-2.0
/*
 * fuzz_tpm2_attest.c - libFuzzer target for the TPM 2.0 structures a device sends at
 * enrollment by credential activation (src/lib/tpm2_attest.c). The input is
 *   u16 n | n bytes of TPM2B_PUBLIC (the AK) | u16 m | m bytes of TPM2B_PUBLIC (the signing
 *   key) | u16 k | k bytes of TPMS_ATTEST | the rest: TPMT_SIGNATURE
 * (big-endian sizes; a short input stops where it ends). Aborts when a function breaks its
 * contract: a refusal returns nothing and gives a reason; an accepted key has a name of its
 * nameAlg and a public key.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "lib/tpm2_attest.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_tpm2_attest: contract broken: %s\n", what);
		abort();
	}
}

/* The next u16-sized piece of the input, or NULL when the input ends first. */
static const uint8_t *
piece(const uint8_t **p, size_t *left, size_t *n)
{
	const uint8_t *r;

	if (*left < 2)
		return NULL;
	*n = (size_t)(*p)[0] << 8 | (*p)[1];
	if (*n > *left - 2)
		return NULL;
	r = *p + 2;
	*p += 2 + *n;
	*left -= 2 + *n;
	return r;
}

static struct tpm2_public *
parse(const uint8_t *p, size_t n)
{
	struct tpm2_public *pub = (struct tpm2_public *)1;
	struct devid_error e;
	const uint8_t *name;
	size_t len;
	int rc;

	devid_error_clear(&e);
	rc = tpm2_public_parse(p, n, &pub, &e);
	if (rc != 0) {
		expect(pub == NULL && e.msg[0] != '\0' && e.code == rc, "a refusal with a reason");
		return NULL;
	}
	name = tpm2_public_name(pub, &len);
	expect(len == 34 || len == 50, "a name of SHA-256 or SHA-384");
	expect((name[0] << 8 | name[1]) == (len == 34 ? 0x000b : 0x000c), "nameAlg first");
	expect(tpm2_public_get0_pkey(pub) != NULL, "a public key");
	devid_error_clear(&e);
	rc = tpm2_ak_check(pub, &e);
	expect(rc == 0 || (e.msg[0] != '\0' && e.code == rc), "AK check: a reason");
	devid_error_clear(&e);
	rc = tpm2_signing_key_check(pub, &e);
	expect(rc == 0 || (e.msg[0] != '\0' && e.code == rc), "key check: a reason");
	return pub;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tpm2_public *ak = NULL, *key = NULL;
	struct devid_error e;
	const uint8_t *p, *attest;
	size_t n, attest_len;
	int rc;

	if ((p = piece(&data, &size, &n)) == NULL || (ak = parse(p, n)) == NULL)
		goto out;
	if ((p = piece(&data, &size, &n)) == NULL || (key = parse(p, n)) == NULL)
		goto out;
	if ((attest = piece(&data, &size, &attest_len)) == NULL)
		goto out;
	devid_error_clear(&e);
	rc = tpm2_certify_check(ak, key, attest, attest_len, data, size, NULL, 0, &e);
	expect(rc == 0 || (e.msg[0] != '\0' && e.code == rc), "certify check: a reason");
out:
	tpm2_public_free(ak);
	tpm2_public_free(key);
	return 0;
}
