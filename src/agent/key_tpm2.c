/* SPDX-License-Identifier: Apache-2.0 */
/*
 * key_tpm2.c - the tpm2: key backend: a key inside a TPM 2.0, reached through the tpm2
 * provider of tpm2-openssl, loaded at run time into a library context of the key's own.
 *
 * The provider stays out of OpenSSL's default context: there it would offer its digests,
 * random numbers and EC key generation to every fetch of the process. In its own context it
 * opens the key (OSSL_STORE: "handle:0x81..." for a persistent key; the "file" loader of the
 * base provider with the provider's TSS2 decoder for a key file) and signs with it, nothing
 * else. What the rest of the agent sees is a bridge in the default context: an EC_KEY
 * holding the public point, whose EC_KEY_METHOD's sign_sig hands the digest to the TPM key
 * (EVP_PKEY_sign in the private context, i.e. TPM2_Sign). A provider key from another
 * context cannot be used directly: libssl and X509_REQ_sign fetch ECDSA in their own
 * (default) context and export the key to it, and tpm2-openssl exports only the public half,
 * so the signature would fail with "missing private key".
 *
 * EC_KEY, EC_KEY_METHOD and EVP_PKEY_assign_EC_KEY are deprecated in OpenSSL 3; src/p11
 * bridges PKCS#11 keys the same way and says why. Asking for the 1.1.1 API in this file only
 * keeps them without deprecation warnings.
 */
#define OPENSSL_API_COMPAT 10101

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/ui.h>

#include "devid/agent.h"
#include "internal.h"
#include "lib/limits.h"
#include "lib/x509.h"
#include "lib/banned.h"

/* the PEM label of tpm2-openssl's (and tpm2-tss-engine's) key files */
#define TSS2_PEM_BEGIN "-----BEGIN TSS2 PRIVATE KEY-----"
/* an uncompressed point of P-384, the largest curve taken */
#define TPM2_MAX_POINT_LEN 97
/* a DER ECDSA signature of P-384 */
#define TPM2_MAX_SIG_LEN 110

struct tpm2_key {
	OSSL_LIB_CTX *libctx; /* ours: the tpm2 provider lives only here */
	OSSL_PROVIDER *tpm2;
	OSSL_PROVIDER *base; /* file= only: the file loader and the PEM decoder */
	EVP_PKEY *tpm_key; /* in libctx: its private part is a TPM object */
	EVP_PKEY *pkey; /* the bridge in the default context (the backend's key) */
	pthread_mutex_t mu; /* one TPM connection: one command at a time */
	char name[300]; /* "TPM key at handle 0x81000010", "TPM key file PATH" */
};

static pthread_once_t method_once = PTHREAD_ONCE_INIT;
static EC_KEY_METHOD *method;
static int ex_index = -1;

/*
 * The earliest error on OpenSSL's queue, with its data (the tpm2 provider puts the TPM's
 * response code there: "395 tpm:handle(1):the handle is not correct for the use"), made
 * printable; the queue is cleared.
 */
