/* SPDX-License-Identifier: Apache-2.0 */
/*
 * identity.c - a device identity: a key from a backend chosen by the key URI's scheme, and the
 * certificate (chain) that names it, checked to belong together.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "devid/agent.h"
#include "internal.h"
#include "lib/x509.h"
#include "lib/banned.h"

struct devid_identity {
	const struct devid_key_backend *backend;
	void *key_state; /* the backend's */
	EVP_PKEY *pkey; /* borrowed from key_state */
	X509 *cert;
	STACK_OF(X509) *chain;
	char udid[UDID_HEX_LEN + 1];
};

/* The built-in backends, by scheme. */
static const struct devid_key_backend *const backends[] = {
    &devid_key_backend_file,
    &devid_key_backend_pkcs11,
    &devid_key_backend_tpm2,
};

int
devid_key_backend_find(const char *uri, const struct devid_key_backend **out, struct devid_error *e)
{
	char scheme[AGENT_MAX_SCHEME_LEN + 1];
	int rc;

	*out = NULL;
	if ((rc = agent_uri_scheme(uri, scheme, e)) != 0)
		return rc;
	for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
		if (strcmp(scheme, backends[i]->scheme) == 0) {
			*out = backends[i];
			return 0;
		}
	/* the scheme only: the rest of an unknown URI may hold a secret */
	return devid_error_set(e, DEVID_EINVAL,
	    "key URI: unknown scheme \"%s:\" (supported: file:, pkcs11:, tpm2:)", scheme);
}

/*
 * How messages name a key: a file by its path, a TPM key by its handle or file (no secrets
 * there), a PKCS#11 key by its scheme only (its URI may carry a PIN).
 */
static void
key_name(const char *uri, char *buf, size_t n)
{
	struct agent_tpm2_uri t;
	const char *path;

	if (agent_file_uri_path(uri, &path, NULL) == 0)
		snprintf(buf, n, "key %s", path);
	else if (agent_tpm2_uri_parse(uri, &t, NULL) == 0 && t.path != NULL)
		snprintf(buf, n, "TPM key file %s", t.path);
	else if (agent_tpm2_uri_parse(uri, &t, NULL) == 0)
		snprintf(buf, n, "TPM key at handle 0x%08x", (unsigned)t.handle);
	else
		snprintf(buf, n, "the %.*s: key", (int)strcspn(uri, ":"), uri);
}

int
devid_identity_load(
    const char *key_uri, const char *cert_file, struct devid_identity **out, struct devid_error *e)
{
	const struct devid_key_backend *b;
	int rc;

	*out = NULL;
	if (key_uri == NULL)
		return devid_error_set(e, DEVID_EINVAL, "key URI: missing");
	if ((rc = devid_key_backend_find(key_uri, &b, e)) != 0)
		return rc;
	return devid_identity_load_with(b, key_uri, cert_file, out, e);
}

int
devid_identity_load_with(const struct devid_key_backend *backend, const char *key_uri,
    const char *cert_file, struct devid_identity **out, struct devid_error *e)
{
	struct devid_identity *id = NULL;
	STACK_OF(X509) *certs = NULL;
	char kname[300];
	int rc = DEVID_EINVAL;

	*out = NULL;
	if (backend == NULL || backend->load == NULL || backend->get0_pkey == NULL ||
	    backend->free == NULL || key_uri == NULL || cert_file == NULL)
		return devid_error_set(
		    e, DEVID_EINVAL, "identity: missing backend, key or certificate");
	if ((id = calloc(1, sizeof(*id))) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "identity: out of memory");
	id->backend = backend;
	key_name(key_uri, kname, sizeof(kname));

	if ((certs = x509_load_pem_file_all(cert_file, e)) == NULL) {
		rc = e != NULL && e->code != 0 ? e->code : DEVID_EINVAL;
		devid_error_prefix(e, "certificate");
		goto out;
	}
	id->cert = sk_X509_shift(certs);
	id->chain = certs;
	certs = NULL;
	if (x509_udid(id->cert, id->udid) != 0) {
		rc = devid_error_ssl(
		    e, DEVID_EINVAL, "certificate %s: cannot read its public key", cert_file);
		goto out;
	}

	if ((rc = backend->load(key_uri, &id->key_state, e)) != 0)
		goto out;
	if ((id->pkey = backend->get0_pkey(id->key_state)) == NULL) {
		rc = devid_error_set(e, DEVID_EINTERNAL, "%s: the %s backend gave no key", kname,
		    backend->scheme != NULL ? backend->scheme : "key");
		goto out;
	}
	/* compares public parts only, so it works for keys that never leave a token */
	ERR_clear_error();
	if (X509_check_private_key(id->cert, id->pkey) != 1) {
		ERR_clear_error();
		rc = devid_error_set(e, DEVID_ECRYPTO,
		    "%s does not match certificate %s (UDID %s): the certificate was issued for "
		    "another key",
		    kname, cert_file, id->udid);
		goto out;
	}
	*out = id;
	id = NULL;
	rc = 0;
out:
	sk_X509_pop_free(certs, X509_free);
	devid_identity_free(id);
	return rc;
}

void
devid_identity_free(struct devid_identity *id)
{
	if (id == NULL)
		return;
	if (id->key_state != NULL)
		id->backend->free(id->key_state);
	X509_free(id->cert);
	sk_X509_pop_free(id->chain, X509_free);
	free(id);
}

X509 *
devid_identity_get0_cert(const struct devid_identity *id)
{
	return id->cert;
}

STACK_OF(X509) *
devid_identity_get0_chain(const struct devid_identity *id)
{
	return id->chain;
}

EVP_PKEY *
devid_identity_get0_pkey(const struct devid_identity *id)
{
	return id->pkey;
}

const char *
devid_identity_get0_udid(const struct devid_identity *id)
{
	return id->udid;
}
