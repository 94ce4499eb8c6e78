/* SPDX-License-Identifier: Apache-2.0 */
/*
 * csr_from_est_body: the CSR intake of EST. Good requests made by OpenSSL here and by the
 * openssl command line, in base64 with and without line breaks; and every refusal: a broken
 * signature, trailing bytes, BER, the wrong key or curve or algorithm, a point written
 * compressed or hybrid (one key, one UDID), bad base64, empty, over the cap.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "lib/base64.h"
#include "lib/csr.h"
#include "lib/dynbuf.h"
#include "lib/limits.h"
#include "lib/x509.h"
#include "test.h"
#include "lib/banned.h"

/*
 * A request from `openssl req -subj /CN=x` whose CN string was then given a long-form length
 * (0c 81 01 78), every enclosing length fixed up: BER inside the subject name, which d2i
 * keeps as received. Refused as not DER (not as a bad signature).
 */
static const char ber_in_name[] = "MIHGMG8CAQAwDTELMAkGA1UEAwyBAXgwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNC"
				  "AAQop0QvZErPYLVJUvQ7avsSniDHgr92uoX0psObsoBHBStVCd/1R8CfXcmL5d0J"
				  "YV+mLdhRh3y4kiub391w0Yy5oAAwCgYIKoZIzj0EAwIDRwAwRAIgF6bZJuU5VZDJ"
				  "s49x3sRJxt98U5mi4ZtOR0Kuwn97ALwCICfwHJKKEyA84fbcgwYDgnhjli5xuBvC"
				  "Fr5v1EUomm9s";

static EVP_PKEY *
key_ec(const char *curve)
{
	return EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
}

/* A copy of key whose encodings write the point in form ("compressed", "hybrid"). */
static EVP_PKEY *
key_in_form(EVP_PKEY *key, const char *form)
{
	EVP_PKEY *k = EVP_PKEY_dup(key);

	if (k == NULL ||
	    EVP_PKEY_set_utf8_string_param(k, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, form) !=
		1) {
		fprintf(stderr, "test_csr: cannot write a key in %s form\n", form);
		exit(1);
	}
	return k;
}

/* A DER request for key, signed with md; version as given. */
static uint8_t *
make_csr(EVP_PKEY *key, const EVP_MD *md, long version, size_t *len)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_REQ_get_subject_name(req);
	unsigned char *der = NULL;
	int n;

	/* three RDNs, the middle one multi-valued: O=acme+OU=line (set -1: the RDN before) */
	X509_NAME_add_entry_by_txt(
	    name, "CN", MBSTRING_ASC, (const unsigned char *)"dev", -1, -1, 0);
	X509_NAME_add_entry_by_txt(
	    name, "O", MBSTRING_ASC, (const unsigned char *)"acme", -1, -1, 0);
	X509_NAME_add_entry_by_txt(
	    name, "OU", MBSTRING_UTF8, (const unsigned char *)"line", -1, -1, -1);
	X509_NAME_add_entry_by_txt(
	    name, "serialNumber", MBSTRING_ASC, (const unsigned char *)"0123", -1, -1, 0);
	X509_REQ_set_version(req, version);
	X509_REQ_set_pubkey(req, key);
	if (X509_REQ_sign(req, key, md) <= 0) {
		fprintf(stderr, "test_csr: X509_REQ_sign failed\n");
		exit(1);
	}
	n = i2d_X509_REQ(req, &der);
	X509_REQ_free(req);
	*len = (size_t)n;
	return der;
}

/* base64 of p, with sep after every `width` characters (width 0: one line). */
static char *
b64_lines(const uint8_t *p, size_t n, size_t width, const char *sep)
{
	char *flat = b64_encode(p, n);
	struct dynbuf b;
	size_t len = strlen(flat);

	dynbuf_init(&b, (size_t)1 << 20);
	for (size_t i = 0; i < len; i += width != 0 ? width : len) {
		size_t k = width != 0 && len - i > width ? width : len - i;

		dynbuf_add(&b, flat + i, k);
		if (width != 0)
			dynbuf_addstr(&b, sep);
	}
	free(flat);
	return (char *)dynbuf_detach(&b, &len);
}

static int
intake(const char *body, size_t len, struct devid_error *e)
{
	X509_REQ *req = NULL;
	int rc;

	devid_error_clear(e);
	rc = csr_from_est_body((const uint8_t *)body, len, NULL, &req, e);
	if (rc == 0 && req == NULL)
		rc = 99;
	if (rc != 0 && req != NULL)
		rc = 98;
	X509_REQ_free(req);
	return rc;
}

