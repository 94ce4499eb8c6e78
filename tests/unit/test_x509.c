/* SPDX-License-Identifier: Apache-2.0 */
/*
 * x509_spki_check_uncompressed: one key, one UDID. The same P-256 or P-384 key written with
 * its point compressed (02/03) or hybrid (06/07) hashes to another UDID, so only the
 * uncompressed form (04) is taken; so are refused a BIT STRING with unused bits, explicit
 * curve parameters, other curves and other key types. Every refusal names RFC 5480's rule.
 * x509_subject_udid: a subject names a UDID only by exactly one CN of 64 lowercase hex digits.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/x509.h"
#include "test.h"
#include "lib/banned.h"

/* The SubjectPublicKeyInfo of key with its point written in form, decoded again. */
static X509_PUBKEY *
spki_in_form(EVP_PKEY *key, const char *form, uint8_t *first)
{
	EVP_PKEY *k = EVP_PKEY_dup(key);
	unsigned char *der = NULL;
	const unsigned char *q;
	X509_PUBKEY *pk = NULL;
	const unsigned char *pt;
	int n, ptlen;

	if (k == NULL ||
	    EVP_PKEY_set_utf8_string_param(k, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, form) !=
		1 ||
	    (n = i2d_PUBKEY(k, &der)) <= 0) {
		printf("cannot encode a key in %s form\n", form);
		exit(1);
	}
	q = der;
	pk = d2i_X509_PUBKEY(NULL, &q, n);
	if (pk == NULL || X509_PUBKEY_get0_param(NULL, &pt, &ptlen, NULL, pk) != 1 || ptlen < 1) {
		printf("the %s SPKI does not decode\n", form);
		exit(1);
	}
	*first = pt[0];
	OPENSSL_free(der);
	EVP_PKEY_free(k);
	return pk;
}

static void
expect(const char *what, const X509_PUBKEY *pk, const char *want)
{
	struct devid_error e;
	int rc;

	devid_error_clear(&e);
	rc = x509_spki_check_uncompressed(pk, &e);
	if (want == NULL) {
		CHECK(rc == 0, "%s: accepted (%s)", what, e.msg);
		return;
	}
	CHECK(rc == DEVID_EINVAL, "%s: refused (rc %d)", what, rc);
	CHECK(strstr(e.msg, want) != NULL, "%s: \"%s\" lacks \"%s\"", what, e.msg, want);
}

/* Every form of keys of one curve, until both parities of y were seen. */
static void
forms(const char *curve)
{
	bool seen[2] = {false, false};
	char what[96], want[96];
	uint8_t first;

	for (int i = 0; i < 64 && !(seen[0] && seen[1]); i++) {
		EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
		char u1[UDID_HEX_LEN + 1], u2[UDID_HEX_LEN + 1];
		X509_PUBKEY *pk;
		EVP_PKEY *k;

		if (key == NULL) {
			printf("keygen %s failed\n", curve);
			exit(1);
		}
		pk = spki_in_form(key, "uncompressed", &first);
		snprintf(what, sizeof(what), "%s uncompressed", curve);
		CHECK(first == 0x04, "%s: form byte %02x", what, first);
		expect(what, pk, NULL);
		X509_PUBKEY_free(pk);

		pk = spki_in_form(key, "compressed", &first);
		if (!seen[first & 1]) {
			seen[first & 1] = true;
			snprintf(what, sizeof(what), "%s compressed %02x", curve, first);
			snprintf(want, sizeof(want),
			    "EC point must be uncompressed (RFC 5480 2.2): compressed form %02x",
			    first);
			expect(what, pk, want);
			/* why: the same key, another UDID */
			k = X509_PUBKEY_get(pk);
			CHECK(
			    pkey_udid(key, u1) == 0 && pkey_udid(k, u2) == 0 && strcmp(u1, u2) != 0,
			    "%s: the compressed SPKI hashes to another UDID", what);
			EVP_PKEY_free(k);
			X509_PUBKEY_free(pk);
			pk = spki_in_form(key, "hybrid", &first);
			snprintf(what, sizeof(what), "%s hybrid %02x", curve, first);
			snprintf(want, sizeof(want),
			    "EC point must be uncompressed (RFC 5480 2.2 forbids the hybrid form): "
			    "hybrid form %02x",
			    first);
			CHECK(first == 0x06 || first == 0x07, "%s: hybrid form byte", what);
			expect(what, pk, want);
		}
		X509_PUBKEY_free(pk);
		EVP_PKEY_free(key);
	}
	CHECK(seen[0] && seen[1], "%s: both parities of y seen", curve);
}

/*
 * A P-256 SPKI whose BIT STRING says 1 unused bit (the point's last byte is even, so the
 * decoded key is unchanged): the same key, another encoding.
 */
