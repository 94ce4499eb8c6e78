/* SPDX-License-Identifier: Apache-2.0 */
/*
 * key_pkcs11.c - the pkcs11: key backend: a key in a PKCS#11 token named by an RFC 7512 URI
 * (src/p11). The private key never leaves the token; OpenSSL signs through it.
 */
#include "devid/agent.h"
#include "p11/p11.h"
#include "lib/banned.h"

static int
key_pkcs11_load(const char *uri, void **state, struct devid_error *e)
{
	struct p11_key *k = NULL;
	int rc;

	*state = NULL;
	if ((rc = p11_key_open(uri, &k, e)) != 0)
		return rc;
	*state = k;
	return 0;
}

static EVP_PKEY *
key_pkcs11_get0_pkey(void *state)
{
	return p11_key_get0_pkey(state);
}

static void
key_pkcs11_free(void *state)
{
	p11_key_free(state);
}

const struct devid_key_backend devid_key_backend_pkcs11 = {
    .scheme = "pkcs11",
    .load = key_pkcs11_load,
    .get0_pkey = key_pkcs11_get0_pkey,
    .free = key_pkcs11_free,
};