static void
expect(const char *what, const char *body, size_t len, int want, const char *msg_part)
{
	struct devid_error e;
	int rc = intake(body, len, &e);

	CHECK(rc == want, "%s: rc %d, want %d (%s)", what, rc, want, e.msg);
	if (msg_part != NULL)
		CHECK(strstr(e.msg, msg_part) != NULL, "%s: message \"%s\" lacks \"%s\"", what,
		    e.msg, msg_part);
	if (want != 0)
		CHECK(e.msg[0] != '\0', "%s: a refusal without a reason", what);
}

static void
expect_der(const char *what, const uint8_t *der, size_t n, int want, const char *msg_part)
{
	char *s = b64_lines(der, n, 64, "\n");

	expect(what, s, strlen(s), want, msg_part);
	free(s);
}

/* The good forms of one request. */
static void
good_forms(const char *what, const uint8_t *der, size_t n)
{
	char name[128], *s;

	s = b64_lines(der, n, 0, "");
	snprintf(name, sizeof(name), "%s, one line", what);
	expect(name, s, strlen(s), 0, NULL);
	free(s);
	s = b64_lines(der, n, 64, "\n");
	snprintf(name, sizeof(name), "%s, LF every 64", what);
	expect(name, s, strlen(s), 0, NULL);
	free(s);
	s = b64_lines(der, n, 76, "\r\n");
	snprintf(name, sizeof(name), "%s, CRLF every 76", what);
	expect(name, s, strlen(s), 0, NULL);
	free(s);
	s = b64_lines(der, n, 3, " \t");
	snprintf(name, sizeof(name), "%s, spaces and tabs everywhere", what);
	expect(name, s, strlen(s), 0, NULL);
	free(s);
}

/* Runs cmd through sh and returns its stdout (NULL when it failed). */
static char *
run(const char *cmd)
{
	FILE *f = popen(cmd, "r");
	struct dynbuf b;
	char buf[4096];
	size_t n, len;

	if (f == NULL)
		return NULL;
	dynbuf_init(&b, (size_t)1 << 20);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		dynbuf_add(&b, buf, n);
	if (pclose(f) != 0) {
		dynbuf_release(&b);
		return NULL;
	}
	return (char *)dynbuf_detach(&b, &len);
}

/* A certificate holding key (unsigned: a holder is only a key here, as EST's TLS proved it). */
static X509 *
holder_of(EVP_PKEY *key)
{
	X509 *x = X509_new();

	if (x == NULL || X509_set_pubkey(x, key) != 1) {
		fprintf(stderr, "test_csr: cannot make a holder\n");
		exit(1);
	}
	return x;
}

/*
 * The holder's key checks the request without decoding the request's copy; a holder of
 * another key changes nothing but that the copy is decoded; a bad signature stays bad.
 */
static void
holders(EVP_PKEY *key, EVP_PKEY *other)
{
	X509 *mine = holder_of(key), *theirs = holder_of(other);
	struct devid_error e;
	X509_REQ *req = NULL;
	uint8_t *der, *bad;
	size_t n;
	int rc;

	der = make_csr(key, EVP_sha256(), 0, &n);
	devid_error_clear(&e);
	rc = csr_from_der(der, n, mine, &req, &e);
	CHECK(rc == 0 && req != NULL, "holder of the key: accepted (%s)", e.msg);
	CHECK(req == NULL || X509_REQ_get0_pubkey(req) == NULL,
	    "holder of the key: the request's copy of the key is not decoded");
	CHECK(req == NULL ||
		x509_spki_same(X509_REQ_get_X509_PUBKEY(req), X509_get_X509_PUBKEY(mine)),
	    "holder of the key: the same SubjectPublicKeyInfo");
	X509_REQ_free(req);
	req = NULL;
	rc = csr_from_der(der, n, theirs, &req, &e);
	CHECK(rc == 0 && req != NULL && X509_REQ_get0_pubkey(req) != NULL,
	    "holder of another key: accepted, the key decoded (%s)", e.msg);
	CHECK(req == NULL ||
		!x509_spki_same(X509_REQ_get_X509_PUBKEY(req), X509_get_X509_PUBKEY(theirs)),
	    "holder of another key: another SubjectPublicKeyInfo");
	X509_REQ_free(req);
	req = NULL;
	bad = malloc(n);
	memcpy(bad, der, n);
	bad[n - 1] ^= 0x01;
	devid_error_clear(&e);
	rc = csr_from_der(bad, n, mine, &req, &e);
	CHECK(rc == DEVID_ECRYPTO && req == NULL && strstr(e.msg, "does not verify") != NULL,
	    "holder of the key, flipped signature byte: refused (rc %d, %s)", rc, e.msg);
	free(bad);
	OPENSSL_free(der);
	X509_free(mine);
	X509_free(theirs);
}

