/* SPDX-License-Identifier: Apache-2.0 */
/*
 * key_file.c - the file: key backend: an unencrypted PEM private key in a file, the
 * development stand-in for a secure element. The bytes read are wiped before they are freed.
 */
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "devid/agent.h"
#include "internal.h"
#include "lib/limits.h"
#include "lib/x509.h"
#include "lib/banned.h"

/* PEM's password callback: there is no password, so an encrypted key fails instead of asking */
static int
no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

static int
key_file_load(const char *uri, void **state, struct devid_error *e)
{
	const char *path;
	uint8_t *buf = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	EVP_PKEY *k = NULL;
	int rc;

	*state = NULL;
	if ((rc = agent_file_uri_path(uri, &path, e)) != 0)
		return rc;
	if ((rc = file_read_all(path, MAX_PEM_FILE, &buf, &len, e)) != 0) {
		devid_error_prefix(e, "key");
		return rc;
	}
	ERR_clear_error();
	if ((bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
		rc = devid_error_set(e, DEVID_ENOMEM, "key %s: out of memory", path);
		goto out;
	}
	if ((k = PEM_read_bio_PrivateKey(bio, NULL, no_password, NULL)) == NULL) {
		rc = devid_error_ssl(e, DEVID_EINVAL,
		    "key %s: not an unencrypted PEM private key (encrypted keys are not supported)",
		    path);
		goto out;
	}
	*state = k;
	rc = 0;
out:
	BIO_free(bio);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return rc;
}

static EVP_PKEY *
key_file_get0_pkey(void *state)
{
	return state;
}

static void
key_file_free(void *state)
{
	EVP_PKEY_free(state);
}

const struct devid_key_backend devid_key_backend_file = {
    .scheme = "file",
    .load = key_file_load,
    .get0_pkey = key_file_get0_pkey,
    .free = key_file_free,
};
