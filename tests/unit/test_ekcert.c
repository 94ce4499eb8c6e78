/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TCG EK profile checker (ekcert.h) and path building through cross-certificates
 * (x509_path.h), over certificates made here with OpenSSL: RSA 2048, P-256 and P-384 EKs
 * issued by an EK CA that a TPM vendor's root signs and a public root cross-signs.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "lib/ekcert.h"
#include "lib/x509.h"
#include "lib/x509_path.h"
#include "test.h"
#include "lib/banned.h"

#define DAY 86400L

static void
die(const char *what)
{
	printf("setup failed: %s\n", what);
	exit(1);
}

static EVP_PKEY *
key_new(const char *type)
{
	EVP_PKEY *k;

	if (strcmp(type, "RSA2048") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	else if (strcmp(type, "RSA3072") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", type);
	if (k == NULL)
		die(type);
	return k;
}

static X509_NAME *
name_cn(const char *cn)
{
	X509_NAME *n = X509_NAME_new();

	if (n == NULL ||
	    (cn != NULL &&
		X509_NAME_add_entry_by_txt(
		    n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) != 1))
		die("name");
	return n;
}

/* An unsigned certificate of subject cn (NULL: empty) and key, issued by issuer (NULL: itself). */
static X509 *
cert_new(const char *cn, EVP_PKEY *key, X509 *issuer, long from, long to)
{
	X509 *x = X509_new();
	X509_NAME *n = name_cn(cn);
	X509V3_CTX ctx;

	if (x == NULL || X509_set_version(x, X509_VERSION_3) != 1 || x509_set_random_serial(x) ||
	    X509_set_subject_name(x, n) != 1 ||
	    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n) != 1 ||
	    X509_time_adj_ex(X509_getm_notBefore(x), 0, from, NULL) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), 0, to, NULL) == NULL ||
	    X509_set_pubkey(x, key) != 1)
		die("certificate");
	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	if (x509_add_ext(x, &ctx, NID_subject_key_identifier, "hash") ||
	    x509_add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always"))
		die("key identifiers");
	X509_NAME_free(n);
	return x;
}

static void
cert_sign(X509 *x, EVP_PKEY *ikey)
{
	if (X509_sign(x, ikey, EVP_sha256()) <= 0)
		die("sign");
	X509_check_purpose(x, -1, 0);
}