static void
openssl_cli(void)
{
	char dir[256], cmd[1024], *out;

	if (system("command -v openssl >/dev/null 2>&1 && command -v base64 >/dev/null 2>&1") !=
	    0) {
		printf("# openssl or base64 not installed: command-line CSRs skipped\n");
		return;
	}
	test_tmpdir(dir, sizeof(dir), "csr");
	/* base64(1) wraps at 76 columns with LF */
	snprintf(cmd, sizeof(cmd),
	    "cd %s && openssl ecparam -genkey -name prime256v1 -noout -out k.pem 2>/dev/null && "
	    "openssl req -new -key k.pem -subj /CN=x -outform DER 2>/dev/null | base64",
	    dir);
	out = run(cmd);
	CHECK(out != NULL && strchr(out, '\n') != NULL, "openssl req | base64 ran");
	if (out != NULL)
		expect("openssl req P-256 | base64", out, strlen(out), 0, NULL);
	free(out);
	snprintf(cmd, sizeof(cmd),
	    "cd %s && openssl ecparam -genkey -name secp384r1 -noout -out k384.pem 2>/dev/null && "
	    "openssl req -new -key k384.pem -sha384 -subj /CN=x -outform DER 2>/dev/null | "
	    "base64 -w0",
	    dir);
	out = run(cmd);
	CHECK(out != NULL, "openssl req P-384 ran");
	if (out != NULL)
		expect("openssl req P-384 | base64 -w0", out, strlen(out), 0, NULL);
	free(out);
	/* a subject of several RDNs, one multi-valued, as the command line writes it */
	snprintf(cmd, sizeof(cmd),
	    "cd %s && openssl req -new -key k.pem -multivalue-rdn "
	    "-subj '/CN=726f9e/O=OEM1+OU=x/serialNumber=0123' -outform DER 2>/dev/null | base64",
	    dir);
	out = run(cmd);
	CHECK(out != NULL, "openssl req with several RDNs ran");
	if (out != NULL)
		expect("openssl req, several RDNs", out, strlen(out), 0, NULL);
	free(out);
	/* the same curve, given by explicit parameters: refused */
	snprintf(cmd, sizeof(cmd),
	    "cd %s && openssl ecparam -genkey -name prime256v1 -param_enc explicit -noout "
	    "-out kx.pem 2>/dev/null && "
	    "openssl req -new -key kx.pem -subj /CN=x -outform DER 2>/dev/null | base64",
	    dir);
	out = run(cmd);
	if (out != NULL && out[0] != '\0')
		expect("explicit curve parameters", out, strlen(out), DEVID_EINVAL, "named");
	else
		printf("# this openssl cannot sign with explicit parameters: case skipped\n");
	free(out);
	/* the same key with its point compressed, as `openssl ec -conv_form` writes it */
	snprintf(cmd, sizeof(cmd),
	    "cd %s && openssl ec -in k.pem -conv_form compressed -out kc.pem 2>/dev/null && "
	    "openssl req -new -key kc.pem -subj /CN=x -outform DER 2>/dev/null | base64",
	    dir);
	out = run(cmd);
	CHECK(out != NULL, "openssl req with a compressed point ran");
	if (out != NULL)
		expect("openssl req, compressed point", out, strlen(out), DEVID_EINVAL,
		    "EC point must be uncompressed (RFC 5480 2.2): compressed form 0");
	free(out);
	/* PEM is not what EST sends */
	snprintf(
	    cmd, sizeof(cmd), "cd %s && openssl req -new -key k.pem -subj /CN=x 2>/dev/null", dir);
	out = run(cmd);
	if (out != NULL)
		expect("PEM armour", out, strlen(out), DEVID_EINVAL, "offset 0");
	free(out);
	test_rmdir(dir);
}