static void
ssl_reason(char *out, size_t outsz)
{
	const char *data = NULL;
	unsigned long err;
	int flags = 0;
	char buf[400];

	buf[0] = '\0';
	if ((err = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
		const char *lib = ERR_lib_error_string(err);
		const char *reason = ERR_reason_error_string(err);

		snprintf(buf, sizeof(buf), "%s%s%s%s%s", lib != NULL ? lib : "",
		    lib != NULL ? ": " : "", reason != NULL ? reason : "error",
		    (flags & ERR_TXT_STRING) && data != NULL && data[0] != '\0' ? ": " : "",
		    (flags & ERR_TXT_STRING) && data != NULL ? data : "");
	} else {
		snprintf(buf, sizeof(buf), "no reason given");
	}
	ERR_clear_error();
	agent_printable((const uint8_t *)buf, strlen(buf), outsz - 1, out, outsz);
}

/* How a message names the TPM the provider reaches. */
static void
tcti_name(char *out, size_t outsz)
{
	const char *t = getenv("TPM2OPENSSL_TCTI");
	char p[200];

	if (t == NULL || t[0] == '\0') {
		snprintf(out, outsz,
		    "the default TCTI (TPM2OPENSSL_TCTI is not set: tabrmd, then /dev/tpmrm0, then "
		    "/dev/tpm0)");
		return;
	}
	agent_printable((const uint8_t *)t, strlen(t), 120, p, sizeof(p));
	snprintf(out, outsz, "TPM2OPENSSL_TCTI=\"%s\"", p);
}

/* The hash of a digest, by its length: tpm2-openssl passes it to TPM2_Sign. */
static const char *
digest_name(int len)
{
	switch (len) {
	case 20:
		return "SHA1";
	case 32:
		return "SHA256";
	case 48:
		return "SHA384";
	case 64:
		return "SHA512";
	default:
		return NULL;
	}
}

/* The sign_sig of the EC_KEY_METHOD: TPM2_Sign over the digest, through the provider. */
static ECDSA_SIG *
key_sign_sig(
    const unsigned char *dgst, int dgst_len, const BIGNUM *kinv, const BIGNUM *r, EC_KEY *ec)
{
	struct tpm2_key *k = EC_KEY_get_ex_data(ec, ex_index);
	unsigned char sig[TPM2_MAX_SIG_LEN];
	size_t siglen = sizeof(sig);
	const unsigned char *p = sig;
	const char *md = digest_name(dgst_len);
	EVP_PKEY_CTX *ctx = NULL;
	ECDSA_SIG *out = NULL;
	OSSL_PARAM params[2];
	int ok;

	(void)kinv;
	(void)r;
	if (k == NULL || md == NULL) {
		ERR_raise_data(ERR_LIB_USER, ERR_R_PASSED_INVALID_ARGUMENT,
		    "TPM: not a TPM key, or a digest of %d bytes", dgst_len);
		return NULL;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_SIGNATURE_PARAM_DIGEST, (char *)md, 0);
	params[1] = OSSL_PARAM_construct_end();
	pthread_mutex_lock(&k->mu);
	ok = (ctx = EVP_PKEY_CTX_new_from_pkey(k->libctx, k->tpm_key, NULL)) != NULL &&
	    EVP_PKEY_sign_init_ex(ctx, params) == 1 &&
	    EVP_PKEY_sign(ctx, sig, &siglen, dgst, (size_t)dgst_len) == 1;
	pthread_mutex_unlock(&k->mu);
	EVP_PKEY_CTX_free(ctx);
	if (!ok) {
		char why[300];

		ssl_reason(why, sizeof(why));
		ERR_raise_data(
		    ERR_LIB_USER, ERR_R_OPERATION_FAIL, "%s: TPM2_Sign (%s): %s", k->name, md, why);
		return NULL;
	}
	if ((out = d2i_ECDSA_SIG(NULL, &p, (long)siglen)) == NULL)
		ERR_raise_data(ERR_LIB_USER, ERR_R_OPERATION_FAIL,
		    "%s: the TPM's signature is not a DER ECDSA signature", k->name);
	return out;
}

/* No precomputation: the TPM draws k itself. */
static int
key_sign_setup(EC_KEY *ec, BN_CTX *ctx, BIGNUM **kinv, BIGNUM **r)
{
	(void)ec;
	(void)ctx;
	(void)kinv;
	(void)r;
	ERR_raise_data(ERR_LIB_USER, ERR_R_OPERATION_FAIL, "TPM: the TPM draws k itself");
	return 0;
}

static void
method_init(void)
{
	int (*sign)(int, const unsigned char *, int, unsigned char *, unsigned int *,
	    const BIGNUM *, const BIGNUM *, EC_KEY *) = NULL;

	ex_index = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	if (ex_index < 0 || (method = EC_KEY_METHOD_new(EC_KEY_OpenSSL())) == NULL)
		return;
	/* OpenSSL's sign (DER) calls ECDSA_do_sign_ex, which calls our sign_sig */
	EC_KEY_METHOD_get_sign(EC_KEY_OpenSSL(), &sign, NULL, NULL);
	EC_KEY_METHOD_set_sign(method, sign, key_sign_setup, key_sign_sig);
}

static void
key_tpm2_free(void *state)
{
	struct tpm2_key *k = state;

	if (k == NULL)
		return;
	/* the bridge points at k and the TPM key at the providers: they go first */
	EVP_PKEY_free(k->pkey);
	EVP_PKEY_free(k->tpm_key);
	if (k->base != NULL)
		OSSL_PROVIDER_unload(k->base);
	if (k->tpm2 != NULL)
		OSSL_PROVIDER_unload(k->tpm2);
	OSSL_LIB_CTX_free(k->libctx);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

/* Loads the tpm2 provider into k's context; tells "not installed" from "no TPM there". */
static int
provider_load(struct tpm2_key *k, struct devid_error *e)
{
	char why[300], tcti[200];
	unsigned long err;
	const char *dir;

	ERR_clear_error();
	if ((k->tpm2 = OSSL_PROVIDER_load(k->libctx, "tpm2")) != NULL)
		return 0;
	err = ERR_peek_error();
	ssl_reason(why, sizeof(why));
	if (ERR_GET_LIB(err) == ERR_LIB_DSO) {
		if ((dir = getenv("OPENSSL_MODULES")) == NULL)
			dir = OPENSSL_info(OPENSSL_INFO_MODULES_DIR);
		return devid_error_set(e, DEVID_ENOTFOUND,
		    "%s: the tpm2 provider of tpm2-openssl is not installed (no tpm2.so among "
		    "OpenSSL's modules, %s; Debian package tpm2-openssl): %s",
		    k->name, dir, why);
	}
	tcti_name(tcti, sizeof(tcti));
	return devid_error_set(e, DEVID_EIO,
	    "%s: the TPM is unreachable through %s: the tpm2 provider did not start: %s", k->name,
	    tcti, why);
}

/* Reads a key file and checks that it is a TSS2 PRIVATE KEY PEM. *out: free(). */
static int
file_read(struct tpm2_key *k, const char *path, uint8_t **out, size_t *len, struct devid_error *e)
{
	int rc;

	*out = NULL;
	if ((rc = file_read_all(path, MAX_PEM_FILE, out, len, e)) != 0) {
		devid_error_prefix(e, "%s", k->name);
		return rc;
	}
	if (*len < sizeof(TSS2_PEM_BEGIN) - 1 ||
	    memmem(*out, *len, TSS2_PEM_BEGIN, sizeof(TSS2_PEM_BEGIN) - 1) == NULL) {
		free(*out);
		*out = NULL;
		return devid_error_set(e, DEVID_EINVAL,
		    "%s: not a TPM key file (tpm2-openssl's PEM of a key wrapped by the TPM, "
		    "labelled "
		    "TSS2 PRIVATE KEY); a PEM key outside a TPM is file:PATH",
		    k->name);
	}
	return 0;
}

/* Opens the store of the URI in k's context and takes its first private key. */
static int
store_load(struct tpm2_key *k, const struct agent_tpm2_uri *u, struct devid_error *e)
{
	OSSL_STORE_CTX *s = NULL;
	uint8_t *buf = NULL;
	size_t len = 0;
	BIO *bio = NULL;
	char why[300], tcti[200], ref[32];
	int rc;

	if (u->path != NULL) {
		if ((rc = file_read(k, u->path, &buf, &len, e)) != 0)
			return rc;
		ERR_clear_error();
		if ((k->base = OSSL_PROVIDER_load(k->libctx, "base")) == NULL ||
		    (bio = BIO_new_mem_buf(buf, (int)len)) == NULL) {
			rc = devid_error_ssl(
			    e, DEVID_EINTERNAL, "%s: OpenSSL's base provider", k->name);
			goto out;
		}
		/* UI_null: a key that needs a password fails instead of prompting */
		s = OSSL_STORE_attach(
		    bio, "file", k->libctx, NULL, UI_null(), NULL, NULL, NULL, NULL);
	} else {
		/* only the tpm2 provider is loaded: no "file" loader takes "handle:" as a path */
		snprintf(ref, sizeof(ref), "handle:0x%08x", (unsigned)u->handle);
		s = OSSL_STORE_open_ex(ref, k->libctx, NULL, UI_null(), NULL, NULL, NULL, NULL);
	}
	while (s != NULL && k->tpm_key == NULL && !OSSL_STORE_eof(s)) {
		OSSL_STORE_INFO *info = OSSL_STORE_load(s);

		if (info == NULL)
			break;
		if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
			k->tpm_key = OSSL_STORE_INFO_get1_PKEY(info);
		OSSL_STORE_INFO_free(info);
	}
	if (k->tpm_key == NULL) {
		ssl_reason(why, sizeof(why));
		tcti_name(tcti, sizeof(tcti));
		if (u->path != NULL)
			rc = devid_error_set(e, DEVID_EINVAL,
			    "%s: the TPM (through %s) cannot load it: a key of another TPM or of "
			    "another parent, or one that needs a password: %s",
			    k->name, tcti, why);
		else
			rc = devid_error_set(e, DEVID_ENOTFOUND,
			    "%s: the TPM (through %s) has no key there (tpm2_getcap "
			    "handles-persistent lists them): %s",
			    k->name, tcti, why);
		goto out;
	}
	rc = 0;
out:
	OSSL_STORE_close(s);
	BIO_free(bio);
	free(buf);
	return rc;
}

/* The bridge: an EC_KEY in the default context with the TPM key's public point. */
static int
bridge_make(struct tpm2_key *k, struct devid_error *e)
{
	unsigned char point[TPM2_MAX_POINT_LEN];
	size_t plen = 0, glen = 0;
	char group[64];
	EC_KEY *ec = NULL;
	int nid;

	if (!EVP_PKEY_is_a(k->tpm_key, "EC"))
		return devid_error_set(e, DEVID_EINVAL,
		    "%s: the key is %s; devid-agent takes EC keys (P-256, P-384) from a TPM",
		    k->name,
		    EVP_PKEY_get0_type_name(k->tpm_key) != NULL
			? EVP_PKEY_get0_type_name(k->tpm_key)
			: "non-EC");
	if (EVP_PKEY_get_utf8_string_param(
		k->tpm_key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), &glen) != 1 ||
	    ((nid = OBJ_sn2nid(group)) != NID_X9_62_prime256v1 && nid != NID_secp384r1))
		return devid_error_set(
		    e, DEVID_EINVAL, "%s: an EC key on a curve other than P-256 or P-384", k->name);
	if (EVP_PKEY_get_octet_string_param(
		k->tpm_key, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point), &plen) != 1)
		return devid_error_ssl(e, DEVID_EINTERNAL, "%s: no public key", k->name);
	ERR_clear_error();
	/*
	 * The method goes on before EVP_PKEY_assign: OpenSSL 3 then marks the key "foreign" and
	 * keeps it on the legacy path instead of exporting it to its default provider.
	 */
	if ((ec = EC_KEY_new_by_curve_name(nid)) == NULL || EC_KEY_set_method(ec, method) != 1 ||
	    EC_KEY_oct2key(ec, point, plen, NULL) != 1 ||
	    EC_KEY_set_ex_data(ec, ex_index, k) != 1 || (k->pkey = EVP_PKEY_new()) == NULL ||
	    EVP_PKEY_assign_EC_KEY(k->pkey, ec) != 1) {
		EC_KEY_free(ec);
		return devid_error_ssl(e, DEVID_EINTERNAL, "%s: EC_KEY", k->name);
	}
	return 0;
}