static void
unused_bits(void)
{
	unsigned char *der = NULL;
	const unsigned char *q;
	X509_PUBKEY *pk;
	int n = 0;

	for (int i = 0; i < 64; i++) {
		EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

		OPENSSL_free(der);
		der = NULL;
		n = i2d_PUBKEY(key, &der);
		EVP_PKEY_free(key);
		if (n == 91 && (der[90] & 1) == 0)
			break;
	}
	CHECK(n == 91 && der[24] == 0x42 && der[25] == 0x00 && (der[90] & 1) == 0,
	    "an uncompressed P-256 SPKI ending in an even byte");
	der[25] = 0x01;
	q = der;
	pk = d2i_X509_PUBKEY(NULL, &q, n);
	CHECK(pk != NULL, "the SPKI with an unused bit decodes");
	if (pk != NULL)
		expect("BIT STRING with an unused bit", pk, "unused bits");
	X509_PUBKEY_free(pk);
	OPENSSL_free(der);
}

static void
other_keys(void)
{
	EVP_PKEY *p521 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-521");
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	X509_PUBKEY *pk = NULL;

	CHECK(X509_PUBKEY_set(&pk, p521) == 1, "P-521 SPKI");
	expect("P-521", pk, "secp521r1");
	X509_PUBKEY_free(pk);
	pk = NULL;
	CHECK(X509_PUBKEY_set(&pk, rsa) == 1, "RSA SPKI");
	expect("RSA", pk, "not an EC key");
	X509_PUBKEY_free(pk);
	pk = NULL;
	CHECK(X509_PUBKEY_set(&pk, ed) == 1, "Ed25519 SPKI");
	expect("Ed25519", pk, "not an EC key");
	X509_PUBKEY_free(pk);
	expect("no key", NULL, "no public key");
	EVP_PKEY_free(p521);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ed);
}

/* P-256 by explicit parameters, from the openssl command line (skipped without it) */
static void
explicit_parameters(void)
{
	static const char cmd[] =
	    "openssl ecparam -genkey -name prime256v1 -param_enc explicit -noout 2>/dev/null | "
	    "openssl ec -pubout -outform DER 2>/dev/null";
	unsigned char buf[1024];
	const unsigned char *q = buf;
	X509_PUBKEY *pk;
	size_t n;
	FILE *f;

	if (system("command -v openssl >/dev/null 2>&1") != 0 || (f = popen(cmd, "r")) == NULL) {
		printf("# openssl not installed: explicit parameters skipped\n");
		return;
	}
	n = fread(buf, 1, sizeof(buf), f);
	pclose(f);
	pk = d2i_X509_PUBKEY(NULL, &q, (long)n);
	CHECK(pk != NULL, "explicit-parameter SPKI from openssl decodes (%zu bytes)", n);
	if (pk != NULL)
		expect("explicit parameters", pk, "named by its OID");
	X509_PUBKEY_free(pk);
}

/* A certificate (unsigned: only its subject is read) with the subject's entries (nid, text). */
static X509 *
with_subject(const int *nids, const char *const *texts, size_t n)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();

	for (size_t i = 0; i < n; i++) {
		if (X509_NAME_add_entry_by_NID(name, nids[i], MBSTRING_ASC,
			(const unsigned char *)texts[i], -1, -1, 0) != 1) {
			printf("cannot build a subject\n");
			exit(1);
		}
	}
	if (x == NULL || X509_set_subject_name(x, name) != 1) {
		printf("cannot build a certificate\n");
		exit(1);
	}
	X509_NAME_free(name);
	return x;
}

static void
subject_udid(void)
{
	const char *u = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	const char *upper = "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef";
	const int cn_o[] = {NID_commonName, NID_organizationName},
		  cn2[] = {NID_commonName, NID_commonName}, o[] = {NID_organizationName};
	const char *const good[] = {u, "OEM1"}, *const two[] = {u, u},
			  *const bad[] = {upper, "OEM1"}, *const short_cn[] = {"0123abcd", "OEM1"},
			  *const only_o[] = {"OEM1"};
	char out[UDID_HEX_LEN + 1];
	X509 *x;

	x = with_subject(cn_o, good, 2);
	CHECK(x509_subject_udid(x, out) && strcmp(out, u) == 0, "CN=<udid>, O=OEM1 names the UDID");
	X509_free(x);
	x = with_subject(cn_o, bad, 2);
	CHECK(!x509_subject_udid(x, out), "an upper-case CN is no UDID");
	X509_free(x);
	x = with_subject(cn_o, short_cn, 2);
	CHECK(!x509_subject_udid(x, out), "a short hex CN is no UDID");
	X509_free(x);
	x = with_subject(cn2, two, 2);
	CHECK(!x509_subject_udid(x, out), "two CNs name no UDID");
	X509_free(x);
	x = with_subject(o, only_o, 1);
	CHECK(!x509_subject_udid(x, out), "no CN names no UDID");
	X509_free(x);
}

int
main(void)
{
	forms("P-256");
	forms("P-384");
	unused_bits();
	other_keys();
	explicit_parameters();
	subject_udid();
	return test_done();
}