int
main(void)
{
	EVP_PKEY *p256 = key_ec("P-256"), *p384 = key_ec("P-384"), *p521 = key_ec("P-521");
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	uint8_t *der, *bad;
	size_t n, m;
	char *s;

	if (p256 == NULL || p384 == NULL || p521 == NULL || rsa == NULL) {
		fprintf(stderr, "test_csr: key generation failed\n");
		return 1;
	}

	/* good: P-256 with SHA-256, P-384 with SHA-384 and with SHA-256 */
	der = make_csr(p256, EVP_sha256(), 0, &n);
	good_forms("P-256/SHA-256", der, n);
	holders(p256, p384);

	/* a flipped bit in the signature's last byte: the proof of possession fails */
	bad = malloc(n + 1);
	memcpy(bad, der, n);
	bad[n - 1] ^= 0x01;
	expect_der(
	    "flipped signature byte", bad, n, DEVID_ECRYPTO, "CSR signature does not verify");
	/* a flipped byte in the signed part (the subject's "dev"), the same */
	memcpy(bad, der, n);
	for (size_t i = 0; i + 3 <= n; i++)
		if (memcmp(bad + i, "dev", 3) == 0)
			bad[i] = 'D';
	expect_der("changed subject", bad, n, DEVID_ECRYPTO, "does not verify");
	/* trailing bytes after the request */
	memcpy(bad, der, n);
	bad[n] = 0;
	expect_der("trailing byte", bad, n + 1, DEVID_EINVAL, "after the request");
	free(bad);
	/* BER: the outer length in a longer form than needed */
	CHECK(der[0] == 0x30 && der[1] == 0x81, "P-256 CSR has a one-byte long-form length");
	bad = malloc(n + 1);
	bad[0] = 0x30;
	bad[1] = 0x82;
	bad[2] = 0x00;
	memcpy(bad + 3, der + 2, n - 2);
	expect_der("non-minimal length", bad, n + 1, DEVID_EINVAL, "DER");
	free(bad);
	expect("BER inside the subject name", ber_in_name, strlen(ber_in_name), DEVID_EINVAL,
	    "not DER");
	/* base64 without padding, and a stray '=' */
	s = b64_lines(der, n, 0, "");
	m = strlen(s);
	if (s[m - 1] == '=') {
		expect("unpadded", s, m - (s[m - 2] == '=' ? 2 : 1), DEVID_EINVAL, "padding");
	}
	s[10] = '=';
	expect("'=' inside", s, m, DEVID_EINVAL, "base64");
	/* not base64 at all: the offset is named */
	s[10] = 'A';
	s[7] = '*';
	expect("'*' at offset 7", s, m, DEVID_EINVAL, "offset 7");
	s[7] = '\0';
	expect("NUL at offset 7", s, m, DEVID_EINVAL, "offset 7");
	free(s);
	OPENSSL_free(der);

	der = make_csr(p384, EVP_sha384(), 0, &n);
	good_forms("P-384/SHA-384", der, n);
	OPENSSL_free(der);
	der = make_csr(p384, EVP_sha256(), 0, &n);
	good_forms("P-384/SHA-256", der, n);
	OPENSSL_free(der);

	/* refused keys and algorithms */
	der = make_csr(rsa, EVP_sha256(), 0, &n);
	expect_der("RSA key", der, n, DEVID_EINVAL, "not an EC key");
	OPENSSL_free(der);
	der = make_csr(p521, EVP_sha384(), 0, &n);
	expect_der("P-521 key", der, n, DEVID_EINVAL, "secp521r1");
	OPENSSL_free(der);
	der = make_csr(p256, EVP_sha512(), 0, &n);
	expect_der("ecdsa-with-SHA512", der, n, DEVID_EINVAL, "signature algorithm");
	OPENSSL_free(der);
	der = make_csr(p256, EVP_sha256(), 1, &n);
	expect_der("version 1", der, n, DEVID_EINVAL, "version");
	OPENSSL_free(der);

	/*
	 * One key, one UDID: the certificate carries the request's SubjectPublicKeyInfo, so the
	 * device's key written with its point compressed or hybrid (a valid self-signature all
	 * the same) would be a certificate whose UDID is no device's.
	 */
	{
		static const char *const forms[] = {"compressed", "hybrid"};
		static const char *const wants[] = {
		    "CSR: EC point must be uncompressed (RFC 5480 2.2): compressed form 0",
		    "CSR: EC point must be uncompressed (RFC 5480 2.2 forbids the hybrid form): "
		    "hybrid form 0"};
		EVP_PKEY *keys[] = {p256, p384};
		char what[64];

		for (size_t k = 0; k < 2; k++)
			for (size_t f = 0; f < 2; f++) {
				EVP_PKEY *kf = key_in_form(keys[k], forms[f]);

				der = make_csr(kf, k == 0 ? EVP_sha256() : EVP_sha384(), 0, &n);
				snprintf(what, sizeof(what), "%s key, %s point",
				    k == 0 ? "P-256" : "P-384", forms[f]);
				expect_der(what, der, n, DEVID_EINVAL, wants[f]);
				OPENSSL_free(der);
				EVP_PKEY_free(kf);
			}
	}

	/* not a request at all */
	expect("empty", "", 0, DEVID_EINVAL, "empty");
	expect("only whitespace", " \r\n\t", 4, DEVID_EINVAL, "empty");
	expect("base64 of junk", "AAAA", 4, DEVID_EINVAL, "PKCS#10");
	expect("a space, then junk", "\x80", 1, DEVID_EINVAL, "offset 0");

	/* over the cap: refused before decoding */
	s = malloc(MAX_EST_BODY + 1);
	memset(s, 'A', MAX_EST_BODY + 1);
	expect("over the cap", s, MAX_EST_BODY + 1, DEVID_ELIMIT, "limit");
	s[0] = '*';
	expect("over the cap, not base64", s, MAX_EST_BODY + 1, DEVID_ELIMIT, "limit");
	free(s);

	openssl_cli();

	EVP_PKEY_free(p256);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(p521);
	EVP_PKEY_free(rsa);
	return test_done();
}
