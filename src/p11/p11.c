/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11.c - a private key inside a PKCS#11 token as an OpenSSL EVP_PKEY (see p11.h).
 *
 * p11-kit parses the RFC 7512 URI and loads the module; the module is kept in a registry by
 * path, so that two keys of one module share one C_Initialize / C_Finalize. The EVP_PKEY is
 * an EC_KEY holding only the public point, with an EC_KEY_METHOD whose sign_sig callback runs
 * C_Sign(CKM_ECDSA) in the token and turns its r||s into an ECDSA_SIG.
 */

/*
 * EC_KEY, EC_KEY_METHOD and EVP_PKEY_assign_EC_KEY are deprecated in OpenSSL 3 in favour of
 * providers. There is no PKCS#11 provider in Debian 12 (pkcs11-provider came with Debian 13),
 * and an EC_KEY with its own method is what OpenSSL 3 still routes through the legacy
 * signing path for any key it marks "foreign" (libp11's engine relies on the same): X509_sign,
 * X509_REQ_sign and libssl's CertificateVerify all end in our sign_sig. Asking for the 1.1.1
 * API here, in this file only, keeps those declarations without deprecation warnings
 * (-Werror) and keeps the rest of devid on the OpenSSL 3 API.
 */
#define OPENSSL_API_COMPAT 10101

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>

#include <p11-kit/p11-kit.h>
#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include "p11/p11.h"
#include "lib/banned.h"

/* sessions of one key used for signing at once; more signers wait for one to be free */
#define P11_MAX_SESSIONS 8
/* private key objects counted when a URI matches several */
#define P11_MAX_MATCHES 16
/* a PIN read from pin-source or the environment */
#define P11_MAX_PIN_LEN 256
/* tokens (slots with a token) looked at when choosing one */
#define P11_MAX_SLOTS 64
/* a CKA_EC_POINT or CKA_EC_PARAMS value */
#define P11_MAX_ATTR_LEN 512
/* an ECDSA signature r||s (P-384: 96 bytes) */
#define P11_MAX_SIG_LEN 132
/* bytes of a random CKA_ID when the URI gives none */
#define P11_GENERATED_ID_LEN 16

#ifndef DEVID_P11_PROXY_MODULE
#define DEVID_P11_PROXY_MODULE "p11-kit-proxy.so"
#endif

/* ---- PKCS#11 return codes in messages -------------------------------------------------- */