static int
key_tpm2_load(const char *uri, void **state, struct devid_error *e)
{
	struct agent_tpm2_uri u;
	struct tpm2_key *k = NULL;
	int rc;

	*state = NULL;
	if ((rc = agent_tpm2_uri_parse(uri, &u, e)) != 0)
		return rc;
	pthread_once(&method_once, method_init);
	if (method == NULL)
		return devid_error_ssl(e, DEVID_EINTERNAL, "TPM: no EC_KEY_METHOD");
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "TPM: out of memory");
	pthread_mutex_init(&k->mu, NULL);
	if (u.path != NULL)
		snprintf(k->name, sizeof(k->name), "TPM key file %s", u.path);
	else
		snprintf(k->name, sizeof(k->name), "TPM key at handle 0x%08x", (unsigned)u.handle);
	if ((k->libctx = OSSL_LIB_CTX_new()) == NULL) {
		rc = devid_error_ssl(e, DEVID_ENOMEM, "%s: OSSL_LIB_CTX_new", k->name);
		goto out;
	}
	if ((rc = provider_load(k, e)) != 0 || (rc = store_load(k, &u, e)) != 0 ||
	    (rc = bridge_make(k, e)) != 0)
		goto out;
	*state = k;
	k = NULL;
	rc = 0;
out:
	key_tpm2_free(k);
	return rc;
}

static EVP_PKEY *
key_tpm2_get0_pkey(void *state)
{
	return ((struct tpm2_key *)state)->pkey;
}

const struct devid_key_backend devid_key_backend_tpm2 = {
    .scheme = "tpm2",
    .load = key_tpm2_load,
    .get0_pkey = key_tpm2_get0_pkey,
    .free = key_tpm2_free,
};
