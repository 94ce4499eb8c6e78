/* SPDX-License-Identifier: Apache-2.0 */
/*
 * keyloader.c - file: and pkcs11: CA keys for the service (see keyloader.h).
 */
#include <stdlib.h>
#include <string.h>

#include "cli/keyloader.h"
#include "devid/agent.h"
#include "lib/x509.h"
#include "p11/p11.h"
#include "lib/banned.h"

struct loaded {
	const struct devid_key_backend *backend; /* opened through a backend, or */
	void *state;
	struct p11_key *p11; /* made in a token, or */
	EVP_PKEY *own; /* made in memory and written to a file */
};

static int
loader_open(const char *uri, void **handle, EVP_PKEY **pkey, struct devid_error *e)
{
	struct loaded *l = calloc(1, sizeof(*l));
	int rc;

	*handle = NULL;
	if (l == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "out of memory");
	if ((rc = devid_key_backend_find(uri, &l->backend, e)) != 0 ||
	    (rc = l->backend->load(uri, &l->state, e)) != 0) {
		free(l);
		return rc;
	}
	*pkey = l->backend->get0_pkey(l->state);
	*handle = l;
	return 0;
}

static int
loader_generate(const char *uri, void **handle, EVP_PKEY **pkey, struct devid_error *e)
{
	struct loaded *l = calloc(1, sizeof(*l));
	int rc = 0;

	*handle = NULL;
	if (l == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "out of memory");
	if (strncmp(uri, "pkcs11:", 7) == 0) {
		if ((rc = p11_key_generate(uri, &l->p11, e)) == 0)
			*pkey = p11_key_get0_pkey(l->p11);
	} else if (strncmp(uri, "file:", 5) == 0 && uri[5] != '\0') {
		if ((l->own = pkey_new_p256(e)) == NULL)
			rc = DEVID_ECRYPTO;
		else if ((rc = pkey_write_pem_file(uri + 5, l->own, e)) == 0)
			*pkey = l->own;
	} else {
		rc = devid_error_set(e, DEVID_EINVAL, "a CA key is file:PATH or pkcs11:...");
	}
	if (rc != 0) {
		EVP_PKEY_free(l->own);
		free(l);
		return rc;
	}
	*handle = l;
	return 0;
}

static void
loader_close(void *handle)
{
	struct loaded *l = handle;

	if (l == NULL)
		return;
	if (l->backend != NULL)
		l->backend->free(l->state);
	p11_key_free(l->p11);
	EVP_PKEY_free(l->own);
	free(l);
}

const struct key_loader devid_key_loader = {
    .open = loader_open,
    .generate = loader_generate,
    .close = loader_close,
};