static X509 *
ca_new(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, long from, long to)
{
	X509 *x = cert_new(cn, key, issuer, from, to);
	X509V3_CTX ctx;

	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	if (x509_add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE") ||
	    x509_add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"))
		die("CA extensions");
	cert_sign(x, ikey ? ikey : key);
	return x;
}

/* What an EK certificate variant leaves out or changes. */
enum ek_flaw {
	EK_GOOD,
	EK_NO_EKU,
	EK_OTHER_EKU,
	EK_WRONG_KU,
	EK_NO_SAN,
	EK_SAN_NOT_CRITICAL,
	EK_SAN_NO_MODEL,
	EK_CA,
};

static void
add_san(X509 *x, bool crit, bool model)
{
	GENERAL_NAMES *gens = GENERAL_NAMES_new();
	GENERAL_NAME *g = GENERAL_NAME_new();
	X509_NAME *dn = X509_NAME_new();

	if (gens == NULL || g == NULL || dn == NULL ||
	    X509_NAME_add_entry_by_txt(dn, "2.23.133.2.1", MBSTRING_UTF8,
		(const unsigned char *)"id:49465800", -1, -1, 0) != 1 ||
	    (model &&
		X509_NAME_add_entry_by_txt(dn, "2.23.133.2.2", MBSTRING_UTF8,
		    (const unsigned char *)"SLB9672", -1, -1, 0) != 1) ||
	    X509_NAME_add_entry_by_txt(dn, "2.23.133.2.3", MBSTRING_UTF8,
		(const unsigned char *)"id:00100300", -1, -1, 0) != 1)
		die("SAN");
	GENERAL_NAME_set0_value(g, GEN_DIRNAME, dn);
	if (!sk_GENERAL_NAME_push(gens, g) ||
	    X509_add1_ext_i2d(x, NID_subject_alt_name, gens, crit, X509V3_ADD_DEFAULT) != 1)
		die("SAN extension");
	GENERAL_NAMES_free(gens);
}

static X509 *
ek_new(EVP_PKEY *key, bool rsa, X509 *ca, EVP_PKEY *cakey, enum ek_flaw flaw)
{
	X509 *x = cert_new(NULL, key, ca, -DAY, 3650 * DAY);
	X509V3_CTX ctx;
	const char *ku = rsa ? "critical,keyEncipherment" : "critical,keyAgreement";

	X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
	if (flaw == EK_WRONG_KU)
		ku = "critical,digitalSignature";
	if (x509_add_ext(x, &ctx, NID_basic_constraints,
		flaw == EK_CA ? "critical,CA:TRUE" : "critical,CA:FALSE") ||
	    x509_add_ext(x, &ctx, NID_key_usage, ku) ||
	    (flaw != EK_NO_EKU &&
		x509_add_ext(x, &ctx, NID_ext_key_usage,
		    flaw == EK_OTHER_EKU ? "clientAuth" : EKCERT_EKU_OID)))
		die("EK extensions");
	if (flaw != EK_NO_SAN)
		add_san(x, flaw != EK_SAN_NOT_CRITICAL, flaw != EK_SAN_NO_MODEL);
	cert_sign(x, cakey);
	return x;
}

struct pki {
	EVP_PKEY *vroot_key, *proot_key, *ekca_key;
	X509 *vroot, *proot, *ekca, *cross, *cross_expired;
};

static void
pki_make(struct pki *p)
{
	p->vroot_key = key_new("P-384");
	p->proot_key = key_new("P-384");
	p->ekca_key = key_new("P-256");
	p->vroot = ca_new("TPM Vendor Root", p->vroot_key, NULL, NULL, -DAY, 7300 * DAY);
	p->proot = ca_new("Public Root", p->proot_key, NULL, NULL, -DAY, 7300 * DAY);
	p->ekca = ca_new("TPM Vendor EK CA", p->ekca_key, p->vroot, p->vroot_key, -DAY, 3650 * DAY);
	p->cross =
	    ca_new("TPM Vendor EK CA", p->ekca_key, p->proot, p->proot_key, -DAY, 3650 * DAY);
	p->cross_expired =
	    ca_new("TPM Vendor EK CA", p->ekca_key, p->proot, p->proot_key, -730 * DAY, -365 * DAY);
}

static void
pki_free(struct pki *p)
{
	EVP_PKEY_free(p->vroot_key);
	EVP_PKEY_free(p->proot_key);
	EVP_PKEY_free(p->ekca_key);
	X509_free(p->vroot);
	X509_free(p->proot);
	X509_free(p->ekca);
	X509_free(p->cross);
	X509_free(p->cross_expired);
}

/* x decoded again from its DER, as devid reads certificates. */
static X509 *
reread(X509 *x)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	X509 *y;

	if (n <= 0)
		die("DER");
	y = x509_from_der(der, (size_t)n, "test", NULL);
	OPENSSL_free(der);
	if (y == NULL)
		die("x509_from_der");
	return y;
}

static void
expect_profile(const char *what, X509 *x, const char *want)
{
	struct ekcert_info info;
	struct devid_error e;
	X509 *y = reread(x);
	int rc;

	devid_error_clear(&e);
	rc = ekcert_check(y, &info, &e);
	if (want == NULL) {
		CHECK(rc == 0, "%s: accepted (%s)", what, e.msg);
		CHECK(rc != 0 ||
			(strcmp(info.manufacturer, "id:49465800") == 0 &&
			    strcmp(info.model, "SLB9672") == 0 &&
			    strcmp(info.version, "id:00100300") == 0),
		    "%s: TPM attributes read back", what);
	} else {
		CHECK(rc == DEVID_EINVAL, "%s: refused (rc %d)", what, rc);
		CHECK(strstr(e.msg, want) != NULL, "%s: \"%s\" lacks \"%s\"", what, e.msg, want);
	}
	X509_free(y);
}

