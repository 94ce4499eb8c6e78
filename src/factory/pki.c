/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/x509v3.h>

#include "lib/claim.h"
#include "lib/x509.h"
#include "factory/factory.h"
#include "lib/banned.h"

enum cert_kind { CERT_ROOT, CERT_ISSUING, CERT_SIGNER };

/* id-kp-documentSigning (RFC 9336 3.1), which OpenSSL 3.0 has no name for */
#define OID_KP_DOCUMENT_SIGNING "1.3.6.1.5.5.7.3.36"

static X509 *
make_cert(enum cert_kind kind, const char *vendor, EVP_PKEY *key, X509 *issuer,
    EVP_PKEY *issuer_key, struct devid_error *e)
{
	static const char *const cn[] = {"Root CA", "Issuing CA", "Manifest Signer"};
	char name[MAX_NAME_LEN + 32];
	X509V3_CTX ctx;
	X509_NAME *subj = NULL;
	X509 *x;

	if ((x = X509_new()) == NULL)
		goto fail;
	/* the CN names the vendor when it fits in ub-common-name (64); O always does */
	if (strlen(vendor) + 1 + strlen(cn[kind]) <= 64)
		snprintf(name, sizeof(name), "%s %s", vendor, cn[kind]);
	else
		snprintf(name, sizeof(name), "%s", cn[kind]);
	subj = X509_NAME_new();
	if (subj == NULL ||
	    !X509_NAME_add_entry_by_txt(
		subj, "O", MBSTRING_UTF8, (const unsigned char *)vendor, -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(
		subj, "CN", MBSTRING_UTF8, (const unsigned char *)name, -1, -1, 0))
		goto fail;
	if (!X509_set_version(x, X509_VERSION_3) || x509_set_random_serial(x) != 0 ||
	    !X509_set_subject_name(x, subj) ||
	    !X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subj) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL || !X509_set_pubkey(x, key))
		goto fail;
	if (kind == CERT_SIGNER) {
		/* a signer is rotated: ten years */
		if (X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 86400) == NULL)
			goto fail;
	} else if (!ASN1_TIME_set_string_X509(X509_getm_notAfter(x), VENDOR_NOT_AFTER)) {
		goto fail;
	}
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	switch (kind) {
	case CERT_ROOT:
		if (x509_add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") ||
		    x509_add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") ||
		    x509_add_ext(x, &ctx, NID_subject_key_identifier, "hash"))
			goto fail;
		break;
	case CERT_ISSUING:
		if (x509_add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
		    x509_add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") ||
		    x509_add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
		    x509_add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"))
			goto fail;
		break;
	case CERT_SIGNER:
		/* id-kp-documentSigning alone: the root also anchors the chips' TLS client
		 * certificates, and a signer must never pass for one (docs/formats.md) */
		if (x509_add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") ||
		    x509_add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") ||
		    x509_add_ext(x, &ctx, NID_ext_key_usage, OID_KP_DOCUMENT_SIGNING) ||
		    x509_add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
		    x509_add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"))
			goto fail;
		break;
	}
	if (X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) <= 0)
		goto fail;
	X509_NAME_free(subj);
	X509_check_purpose(x, -1, 0);
	return x;
fail:
	devid_error_ssl(e, DEVID_ECRYPTO, "cannot make the %s certificate", cn[kind]);
	X509_NAME_free(subj);
	X509_free(x);
	return NULL;
}

static int
path_join(char *buf, size_t len, const char *dir, const char *file, struct devid_error *e)
{
	if ((size_t)snprintf(buf, len, "%s/%s", dir, file) >= len)
		return devid_error_set(e, DEVID_EINVAL, "%s: path too long", dir);
	return 0;
}