static const struct {
	CK_RV rv;
	const char *name;
} ckr_names[] = {
    {CKR_OK, "CKR_OK"},
    {CKR_CANCEL, "CKR_CANCEL"},
    {CKR_HOST_MEMORY, "CKR_HOST_MEMORY"},
    {CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID"},
    {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR"},
    {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED"},
    {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD"},
    {CKR_CANT_LOCK, "CKR_CANT_LOCK"},
    {CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE"},
    {CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID"},
    {CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID"},
    {CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE"},
    {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
    {CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY"},
    {CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED"},
    {CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED"},
    {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID"},
    {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT"},
    {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED"},
    {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID"},
    {CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID"},
    {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID"},
    {CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE"},
    {CKR_OPERATION_NOT_INITIALIZED, "CKR_OPERATION_NOT_INITIALIZED"},
    {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT"},
    {CKR_PIN_INVALID, "CKR_PIN_INVALID"},
    {CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE"},
    {CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED"},
    {CKR_PIN_LOCKED, "CKR_PIN_LOCKED"},
    {CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED"},
    {CKR_SESSION_COUNT, "CKR_SESSION_COUNT"},
    {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID"},
    {CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY"},
    {CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE"},
    {CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT"},
    {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT"},
    {CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED"},
    {CKR_TOKEN_WRITE_PROTECTED, "CKR_TOKEN_WRITE_PROTECTED"},
    {CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN"},
    {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN"},
    {CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED"},
    {CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID"},
    {CKR_USER_ANOTHER_ALREADY_LOGGED_IN, "CKR_USER_ANOTHER_ALREADY_LOGGED_IN"},
    {CKR_USER_TOO_MANY_TYPES, "CKR_USER_TOO_MANY_TYPES"},
    {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL"},
    {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED"},
    {CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED"},
    {CKR_DOMAIN_PARAMS_INVALID, "CKR_DOMAIN_PARAMS_INVALID"},
    {CKR_CURVE_NOT_SUPPORTED, "CKR_CURVE_NOT_SUPPORTED"},
};

/* The name of a CKR_* code, or "CKR_0x..." in buf for one not in the table. */
static const char *
ckr_name(CK_RV rv, char *buf, size_t n)
{
	for (size_t i = 0; i < sizeof(ckr_names) / sizeof(ckr_names[0]); i++)
		if (ckr_names[i].rv == rv)
			return ckr_names[i].name;
	snprintf(buf, n, "CKR_0x%08lx", (unsigned long)rv);
	return buf;
}

/* devid_error_set with ": CKR_NAME" appended. */
static int
p11_error(struct devid_error *e, int code, CK_RV rv, const char *what)
{
	char buf[32];

	return devid_error_set(e, code, "%s: %s", what, ckr_name(rv, buf, sizeof(buf)));
}

/* The DEVID_E* code for a failed call. */
static int
ckr_code(CK_RV rv)
{
	switch (rv) {
	case CKR_HOST_MEMORY:
		return DEVID_ENOMEM;
	case CKR_PIN_INCORRECT:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
	case CKR_PIN_EXPIRED:
	case CKR_PIN_LOCKED:
	case CKR_USER_NOT_LOGGED_IN:
	case CKR_USER_PIN_NOT_INITIALIZED:
	case CKR_USER_ANOTHER_ALREADY_LOGGED_IN:
		return DEVID_EAUTH;
	case CKR_ARGUMENTS_BAD:
	case CKR_ATTRIBUTE_VALUE_INVALID:
	case CKR_TEMPLATE_INCONSISTENT:
	case CKR_TEMPLATE_INCOMPLETE:
	case CKR_MECHANISM_INVALID:
	case CKR_KEY_TYPE_INCONSISTENT:
	case CKR_KEY_FUNCTION_NOT_PERMITTED:
	case CKR_CURVE_NOT_SUPPORTED:
	case CKR_DOMAIN_PARAMS_INVALID:
		return DEVID_EINVAL;
	default:
		return DEVID_EIO;
	}
}

/* ---- the module registry --------------------------------------------------------------- */

/* A slot this process logged in to, and a salted digest of the PIN it used. */
struct p11_login {
	CK_SLOT_ID slot;
	unsigned char pin_digest[32];
};

struct p11_module {
	struct p11_module *next;
	char *path;
	CK_FUNCTION_LIST *f;
	void *dl; /* the proxy module, dlopen'ed; NULL when p11-kit loaded the module */
	int refs;
	pthread_mutex_t mu; /* logins (per token and application in PKCS#11) */
	struct p11_login *logins;
	size_t nlogins;
};

static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct p11_module *registry;
static unsigned char pin_salt[32];
static bool pin_salt_set;

static void
module_free(struct p11_module *m)
{
	if (m == NULL)
		return;
	pthread_mutex_destroy(&m->mu);
	free(m->logins);
	free(m->path);
	free(m);
}

/* p11-kit's proxy module, by its file name. */
static bool
is_proxy(const char *path)
{
	const char *base = strrchr(path, '/');

	return strcmp(base != NULL ? base + 1 : path, "p11-kit-proxy.so") == 0;
}

/*
 * p11-kit refuses to load its own proxy through p11_kit_module_load: the proxy is a module for
 * applications that know nothing of p11-kit, loaded as any PKCS#11 library is, with dlopen
 * and C_GetFunctionList.
 */
static int
proxy_load(struct p11_module *m, struct devid_error *e)
{
	CK_C_GetFunctionList get;
	CK_RV rv;

	if ((m->dl = dlopen(m->path, RTLD_NOW | RTLD_LOCAL)) == NULL)
		return devid_error_set(
		    e, DEVID_EIO, "PKCS#11 module %s: cannot load it: %s", m->path, dlerror());
	*(void **)&get = dlsym(m->dl, "C_GetFunctionList");
	if (get == NULL || (rv = get(&m->f)) != CKR_OK || m->f == NULL) {
		dlclose(m->dl);
		m->dl = NULL;
		m->f = NULL;
		return devid_error_set(
		    e, DEVID_EIO, "PKCS#11 module %s: no C_GetFunctionList, or it failed", m->path);
	}
	return 0;
}

static void
module_unload(struct p11_module *m)
{
	if (m->dl != NULL)
		dlclose(m->dl);
	else if (m->f != NULL)
		p11_kit_module_release(m->f);
	m->dl = NULL;
	m->f = NULL;
}

/*
 * The module at path, loaded and initialized on first use; the caller holds one reference
 * until module_put. The module is loaded "managed" (p11-kit's default): a host that also
 * uses the module through p11-kit (or another library) keeps its own C_Initialize.
 */
static int
module_get(const char *path, struct p11_module **out, struct devid_error *e)
{
	struct p11_module *m = NULL;
	CK_C_INITIALIZE_ARGS args;
	CK_RV rv;
	int rc = DEVID_EIO;

	*out = NULL;
	pthread_mutex_lock(&registry_mu);
	if (!pin_salt_set) {
		if (RAND_bytes(pin_salt, sizeof(pin_salt)) != 1) {
			rc = devid_error_ssl(e, DEVID_EINTERNAL, "PKCS#11: no random bytes");
			goto out;
		}
		pin_salt_set = true;
	}
	for (m = registry; m != NULL; m = m->next)
		if (strcmp(m->path, path) == 0) {
			m->refs++;
			*out = m;
			m = NULL;
			rc = 0;
			goto out;
		}
	if ((m = calloc(1, sizeof(*m))) == NULL || (m->path = strdup(path)) == NULL) {
		free(m);
		m = NULL;
		rc = devid_error_set(e, DEVID_ENOMEM, "PKCS#11: out of memory");
		goto out;
	}
	pthread_mutex_init(&m->mu, NULL);
	if (is_proxy(path)) {
		if ((rc = proxy_load(m, e)) != 0)
			goto out;
	} else if ((m->f = p11_kit_module_load(path, 0)) == NULL) {
		rc = devid_error_set(e, DEVID_EIO, "PKCS#11 module %s: cannot load it: %s", path,
		    p11_kit_message() != NULL ? p11_kit_message() : "no reason given");
		goto out;
	}
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	if ((rv = m->f->C_Initialize(&args)) != CKR_OK) {
		char what[300];

		module_unload(m);
		snprintf(what, sizeof(what), "PKCS#11 module %s: C_Initialize", path);
		rc = p11_error(e, ckr_code(rv), rv, what);
		goto out;
	}
	m->refs = 1;
	m->next = registry;
	registry = m;
	*out = m;
	m = NULL;
	rc = 0;
out:
	pthread_mutex_unlock(&registry_mu);
	module_free(m);
	return rc;
}

static void
module_put(struct p11_module *m)
{
	struct p11_module **pp;

	if (m == NULL)
		return;
	pthread_mutex_lock(&registry_mu);
	if (--m->refs > 0) {
		pthread_mutex_unlock(&registry_mu);
		return;
	}
	for (pp = &registry; *pp != NULL; pp = &(*pp)->next)
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	m->f->C_Finalize(NULL);
	module_unload(m);
	pthread_mutex_unlock(&registry_mu);
	module_free(m);
}

static void
pin_digest(const char *pin, unsigned char out[32])
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned int n = 32;

	memset(out, 0, 32);
	if (c == NULL)
		return;
	if (EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ||
	    EVP_DigestUpdate(c, pin_salt, sizeof(pin_salt)) != 1 ||
	    EVP_DigestUpdate(c, pin, strlen(pin)) != 1 || EVP_DigestFinal_ex(c, out, &n) != 1)
		memset(out, 0, 32);
	EVP_MD_CTX_free(c);
}

/* ---- keys ------------------------------------------------------------------------------ */

struct p11_key {
	struct p11_module *mod;
	CK_FUNCTION_LIST *f; /* mod->f */
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE priv;
	size_t order_len; /* bytes of the curve order: r and s are each this long */
	EVP_PKEY *pkey;
	char token[33]; /* the token label, for messages */
	char object[65]; /* the object label, printable, for messages */

	pthread_mutex_t mu;
	pthread_cond_t cv;
	CK_SESSION_HANDLE idle[P11_MAX_SESSIONS];
	size_t nidle;
	size_t nopen; /* idle + in use */
};

static pthread_once_t method_once = PTHREAD_ONCE_INIT;
static EC_KEY_METHOD *method;
static int ex_index = -1;

/* A session of k, idle or newly opened (waits when P11_MAX_SESSIONS are in use). */
static CK_RV
session_get(struct p11_key *k, CK_SESSION_HANDLE *s)
{
	CK_RV rv;

	pthread_mutex_lock(&k->mu);
	for (;;) {
		if (k->nidle > 0) {
			*s = k->idle[--k->nidle];
			pthread_mutex_unlock(&k->mu);
			return CKR_OK;
		}
		if (k->nopen < P11_MAX_SESSIONS)
			break;
		pthread_cond_wait(&k->cv, &k->mu);
	}
	k->nopen++;
	pthread_mutex_unlock(&k->mu);
	/* a new session of a token this application is logged in to is logged in too */
	if ((rv = k->f->C_OpenSession(k->slot, CKF_SERIAL_SESSION, NULL, NULL, s)) != CKR_OK) {
		pthread_mutex_lock(&k->mu);
		k->nopen--;
		pthread_cond_signal(&k->cv);
		pthread_mutex_unlock(&k->mu);
	}
	return rv;
}

/* Gives a session back; one the module says is gone (rv) is forgotten instead. */
static void
session_put(struct p11_key *k, CK_SESSION_HANDLE s, CK_RV rv)
{
	bool gone = rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
	    rv == CKR_DEVICE_REMOVED || rv == CKR_TOKEN_NOT_PRESENT;

	pthread_mutex_lock(&k->mu);
	if (gone)
		k->nopen--;
	else
		k->idle[k->nidle++] = s;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
}

/* The sign_sig of the EC_KEY_METHOD: C_Sign(CKM_ECDSA) over the digest, r||s to ECDSA_SIG. */
static ECDSA_SIG *
key_sign_sig(
    const unsigned char *dgst, int dgst_len, const BIGNUM *kinv, const BIGNUM *r, EC_KEY *ec)
{
	struct p11_key *k = EC_KEY_get_ex_data(ec, ex_index);
	CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
	CK_SESSION_HANDLE s;
	CK_BYTE sig[P11_MAX_SIG_LEN];
	CK_ULONG siglen = sizeof(sig);
	CK_ULONG len;
	ECDSA_SIG *out = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	char buf[32];
	CK_RV rv;

	(void)kinv;
	(void)r;
	if (k == NULL || dgst_len < 0) {
		ERR_raise_data(ERR_LIB_USER, ERR_R_PASSED_INVALID_ARGUMENT, "PKCS#11: not a key");
		return NULL;
	}
	/* ECDSA uses the leftmost bits of a longer digest: our curves' orders are whole bytes */
	len = (CK_ULONG)dgst_len;
	if (len > k->order_len)
		len = k->order_len;
	if ((rv = session_get(k, &s)) != CKR_OK) {
		ERR_raise_data(ERR_LIB_USER, ERR_R_OPERATION_FAIL,
		    "PKCS#11 token \"%s\": C_OpenSession: %s", k->token,
		    ckr_name(rv, buf, sizeof(buf)));
		return NULL;
	}
	if ((rv = k->f->C_SignInit(s, &mech, k->priv)) == CKR_OK)
		rv = k->f->C_Sign(s, (CK_BYTE_PTR)dgst, len, sig, &siglen);
	session_put(k, s, rv);
	if (rv != CKR_OK) {
		ERR_raise_data(ERR_LIB_USER, ERR_R_OPERATION_FAIL,
		    "PKCS#11 key \"%s\" in token \"%s\": C_Sign: %s", k->object, k->token,
		    ckr_name(rv, buf, sizeof(buf)));
		return NULL;
	}
	if (siglen != 2 * k->order_len) {
		ERR_raise_data(ERR_LIB_USER, ERR_R_OPERATION_FAIL,
		    "PKCS#11 key \"%s\": C_Sign gave %lu bytes, expected %zu", k->object,
		    (unsigned long)siglen, 2 * k->order_len);
		return NULL;
	}
	if ((out = ECDSA_SIG_new()) == NULL ||
	    (br = BN_bin2bn(sig, (int)k->order_len, NULL)) == NULL ||
	    (bs = BN_bin2bn(sig + k->order_len, (int)k->order_len, NULL)) == NULL ||
	    ECDSA_SIG_set0(out, br, bs) != 1) {
		ECDSA_SIG_free(out);
		BN_free(br);
		BN_free(bs);
		ERR_raise(ERR_LIB_USER, ERR_R_MALLOC_FAILURE);
		return NULL;
	}
	return out;
}

/* No precomputation: the token draws k itself. */
static int
key_sign_setup(EC_KEY *ec, BN_CTX *ctx, BIGNUM **kinv, BIGNUM **r)
{
	(void)ec;
	(void)ctx;
	(void)kinv;
	(void)r;
	ERR_raise_data(ERR_LIB_USER, ERR_R_OPERATION_FAIL, "PKCS#11: the token draws k itself");
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

/* ---- opening ---------------------------------------------------------------------------- */

/* What a URI asks for, parsed. */
struct p11_want {
	P11KitUri *uri;
	char pin[P11_MAX_PIN_LEN + 1];
	bool have_pin;
	CK_ATTRIBUTE *label; /* borrowed from uri, or NULL */
	CK_ATTRIBUTE *id;
};

static void
want_release(struct p11_want *w)
{
	const char *v;

	OPENSSL_cleanse(w->pin, sizeof(w->pin));
	if (w->uri != NULL && (v = p11_kit_uri_get_pin_value(w->uri)) != NULL)
		/* p11-kit keeps its own copy of pin-value and frees it without wiping it */
		OPENSSL_cleanse((char *)v, strlen(v));
	p11_kit_uri_free(w->uri);
	memset(w, 0, sizeof(*w));
}

/* The first line of a pin-source: "file:" URI (file:/p, file:///p, file://localhost/p) or path. */
static int
pin_from_source(const char *src, char pin[P11_MAX_PIN_LEN + 1], struct devid_error *e)
{
	const char *path = src;
	FILE *fp;
	char line[P11_MAX_PIN_LEN + 2];
	size_t n;
	int rc = DEVID_EIO;

	if (strncmp(path, "file:", 5) == 0) {
		path += 5;
		if (strncmp(path, "//", 2) == 0) {
			path += 2;
			if (strncmp(path, "localhost/", 10) == 0)
				path += 9;
			else if (path[0] != '/')
				return devid_error_set(
				    e, DEVID_EINVAL, "pkcs11: URI: pin-source names another host");
		}
	}
	if ((fp = fopen(path, "r")) == NULL)
		return devid_error_set(
		    e, DEVID_EIO, "pkcs11: URI: pin-source %s: %s", path, strerror(errno));
	memset(line, 0, sizeof(line));
	if (fgets(line, sizeof(line), fp) == NULL) {
		rc = devid_error_set(e, DEVID_EINVAL, "pkcs11: URI: pin-source %s is empty", path);
		goto out;
	}
	n = strcspn(line, "\r\n");
	if (n > P11_MAX_PIN_LEN) {
		rc = devid_error_set(e, DEVID_ELIMIT,
		    "pkcs11: URI: pin-source %s: the PIN is longer than %d", path, P11_MAX_PIN_LEN);
		goto out;
	}
	memcpy(pin, line, n);
	pin[n] = '\0';
	rc = 0;
out:
	OPENSSL_cleanse(line, sizeof(line));
	fclose(fp);
	return rc;
}

/* Parses a URI naming an object of class cls (a private key or a secret key). */
static int
want_parse(const char *s, CK_OBJECT_CLASS cls_want, struct p11_want *w, struct devid_error *e)
{
	CK_ATTRIBUTE *cls;
	const char *v;
	int r;

	memset(w, 0, sizeof(*w));
	if (s == NULL)
		return devid_error_set(e, DEVID_EINVAL, "pkcs11: URI: missing");
	if ((w->uri = p11_kit_uri_new()) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "pkcs11: URI: out of memory");
	/* the URI is not quoted: it may carry a PIN */
	if ((r = p11_kit_uri_parse(s, P11_KIT_URI_FOR_ANY, w->uri)) != P11_KIT_URI_OK)
		return devid_error_set(e, DEVID_EINVAL, "pkcs11: URI: not an RFC 7512 URI (%s)",
		    p11_kit_uri_message(r));
	if (p11_kit_uri_any_unrecognized(w->uri))
		return devid_error_set(e, DEVID_EINVAL,
		    "pkcs11: URI: an attribute this module does not understand (RFC 7512 path: "
		    "token, manufacturer, serial, model, slot-id, object, id, type; query: "
		    "module-path, pin-value, pin-source)");
	if ((cls = p11_kit_uri_get_attribute(w->uri, CKA_CLASS)) != NULL &&
	    (cls->ulValueLen != sizeof(CK_OBJECT_CLASS) ||
		*(CK_OBJECT_CLASS *)cls->pValue != cls_want))
		return devid_error_set(e, DEVID_EINVAL, "pkcs11: URI: type must be %s",
		    cls_want == CKO_PRIVATE_KEY ? "\"private\" (a private key)"
						: "\"secret-key\" (an AES key)");
	w->label = p11_kit_uri_get_attribute(w->uri, CKA_LABEL);
	w->id = p11_kit_uri_get_attribute(w->uri, CKA_ID);

	if ((v = p11_kit_uri_get_pin_value(w->uri)) != NULL) {
		if (strlen(v) > P11_MAX_PIN_LEN)
			return devid_error_set(e, DEVID_ELIMIT,
			    "pkcs11: URI: pin-value is longer than %d", P11_MAX_PIN_LEN);
		memcpy(w->pin, v, strlen(v) + 1);
		w->have_pin = true;
	} else if ((v = p11_kit_uri_get_pin_source(w->uri)) != NULL) {
		if ((r = pin_from_source(v, w->pin, e)) != 0)
			return r;
		w->have_pin = true;
	} else if ((v = getenv("DEVID_PKCS11_PIN")) != NULL) {
		if (strlen(v) > P11_MAX_PIN_LEN)
			return devid_error_set(e, DEVID_ELIMIT,
			    "pkcs11: DEVID_PKCS11_PIN is longer than %d", P11_MAX_PIN_LEN);
		memcpy(w->pin, v, strlen(v) + 1);
		w->have_pin = true;
	}
	return 0;
}

/* A label of a token or object for messages: printable ASCII, trailing blanks cut. */
static void
printable(const unsigned char *p, size_t len, char *out, size_t outsz)
{
	size_t n = 0;

	while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\0'))
		len--;
	for (size_t i = 0; i < len && n + 1 < outsz; i++)
		out[n++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
	out[n] = '\0';
}

/* The one token the URI names, among the initialized tokens of k's module. */
static int
slot_find(struct p11_key *k, struct p11_want *w, struct devid_error *e)
{
	CK_SLOT_ID slots[P11_MAX_SLOTS];
	CK_ULONG n = P11_MAX_SLOTS;
	CK_TOKEN_INFO ti;
	CK_SLOT_INFO si;
	CK_SLOT_ID want_slot = p11_kit_uri_get_slot_id(w->uri);
	char seen[200] = "", lbl[33];
	size_t matches = 0;
	CK_RV rv;

	if ((rv = k->f->C_GetSlotList(CK_TRUE, slots, &n)) != CKR_OK) {
		if (rv == CKR_BUFFER_TOO_SMALL)
			return devid_error_set(
			    e, DEVID_ELIMIT, "PKCS#11: more than %d tokens", P11_MAX_SLOTS);
		return p11_error(e, ckr_code(rv), rv, "PKCS#11: C_GetSlotList");
	}
	for (CK_ULONG i = 0; i < n; i++) {
		if (k->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
		    (ti.flags & CKF_TOKEN_INITIALIZED) == 0)
			continue;
		printable(ti.label, sizeof(ti.label), lbl, sizeof(lbl));
		if (strlen(seen) + strlen(lbl) + 4 < sizeof(seen))
			snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "%s\"%s\"",
			    seen[0] != '\0' ? ", " : "", lbl);
		if (want_slot != (CK_SLOT_ID)-1 && want_slot != slots[i])
			continue;
		if (k->f->C_GetSlotInfo(slots[i], &si) == CKR_OK &&
		    !p11_kit_uri_match_slot_info(w->uri, &si))
			continue;
		if (!p11_kit_uri_match_token_info(w->uri, &ti))
			continue;
		if (matches++ == 0) {
			k->slot = slots[i];
			memcpy(k->token, lbl, sizeof(lbl));
		}
	}
	if (matches == 0)
		return devid_error_set(e, DEVID_ENOTFOUND,
		    "PKCS#11: no token matches the URI (tokens present: %s)",
		    seen[0] != '\0' ? seen : "none");
	if (matches > 1)
		return devid_error_set(e, DEVID_EINVAL,
		    "PKCS#11: the URI matches %zu tokens (%s): name one with token=", matches,
		    seen);
	return 0;
}

/* Logs in to k's token with w's PIN, once per token and process (see the module's logins). */
static int
login(struct p11_key *k, CK_SESSION_HANDLE s, struct p11_want *w, struct devid_error *e)
{
	struct p11_module *m = k->mod;
	struct p11_login *l = NULL, *nl;
	CK_SESSION_INFO info;
	unsigned char d[32];
	char what[128];
	CK_RV rv;
	int rc = DEVID_EAUTH;

	if (!w->have_pin)
		return 0;
	pin_digest(w->pin, d);
	pthread_mutex_lock(&m->mu);
	for (size_t i = 0; i < m->nlogins; i++)
		if (m->logins[i].slot == k->slot)
			l = &m->logins[i];
	if ((rv = k->f->C_GetSessionInfo(s, &info)) != CKR_OK) {
		rc = p11_error(e, ckr_code(rv), rv, "PKCS#11: C_GetSessionInfo");
		goto out;
	}
	if (info.state == CKS_RO_USER_FUNCTIONS || info.state == CKS_RW_USER_FUNCTIONS) {
		/* logins are per application: another key of ours logged in already */
		if (l != NULL && CRYPTO_memcmp(l->pin_digest, d, sizeof(d)) != 0) {
			rc = devid_error_set(e, DEVID_EAUTH,
			    "PKCS#11 token \"%s\": already logged in by this process with another "
			    "PIN",
			    k->token);
			goto out;
		}
		rc = 0;
		goto out;
	}
	rv = k->f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)w->pin, strlen(w->pin));
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		snprintf(what, sizeof(what), "PKCS#11 token \"%s\": login", k->token);
		rc = p11_error(e, ckr_code(rv), rv, what);
		goto out;
	}
	if (l == NULL) {
		if ((nl = realloc(m->logins, (m->nlogins + 1) * sizeof(*nl))) == NULL) {
			rc = devid_error_set(e, DEVID_ENOMEM, "PKCS#11: out of memory");
			goto out;
		}
		m->logins = nl;
		l = &m->logins[m->nlogins++];
		l->slot = k->slot;
	}
	memcpy(l->pin_digest, d, sizeof(d));
	rc = 0;
out:
	pthread_mutex_unlock(&m->mu);
	OPENSSL_cleanse(d, sizeof(d));
	return rc;
}

/*
 * A new key on the token the URI names: module loaded, token chosen, one session open (kept
 * for the key's life, so the login stays) and logged in. The objects are found later.
 */
static int
key_begin(struct p11_want *w, struct p11_key **out, struct devid_error *e)
{
	struct p11_key *k = NULL;
	const char *path;
	CK_SESSION_HANDLE s;
	CK_RV rv;
	int rc = DEVID_EINTERNAL;

	*out = NULL;
	pthread_once(&method_once, method_init);
	if (method == NULL)
		return devid_error_ssl(e, DEVID_EINTERNAL, "PKCS#11: no EC_KEY_METHOD");
	if ((k = calloc(1, sizeof(*k))) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "PKCS#11: out of memory");
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cv, NULL);
	if ((path = p11_kit_uri_get_module_path(w->uri)) == NULL &&
	    ((path = getenv("DEVID_PKCS11_MODULE")) == NULL || path[0] == '\0'))
		path = DEVID_P11_PROXY_MODULE;
	if ((rc = module_get(path, &k->mod, e)) != 0)
		goto out;
	k->f = k->mod->f;
	if ((rc = slot_find(k, w, e)) != 0)
		goto out;
	if ((rv = k->f->C_OpenSession(k->slot, CKF_SERIAL_SESSION, NULL, NULL, &s)) != CKR_OK) {
		char what[128];

		snprintf(what, sizeof(what), "PKCS#11 token \"%s\": C_OpenSession", k->token);
		rc = p11_error(e, ckr_code(rv), rv, what);
		goto out;
	}
	k->idle[k->nidle++] = s;
	k->nopen = 1;
	if ((rc = login(k, s, w, e)) != 0)
		goto out;
	*out = k;
	k = NULL;
	rc = 0;
out:
	p11_key_free(k);
	return rc;
}

/*
 * Reads one attribute of obj into buf (at most max bytes); *len is its length. Absent or
 * unreadable attributes are the rv of the call.
 */
static CK_RV
attr_get(struct p11_key *k, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
    void *buf, CK_ULONG max, CK_ULONG *len)
{
	CK_ATTRIBUTE a = {type, NULL, 0};
	CK_RV rv;

	if ((rv = k->f->C_GetAttributeValue(s, obj, &a, 1)) != CKR_OK)
		return rv;
	if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
		return CKR_ATTRIBUTE_TYPE_INVALID;
	if (a.ulValueLen > max)
		return CKR_BUFFER_TOO_SMALL;
	a.pValue = buf;
	if ((rv = k->f->C_GetAttributeValue(s, obj, &a, 1)) != CKR_OK)
		return rv;
	*len = a.ulValueLen;
	return CKR_OK;
}

/* Up to max objects matching tmpl; *n is how many were found (at most max). */
static CK_RV
objects_find(struct p11_key *k, CK_SESSION_HANDLE s, CK_ATTRIBUTE *tmpl, CK_ULONG ntmpl,
    CK_OBJECT_HANDLE *objs, CK_ULONG max, CK_ULONG *n)
{
	CK_RV rv;

	*n = 0;
	if ((rv = k->f->C_FindObjectsInit(s, tmpl, ntmpl)) != CKR_OK)
		return rv;
	rv = k->f->C_FindObjects(s, objs, max, n);
	k->f->C_FindObjectsFinal(s);
	return rv;
}

/* The EC point of an attribute: a DER OCTET STRING around it (PKCS#11), or the bare point. */
static EC_POINT *
point_decode(const EC_GROUP *g, const unsigned char *p, size_t len)
{
	const unsigned char *q = p;
	ASN1_OCTET_STRING *os;
	EC_POINT *pt;

	if ((pt = EC_POINT_new(g)) == NULL)
		return NULL;
	if ((os = d2i_ASN1_OCTET_STRING(NULL, &q, (long)len)) != NULL && q == p + len) {
		int ok = EC_POINT_oct2point(g, pt, os->data, (size_t)os->length, NULL);

		ASN1_OCTET_STRING_free(os);
		if (ok == 1)
			return pt;
	} else {
		ASN1_OCTET_STRING_free(os);
	}
	ERR_clear_error();
	if (EC_POINT_oct2point(g, pt, p, len, NULL) == 1)
		return pt;
	EC_POINT_free(pt);
	return NULL;
}

/* The curve of a CKA_EC_PARAMS value: a named curve, P-256 or P-384. */
static EC_GROUP *
group_decode(const unsigned char *p, size_t len)
{
	const unsigned char *q = p;
	ASN1_OBJECT *oid;
	int nid;

	if ((oid = d2i_ASN1_OBJECT(NULL, &q, (long)len)) == NULL || q != p + len) {
		ASN1_OBJECT_free(oid);
		return NULL;
	}
	nid = OBJ_obj2nid(oid);
	ASN1_OBJECT_free(oid);
	if (nid != NID_X9_62_prime256v1 && nid != NID_secp384r1)
		return NULL;
	return EC_GROUP_new_by_curve_name(nid);
}

/* The private key object of the template, exactly one; and its label for messages. */
static int
priv_find(struct p11_key *k, CK_SESSION_HANDLE s, const struct p11_want *w, CK_ATTRIBUTE *label,
    CK_ATTRIBUTE *id, struct devid_error *e)
{
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_ATTRIBUTE tmpl[3] = {{CKA_CLASS, &cls, sizeof(cls)}};
	CK_ULONG nt = 1, n;
	CK_OBJECT_HANDLE objs[P11_MAX_MATCHES];
	CK_KEY_TYPE kt;
	CK_BBOOL always = CK_FALSE;
	CK_ULONG len;
	unsigned char lbl[64];
	CK_RV rv;

	if (label != NULL)
		tmpl[nt++] = *label;
	if (id != NULL)
		tmpl[nt++] = *id;
	if (label != NULL)
		printable(label->pValue, label->ulValueLen, k->object, sizeof(k->object));
	if ((rv = objects_find(k, s, tmpl, nt, objs, P11_MAX_MATCHES, &n)) != CKR_OK)
		return p11_error(e, ckr_code(rv), rv, "PKCS#11: C_FindObjects");
	if (n == 0)
		return devid_error_set(e, DEVID_ENOTFOUND,
		    "PKCS#11 token \"%s\": no private key matches the URI%s", k->token,
		    w->have_pin ? ""
				: " (no PIN was given: private keys are visible only after login)");
	if (n > 1)
		return devid_error_set(e, DEVID_EINVAL,
		    "PKCS#11 token \"%s\": the URI matches %s%lu keys: name one with object= or "
		    "id=",
		    k->token, n == P11_MAX_MATCHES ? "at least " : "", (unsigned long)n);
	k->priv = objs[0];
	if (label == NULL && attr_get(k, s, k->priv, CKA_LABEL, lbl, sizeof(lbl), &len) == CKR_OK)
		printable(lbl, len, k->object, sizeof(k->object));
	if ((rv = attr_get(k, s, k->priv, CKA_KEY_TYPE, &kt, sizeof(kt), &len)) != CKR_OK)
		return p11_error(e, ckr_code(rv), rv, "PKCS#11: CKA_KEY_TYPE");
	if (kt != CKK_EC)
		return devid_error_set(e, DEVID_EINVAL,
		    "PKCS#11 key \"%s\" in token \"%s\": not an EC key (only EC P-256 and P-384)",
		    k->object, k->token);
	if (attr_get(k, s, k->priv, CKA_ALWAYS_AUTHENTICATE, &always, sizeof(always), &len) ==
		CKR_OK &&
	    always == CK_TRUE)
		return devid_error_set(e, DEVID_EINVAL,
		    "PKCS#11 key \"%s\": keys that need the PIN for every signature "
		    "(CKA_ALWAYS_AUTHENTICATE) are not supported",
		    k->object);
	return 0;
}

/*
 * The public half: CKA_EC_PARAMS of the private key (or its public key), CKA_EC_POINT of the
 * public key object with the same CKA_ID, or of the private key when the module offers it.
 */
static int
pub_read(struct p11_key *k, CK_SESSION_HANDLE s, struct devid_error *e)
{
	CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
	unsigned char id[256], params[P11_MAX_ATTR_LEN], point[P11_MAX_ATTR_LEN];
	CK_ULONG idlen = 0, plen = 0, ptlen = 0, n = 0;
	CK_ATTRIBUTE tmpl[2] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_ID, id, 0}};
	CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE;
	EC_GROUP *g = NULL;
	EC_POINT *pt = NULL;
	EC_KEY *ec = NULL;
	int rc = DEVID_ENOTFOUND;

	if (attr_get(k, s, k->priv, CKA_ID, id, sizeof(id), &idlen) == CKR_OK && idlen > 0) {
		tmpl[1].ulValueLen = idlen;
		if (objects_find(k, s, tmpl, 2, &pub, 1, &n) != CKR_OK || n == 0)
			pub = CK_INVALID_HANDLE;
	}
	if (attr_get(k, s, k->priv, CKA_EC_PARAMS, params, sizeof(params), &plen) != CKR_OK &&
	    (pub == CK_INVALID_HANDLE ||
		attr_get(k, s, pub, CKA_EC_PARAMS, params, sizeof(params), &plen) != CKR_OK)) {
		rc = devid_error_set(e, DEVID_ENOTFOUND,
		    "PKCS#11 key \"%s\" in token \"%s\": no CKA_EC_PARAMS", k->object, k->token);
		goto out;
	}
	if ((g = group_decode(params, plen)) == NULL) {
		rc = devid_error_set(e, DEVID_EINVAL,
		    "PKCS#11 key \"%s\" in token \"%s\": not on P-256 or P-384", k->object,
		    k->token);
		goto out;
	}
	if ((pub == CK_INVALID_HANDLE ||
		attr_get(k, s, pub, CKA_EC_POINT, point, sizeof(point), &ptlen) != CKR_OK) &&
	    attr_get(k, s, k->priv, CKA_EC_POINT, point, sizeof(point), &ptlen) != CKR_OK) {
		rc = devid_error_set(e, DEVID_ENOTFOUND,
		    "PKCS#11 key \"%s\" in token \"%s\": no public key (no public key object with "
		    "its CKA_ID, no CKA_EC_POINT)",
		    k->object, k->token);
		goto out;
	}
	if ((pt = point_decode(g, point, ptlen)) == NULL) {
		rc = devid_error_set(e, DEVID_EINVAL,
		    "PKCS#11 key \"%s\" in token \"%s\": CKA_EC_POINT is not a point of its curve",
		    k->object, k->token);
		goto out;
	}
	k->order_len = (size_t)(EC_GROUP_order_bits(g) + 7) / 8;
	ERR_clear_error();
	/*
	 * The method goes on before EVP_PKEY_assign: OpenSSL 3 then marks the key "foreign" and
	 * keeps it on the legacy path instead of exporting it to its default provider.
	 */
	if ((ec = EC_KEY_new()) == NULL || EC_KEY_set_method(ec, method) != 1 ||
	    EC_KEY_set_group(ec, g) != 1 || EC_KEY_set_public_key(ec, pt) != 1 ||
	    EC_KEY_set_ex_data(ec, ex_index, k) != 1 || (k->pkey = EVP_PKEY_new()) == NULL ||
	    EVP_PKEY_assign_EC_KEY(k->pkey, ec) != 1) {
		rc = devid_error_ssl(e, DEVID_EINTERNAL, "PKCS#11 key \"%s\": EC_KEY", k->object);
		goto out;
	}
	ec = NULL;
	rc = 0;
out:
	EC_KEY_free(ec);
	EC_POINT_free(pt);
	EC_GROUP_free(g);
	return rc;
}

/* Finds the key of the template in k's token and makes its EVP_PKEY. */
static int
key_finish(struct p11_key *k, const struct p11_want *w, CK_ATTRIBUTE *label, CK_ATTRIBUTE *id,
    struct devid_error *e)
{
	CK_SESSION_HANDLE s;
	CK_RV rv;
	int rc;

	if ((rv = session_get(k, &s)) != CKR_OK)
		return p11_error(e, ckr_code(rv), rv, "PKCS#11: C_OpenSession");
	if ((rc = priv_find(k, s, w, label, id, e)) == 0)
		rc = pub_read(k, s, e);
	session_put(k, s, CKR_OK);
	return rc;
}

int
p11_key_open(const char *uri, struct p11_key **out, struct devid_error *e)
{
	struct p11_want w;
	struct p11_key *k = NULL;
	int rc;

	*out = NULL;
	if ((rc = want_parse(uri, CKO_PRIVATE_KEY, &w, e)) != 0)
		goto out;
	if ((rc = key_begin(&w, &k, e)) != 0)
		goto out;
	if ((rc = key_finish(k, &w, w.label, w.id, e)) != 0)
		goto out;
	*out = k;
	k = NULL;
	rc = 0;
out:
	want_release(&w);
	p11_key_free(k);
	return rc;
}

/* A key being made in a token, from gen_begin to gen_end; it must not move in memory. */
struct p11_gen {
	struct p11_want w;
	struct p11_key *k; /* the token's, logged in; NULL before gen_begin gets it */
	CK_SESSION_HANDLE s; /* read-write, or CK_INVALID_HANDLE */
	CK_ATTRIBUTE label; /* borrowed from w */
	CK_ATTRIBUTE id; /* borrowed from w, or rid */
	CK_BYTE rid[P11_GENERATED_ID_LEN];
};

/*
 * The start of making a new key of class cls (kind names it in messages: "private",
 * "secret"): the URI's label, which must be given and unused in the token, its id or a
 * random one, the token logged in with a PIN, and a read-write session. gen_end releases g
 * whatever this returns.
 */
static int
gen_begin(struct p11_gen *g, const char *uri, CK_OBJECT_CLASS cls, const char *kind,
    struct devid_error *e)
{
	CK_OBJECT_HANDLE found;
	CK_ULONG n;
	char what[160];
	CK_RV rv;
	int rc;

	memset(g, 0, sizeof(*g));
	g->s = CK_INVALID_HANDLE;
	if ((rc = want_parse(uri, cls, &g->w, e)) != 0)
		return rc;
	if (g->w.label == NULL || g->w.label->ulValueLen == 0)
		return devid_error_set(
		    e, DEVID_EINVAL, "pkcs11: URI: a new key needs a label (object=)");
	g->label = *g->w.label;
	if (g->w.id != NULL && g->w.id->ulValueLen > 0) {
		g->id = *g->w.id;
	} else {
		if (RAND_bytes(g->rid, sizeof(g->rid)) != 1)
			return devid_error_ssl(e, DEVID_EINTERNAL, "PKCS#11: no random bytes");
		g->id = (CK_ATTRIBUTE){CKA_ID, g->rid, sizeof(g->rid)};
	}
	if ((rc = key_begin(&g->w, &g->k, e)) != 0)
		return rc;
	printable(g->label.pValue, g->label.ulValueLen, g->k->object, sizeof(g->k->object));
	if (!g->w.have_pin)
		return devid_error_set(e, DEVID_EAUTH,
		    "PKCS#11 token \"%s\": a new %s key needs a login: no PIN was given",
		    g->k->token, kind);
	rv = g->k->f->C_OpenSession(
	    g->k->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &g->s);
	if (rv != CKR_OK) {
		g->s = CK_INVALID_HANDLE;
		snprintf(what, sizeof(what), "PKCS#11 token \"%s\": C_OpenSession (read-write)",
		    g->k->token);
		return p11_error(e, ckr_code(rv), rv, what);
	}
	/* any key object with the label: private, public or secret */
	if ((rv = objects_find(g->k, g->s, &g->label, 1, &found, 1, &n)) != CKR_OK)
		return p11_error(e, ckr_code(rv), rv, "PKCS#11: C_FindObjects");
	if (n > 0)
		return devid_error_set(e, DEVID_ECONFLICT,
		    "PKCS#11 token \"%s\": an object labelled \"%s\" exists already", g->k->token,
		    g->k->object);
	return 0;
}

/* Closes g's read-write session once the key is made: the pool's session keeps the login. */
static void
gen_session_close(struct p11_gen *g)
{
	if (g->s != CK_INVALID_HANDLE)
		g->k->f->C_CloseSession(g->s);
	g->s = CK_INVALID_HANDLE;
}

/* Releases what gen_begin took; g->k too, unless the caller took it and set it to NULL. */
static void
gen_end(struct p11_gen *g)
{
	gen_session_close(g);
	want_release(&g->w);
	p11_key_free(g->k);
	g->k = NULL;
}

int
p11_key_generate(const char *uri, struct p11_key **out, struct devid_error *e)
{
	/* DER of the OID 1.2.840.10045.3.1.7, prime256v1 */
	static const CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
	struct p11_gen g;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_MECHANISM mech = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
	CK_OBJECT_HANDLE pub, priv;
	char what[160];
	CK_RV rv;
	int rc;

	*out = NULL;
	if ((rc = gen_begin(&g, uri, CKO_PRIVATE_KEY, "private", e)) != 0)
		goto out;
	{
		CK_ATTRIBUTE pubt[] = {
		    {CKA_EC_PARAMS, (void *)p256, sizeof(p256)},
		    {CKA_TOKEN, &yes, sizeof(yes)},
		    {CKA_VERIFY, &yes, sizeof(yes)},
		    {CKA_ENCRYPT, &no, sizeof(no)},
		    {CKA_WRAP, &no, sizeof(no)},
		    {CKA_DERIVE, &no, sizeof(no)},
		    g.label,
		    g.id,
		};
		CK_ATTRIBUTE privt[] = {
		    {CKA_TOKEN, &yes, sizeof(yes)},
		    {CKA_PRIVATE, &yes, sizeof(yes)},
		    {CKA_SENSITIVE, &yes, sizeof(yes)},
		    {CKA_EXTRACTABLE, &no, sizeof(no)},
		    {CKA_SIGN, &yes, sizeof(yes)},
		    {CKA_DERIVE, &no, sizeof(no)},
		    {CKA_DECRYPT, &no, sizeof(no)},
		    {CKA_UNWRAP, &no, sizeof(no)},
		    g.label,
		    g.id,
		};

		rv = g.k->f->C_GenerateKeyPair(g.s, &mech, pubt, sizeof(pubt) / sizeof(pubt[0]),
		    privt, sizeof(privt) / sizeof(privt[0]), &pub, &priv);
		if (rv != CKR_OK) {
			snprintf(what, sizeof(what),
			    "PKCS#11 token \"%s\": C_GenerateKeyPair (EC P-256) of \"%s\"",
			    g.k->token, g.k->object);
			rc = p11_error(e, ckr_code(rv), rv, what);
			goto out;
		}
	}
	gen_session_close(&g);
	if ((rc = key_finish(g.k, &g.w, &g.label, &g.id, e)) != 0)
		goto out;
	*out = g.k;
	g.k = NULL;
	rc = 0;
out:
	gen_end(&g);
	return rc;
}

EVP_PKEY *
p11_key_get0_pkey(struct p11_key *k)
{
	return k->pkey;
}

int
p11_key_flags(struct p11_key *k, bool *sensitive, bool *extractable, struct devid_error *e)
{
	CK_BBOOL sens = CK_FALSE, extr = CK_TRUE;
	CK_ATTRIBUTE a[2] = {
	    {CKA_SENSITIVE, &sens, sizeof(sens)},
	    {CKA_EXTRACTABLE, &extr, sizeof(extr)},
	};
	CK_SESSION_HANDLE s;
	char what[160];
	CK_RV rv;

	*sensitive = false;
	*extractable = true;
	if ((rv = session_get(k, &s)) != CKR_OK)
		return p11_error(e, ckr_code(rv), rv, "PKCS#11: C_OpenSession");
	rv = k->f->C_GetAttributeValue(s, k->priv, a, 2);
	session_put(k, s, rv);
	if (rv != CKR_OK) {
		snprintf(what, sizeof(what),
		    "PKCS#11 key \"%s\" in token \"%s\": CKA_SENSITIVE, CKA_EXTRACTABLE", k->object,
		    k->token);
		return p11_error(e, ckr_code(rv), rv, what);
	}
	*sensitive = sens == CK_TRUE;
	*extractable = extr == CK_TRUE;
	return 0;
}

void
p11_key_free(struct p11_key *k)
{
	if (k == NULL)
		return;
	/* the EC_KEY points at k: it goes first */
	EVP_PKEY_free(k->pkey);
	if (k->f != NULL)
		for (size_t i = 0; i < k->nidle; i++)
			k->f->C_CloseSession(k->idle[i]);
	module_put(k->mod);
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->mu);
	free(k);
}

/* ---- AES secret keys (connector secrets at rest) -------------------------------------- */

/* The AES-256 secret key the URI names in k's token: exactly one. */
static int
secret_find(struct p11_key *k, const struct p11_want *w, struct devid_error *e)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_ATTRIBUTE tmpl[3] = {{CKA_CLASS, &cls, sizeof(cls)}};
	CK_OBJECT_HANDLE objs[P11_MAX_MATCHES];
	CK_ULONG nt = 1, n, len, vlen = 0;
	CK_KEY_TYPE kt;
	CK_SESSION_HANDLE s;
	CK_RV rv;
	int rc;

	if (w->label != NULL) {
		tmpl[nt++] = *w->label;
		printable(w->label->pValue, w->label->ulValueLen, k->object, sizeof(k->object));
	}
	if (w->id != NULL)
		tmpl[nt++] = *w->id;
	if ((rv = session_get(k, &s)) != CKR_OK)
		return p11_error(e, ckr_code(rv), rv, "PKCS#11: C_OpenSession");
	if ((rv = objects_find(k, s, tmpl, nt, objs, P11_MAX_MATCHES, &n)) != CKR_OK) {
		rc = p11_error(e, ckr_code(rv), rv, "PKCS#11: C_FindObjects");
		goto out;
	}
	if (n != 1) {
		rc = devid_error_set(e, n == 0 ? DEVID_ENOTFOUND : DEVID_EINVAL,
		    "PKCS#11 token \"%s\": %s secret key matches the URI%s", k->token,
		    n == 0 ? "no" : "more than one",
		    n == 0 && !w->have_pin ? " (no PIN was given)" : "");
		goto out;
	}
	k->priv = objs[0];
	if ((rv = attr_get(k, s, k->priv, CKA_KEY_TYPE, &kt, sizeof(kt), &len)) != CKR_OK ||
	    kt != CKK_AES ||
	    attr_get(k, s, k->priv, CKA_VALUE_LEN, &vlen, sizeof(vlen), &len) != CKR_OK ||
	    vlen != 32) {
		rc = devid_error_set(e, DEVID_EINVAL,
		    "PKCS#11 key \"%s\" in token \"%s\": not an AES-256 key", k->object, k->token);
		goto out;
	}
	rc = 0;
out:
	session_put(k, s, CKR_OK);
	return rc;
}

int
p11_secret_open(const char *uri, struct p11_key **out, struct devid_error *e)
{
	struct p11_want w;
	struct p11_key *k = NULL;
	int rc;

	*out = NULL;
	if ((rc = want_parse(uri, CKO_SECRET_KEY, &w, e)) != 0 ||
	    (rc = key_begin(&w, &k, e)) != 0 || (rc = secret_find(k, &w, e)) != 0)
		goto out;
	*out = k;
	k = NULL;
out:
	want_release(&w);
	p11_key_free(k);
	return rc;
}

int
p11_secret_generate(const char *uri, struct p11_key **out, struct devid_error *e)
{
	struct p11_gen g;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ULONG vlen = 32;
	CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};
	CK_OBJECT_HANDLE obj;
	char what[160];
	CK_RV rv;
	int rc;

	*out = NULL;
	if ((rc = gen_begin(&g, uri, CKO_SECRET_KEY, "secret", e)) != 0)
		goto out;
	{
		CK_ATTRIBUTE t[] = {
		    {CKA_TOKEN, &yes, sizeof(yes)},
		    {CKA_PRIVATE, &yes, sizeof(yes)},
		    {CKA_SENSITIVE, &yes, sizeof(yes)},
		    {CKA_EXTRACTABLE, &no, sizeof(no)},
		    {CKA_ENCRYPT, &yes, sizeof(yes)},
		    {CKA_DECRYPT, &yes, sizeof(yes)},
		    {CKA_WRAP, &no, sizeof(no)},
		    {CKA_UNWRAP, &no, sizeof(no)},
		    {CKA_SIGN, &no, sizeof(no)},
		    {CKA_DERIVE, &no, sizeof(no)},
		    {CKA_VALUE_LEN, &vlen, sizeof(vlen)},
		    g.label,
		    g.id,
		};

		rv = g.k->f->C_GenerateKey(g.s, &mech, t, sizeof(t) / sizeof(t[0]), &obj);
		if (rv != CKR_OK) {
			snprintf(what, sizeof(what),
			    "PKCS#11 token \"%s\": C_GenerateKey (AES-256) of \"%s\"", g.k->token,
			    g.k->object);
			rc = p11_error(e, ckr_code(rv), rv, what);
			goto out;
		}
	}
	gen_session_close(&g);
	if ((rc = secret_find(g.k, &g.w, e)) != 0)
		goto out;
	*out = g.k;
	g.k = NULL;
out:
	gen_end(&g);
	return rc;
}

int
p11_aes_gcm(struct p11_key *k, bool encrypt, const unsigned char nonce[12],
    const unsigned char *aad, size_t aadlen, const unsigned char *in, size_t n, unsigned char *out,
    unsigned char tag[16], struct devid_error *e)
{
	unsigned char iv[12], dummy = 0;
	CK_GCM_PARAMS gcm = {iv, sizeof(iv), 8 * sizeof(iv), (unsigned char *)aad, aadlen, 128};
	CK_MECHANISM mech = {CKM_AES_GCM, &gcm, sizeof(gcm)};
	CK_SESSION_HANDLE s;
	unsigned char *buf = NULL, *src;
	CK_ULONG outlen = n + 16;
	char what[160];
	CK_RV rv;
	int rc = DEVID_ECRYPTO;

	memcpy(iv, nonce, sizeof(iv));
	if (aadlen == 0)
		gcm.aad_ptr = &dummy;
	if ((buf = malloc(n + 16)) == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "PKCS#11: out of memory");
	if ((rv = session_get(k, &s)) != CKR_OK) {
		free(buf);
		return p11_error(e, ckr_code(rv), rv, "PKCS#11: C_OpenSession");
	}
	if (encrypt) {
		src = n > 0 ? (unsigned char *)in : &dummy;
		if ((rv = k->f->C_EncryptInit(s, &mech, k->priv)) == CKR_OK)
			rv = k->f->C_Encrypt(s, src, n, buf, &outlen);
		if (rv == CKR_OK && outlen == n + 16) {
			if (n > 0)
				memcpy(out, buf, n);
			memcpy(tag, buf + n, 16);
			rc = 0;
		}
	} else {
		if (n > 0)
			memcpy(buf, in, n);
		memcpy(buf + n, tag, 16);
		outlen = n + 16;
		if ((rv = k->f->C_DecryptInit(s, &mech, k->priv)) == CKR_OK)
			rv = k->f->C_Decrypt(s, buf, n + 16, n > 0 ? out : &dummy, &outlen);
		if (rv == CKR_OK && outlen == n)
			rc = 0;
	}
	session_put(k, s, rv);
	OPENSSL_cleanse(buf, n + 16);
	free(buf);
	if (rc != 0) {
		snprintf(what, sizeof(what), "PKCS#11 key \"%s\" in token \"%s\": AES-GCM %s",
		    k->object, k->token, encrypt ? "C_Encrypt" : "C_Decrypt");
		if (rv == CKR_OK)
			return devid_error_set(e, DEVID_ECRYPTO, "%s: unexpected length", what);
		return p11_error(e, DEVID_ECRYPTO, rv, what);
	}
	return 0;
}