static void
test_profile(struct pki *p)
{
	static const struct {
		const char *type;
		bool rsa;
		enum ekcert_key key;
	} keys[] = {
	    {"RSA2048", true, EKCERT_RSA2048},
	    {"P-256", false, EKCERT_P256},
	    {"P-384", false, EKCERT_P384},
	};
	static const struct {
		enum ek_flaw flaw;
		const char *want;
	} flaws[] = {
	    {EK_NO_EKU,
		"TCG EK profile: extendedKeyUsage missing: tcg-kp-EKCertificate "
		"(2.23.133.8.1) required"},
	    {EK_OTHER_EKU, "extendedKeyUsage lacks tcg-kp-EKCertificate (2.23.133.8.1)"},
	    {EK_WRONG_KU, "TCG EK profile: keyUsage of an"},
	    {EK_NO_SAN, "TCG EK profile: subjectAltName missing"},
	    {EK_SAN_NOT_CRITICAL,
		"RFC 5280 4.2.1.6: subjectAltName must be critical when the subject is empty"},
	    {EK_SAN_NO_MODEL, "directoryName lacks tpmModel (2.23.133.2.2)"},
	    {EK_CA, "RFC 5280 4.2.1.9: CA bit set"},
	};
	char what[96];

	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		EVP_PKEY *key = key_new(keys[k].type);
		X509 *x = ek_new(key, keys[k].rsa, p->ekca, p->ekca_key, EK_GOOD);
		struct ekcert_info info;

		snprintf(what, sizeof(what), "%s EK", keys[k].type);
		expect_profile(what, x, NULL);
		CHECK(ekcert_check(x, &info, NULL) == 0 && info.key == keys[k].key,
		    "%s: key type %s", what, ekcert_key_name(keys[k].key));
		X509_free(x);
		for (size_t f = 0; f < sizeof(flaws) / sizeof(flaws[0]); f++) {
			x = ek_new(key, keys[k].rsa, p->ekca, p->ekca_key, flaws[f].flaw);
			snprintf(
			    what, sizeof(what), "%s EK, flaw %d", keys[k].type, (int)flaws[f].flaw);
			expect_profile(what, x, flaws[f].want);
			X509_free(x);
		}
		EVP_PKEY_free(key);
	}
	{
		EVP_PKEY *key = key_new("RSA3072");
		X509 *x = ek_new(key, true, p->ekca, p->ekca_key, EK_GOOD);

		expect_profile("RSA 3072 EK", x,
		    "TCG EK profile: the EK must be RSA 2048, ECC P-256 or ECC P-384: RSA 3072");
		X509_free(x);
		EVP_PKEY_free(key);
	}
	{
		EVP_PKEY *key = key_new("RSA2048");
		X509 *x = ek_new(key, false, p->ekca, p->ekca_key, EK_GOOD);

		expect_profile("RSA EK with keyAgreement only", x,
		    "keyUsage of an RSA EK lacks keyEncipherment");
		X509_free(x);
		EVP_PKEY_free(key);
	}
	{
		EVP_PKEY *key = key_new("P-256");
		X509 *x = ek_new(key, true, p->ekca, p->ekca_key, EK_GOOD);

		expect_profile("ECC EK with keyEncipherment only", x,
		    "keyUsage of an ECC EK lacks keyAgreement");
		X509_free(x);
		EVP_PKEY_free(key);
	}
	{
		EVP_PKEY *key = key_new("secp521r1");
		X509 *x = ek_new(key, false, p->ekca, p->ekca_key, EK_GOOD);

		expect_profile("P-521 EK", x, "the key is on curve secp521r1");
		X509_free(x);
		EVP_PKEY_free(key);
	}
}