int
vendor_init(const char *dir, const char *name, struct devid_error *e)
{
	static const char *const files[] = {VENDOR_ROOT_KEY, VENDOR_ISSUING_KEY, VENDOR_SIGNER_KEY,
	    VENDOR_ROOT_PEM, VENDOR_ISSUING_PEM, VENDOR_SIGNER_PEM};
	EVP_PKEY *k[3] = {NULL, NULL, NULL};
	X509 *c[3] = {NULL, NULL, NULL};
	char path[PATH_MAX];
	struct stat st;
	int rc = DEVID_EINVAL;

	if (!claim_name_valid(name, strlen(name)))
		return devid_error_set(e, rc,
		    "vendor name \"%s\" must match [A-Z0-9.-]{1,64} (it appears in claim codes)",
		    name);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return devid_error_set(e, DEVID_EIO, "%s: %s", dir, strerror(errno));
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (path_join(path, sizeof(path), dir, files[i], e) != 0)
			return DEVID_EINVAL;
		if (stat(path, &st) == 0)
			return devid_error_set(e, DEVID_ECONFLICT,
			    "%s already exists; refusing to replace a vendor PKI", path);
	}
	for (int i = 0; i < 3; i++)
		if ((k[i] = pkey_new_p256(e)) == NULL)
			goto out;
	if ((c[0] = make_cert(CERT_ROOT, name, k[0], NULL, NULL, e)) == NULL ||
	    (c[1] = make_cert(CERT_ISSUING, name, k[1], c[0], k[0], e)) == NULL ||
	    (c[2] = make_cert(CERT_SIGNER, name, k[2], c[0], k[0], e)) == NULL)
		goto out;
	for (int i = 0; i < 3; i++) {
		if (path_join(path, sizeof(path), dir, files[i], e) != 0 ||
		    pkey_write_pem_file(path, k[i], e) != 0)
			goto out;
		if (path_join(path, sizeof(path), dir, files[i + 3], e) != 0 ||
		    x509_write_pem_file(path, c[i], e) != 0)
			goto out;
	}
	rc = 0;
out:
	for (int i = 0; i < 3; i++) {
		EVP_PKEY_free(k[i]);
		X509_free(c[i]);
	}
	return rc;
}

void
vendor_pki_release(struct vendor_pki *pki)
{
	X509_free(pki->root);
	X509_free(pki->issuing);
	X509_free(pki->signer);
	EVP_PKEY_free(pki->issuing_key);
	EVP_PKEY_free(pki->signer_key);
	memset(pki, 0, sizeof(*pki));
}

int
vendor_pki_load(const char *dir, struct vendor_pki *pki, struct devid_error *e)
{
	char path[PATH_MAX];
	X509_NAME *subj;
	int idx;

	memset(pki, 0, sizeof(*pki));
	if (path_join(path, sizeof(path), dir, VENDOR_ROOT_PEM, e) ||
	    (pki->root = x509_load_pem_file(path, e)) == NULL ||
	    path_join(path, sizeof(path), dir, VENDOR_ISSUING_PEM, e) ||
	    (pki->issuing = x509_load_pem_file(path, e)) == NULL ||
	    path_join(path, sizeof(path), dir, VENDOR_SIGNER_PEM, e) ||
	    (pki->signer = x509_load_pem_file(path, e)) == NULL ||
	    path_join(path, sizeof(path), dir, VENDOR_ISSUING_KEY, e) ||
	    (pki->issuing_key = pkey_load_pem_file(path, e)) == NULL ||
	    path_join(path, sizeof(path), dir, VENDOR_SIGNER_KEY, e) ||
	    (pki->signer_key = pkey_load_pem_file(path, e)) == NULL)
		goto fail;
	if (X509_check_private_key(pki->issuing, pki->issuing_key) != 1 ||
	    X509_check_private_key(pki->signer, pki->signer_key) != 1) {
		devid_error_ssl(e, DEVID_EINVAL, "%s: a key does not match its certificate", dir);
		goto fail;
	}
	subj = X509_get_subject_name(pki->issuing);
	idx = X509_NAME_get_index_by_NID(subj, NID_organizationName, -1);
	if (idx < 0 ||
	    X509_NAME_get_text_by_NID(subj, NID_organizationName, pki->name, sizeof(pki->name)) <=
		0 ||
	    !claim_name_valid(pki->name, strlen(pki->name))) {
		devid_error_set(e, DEVID_EINVAL, "%s: issuing CA has no valid O= vendor name", dir);
		goto fail;
	}
	return 0;
fail:
	vendor_pki_release(pki);
	return DEVID_EINVAL;
}