static STACK_OF(X509) *
stack_of(X509 *a, X509 *b)
{
	STACK_OF(X509) *sk = sk_X509_new_null();

	if (sk == NULL || (a != NULL && !sk_X509_push(sk, a)) ||
	    (b != NULL && !sk_X509_push(sk, b)))
		die("stack");
	return sk;
}

static int
verify(X509 *root, X509 *leaf, X509 *u1, X509 *u2, bool paths, struct devid_error *e)
{
	struct x509_verify_opts o = {.purpose = X509_PURPOSE_ANY};
	STACK_OF(X509) *roots = stack_of(root, NULL), *untrusted = stack_of(u1, u2);
	X509_STORE *st = x509_store_new(roots, NULL);
	int rc;

	if (st == NULL)
		die("store");
	devid_error_clear(e);
	rc = paths ? x509_path_verify(st, leaf, untrusted, &o, e)
		   : x509_chain_verify(st, leaf, untrusted, &o, e);
	X509_STORE_free(st);
	sk_X509_free(roots);
	sk_X509_free(untrusted);
	return rc;
}

static void
test_paths(struct pki *p)
{
	EVP_PKEY *key = key_new("RSA2048");
	X509 *ek = ek_new(key, true, p->ekca, p->ekca_key, EK_GOOD);
	struct devid_error e;

	/* the case: both EK CA certificates offered, the vendor's first, only the
	 * public root trusted: OpenSSL 3.0 takes the first candidate and stops */
	CHECK(verify(p->proot, ek, p->ekca, p->cross, false, &e) == DEVID_ECRYPTO,
	    "OpenSSL alone finds no path from the vendor's EK CA to the public root");
	CHECK(strstr(e.msg, "unable to get local issuer certificate") != NULL,
	    "OpenSSL's reason: %s", e.msg);
	CHECK(verify(p->proot, ek, p->ekca, p->cross, true, &e) == 0,
	    "devid's path finder reaches the public root through the cross-certificate: %s", e.msg);
	/* the other order, and the other root */
	CHECK(verify(p->proot, ek, p->cross, p->ekca, true, &e) == 0,
	    "cross-certificate first, public root: %s", e.msg);
	CHECK(verify(p->vroot, ek, p->cross, p->ekca, false, &e) == DEVID_ECRYPTO,
	    "OpenSSL alone finds no path from the cross-certificate to the vendor root");
	CHECK(verify(p->vroot, ek, p->cross, p->ekca, true, &e) == 0,
	    "vendor root trusted, cross-certificate first: %s", e.msg);
	CHECK(verify(p->vroot, ek, p->ekca, NULL, true, &e) == 0, "vendor root, its EK CA: %s",
	    e.msg);
	CHECK(verify(p->proot, ek, p->cross, NULL, true, &e) == 0,
	    "public root, the cross-certificate: %s", e.msg);
	/* an expired cross-certificate as the only path to the public root */
	CHECK(verify(p->proot, ek, p->ekca, p->cross_expired, true, &e) == DEVID_ECRYPTO,
	    "an expired cross-certificate as the only path is refused");
	CHECK(strstr(e.msg, "depth 1") != NULL && strstr(e.msg, "expired") != NULL,
	    "the refusal names the expired cross-certificate: %s", e.msg);
	CHECK(verify(p->proot, ek, p->cross_expired, NULL, true, &e) == DEVID_ECRYPTO &&
		strstr(e.msg, "expired") != NULL,
	    "the expired cross-certificate alone: %s", e.msg);
	/* and a path that reaches no trusted root at all */
	CHECK(verify(p->proot, ek, p->ekca, NULL, true, &e) == DEVID_ECRYPTO &&
		strstr(e.msg, "unable to get local issuer certificate") != NULL,
	    "the vendor's EK CA alone does not reach the public root: %s", e.msg);
	X509_free(ek);
	EVP_PKEY_free(key);
}

int
main(void)
{
	struct pki p;

	pki_make(&p);
	test_profile(&p);
	test_paths(&p);
	pki_free(&p);
	return test_done();
}
