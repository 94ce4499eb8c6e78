/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The pure half of the EST server (src/http/est.c): which requests become which operation or
 * refusal, and the answer bodies as RFC 7030 clients and the openssl command line read them.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pkcs7.h>
#include <openssl/x509.h>

#include "http/est.h"
#include "lib/base64.h"
#include "test.h"
#include "lib/banned.h"

static EVP_PKEY *key;
static X509 *holder; /* the client certificate: key's */
static char *csr_b64; /* a good CSR, base64 in lines */

static void
make_csr(void)
{
	X509_REQ *req = X509_REQ_new();
	unsigned char *der = NULL;
	int n;

	X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
	    (const unsigned char *)"dev", -1, -1, 0);
	X509_REQ_set_pubkey(req, key);
	X509_REQ_sign(req, key, EVP_sha256());
	n = i2d_X509_REQ(req, &der);
	csr_b64 = b64_encode(der, (size_t)n);
	OPENSSL_free(der);
	X509_REQ_free(req);
}

static X509 *
make_cert(const char *cn)
{
	X509 *x = X509_new();

	X509_set_version(x, X509_VERSION_3);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_NAME_add_entry_by_txt(
	    X509_get_subject_name(x), "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	X509_sign(x, key, EVP_sha256());
	return x;
}

/* Parses a request; returns the status (0 on success) and checks the refusal's shape. */
static int
parse(const char *method, const char *path, const char *ct, const char *body, bool cert,
    struct est_request *r, struct est_refusal *why)
{
	struct devid_error e;
	int rc;

	devid_error_clear(&e);
	rc = est_request_parse(method, path, strlen(path), ct, (const uint8_t *)body,
	    body != NULL ? strlen(body) : 0, cert ? holder : NULL, r, why, &e);
	if (rc == 0)
		return 0;
	CHECK(e.msg[0] != '\0' && why->code != NULL && r->csr == NULL,
	    "%s %s: a refusal has a reason, a code and no CSR", method, path);
	return why->status;
}

static void
expect_status(const char *method, const char *path, const char *ct, const char *body, bool cert,
    int want, const char *code)
{
	struct est_request r;
	struct est_refusal why;
	int st = parse(method, path, ct, body, cert, &r, &why);

	CHECK(st == want, "%s %s: status %d, want %d", method, path, st, want);
	if (st != 0 && code != NULL)
		CHECK(strcmp(why.code, code) == 0, "%s %s: code %s, want %s", method, path,
		    why.code, code);
	est_request_release(&r);
}

static void
requests(void)
{
	struct est_request r;
	struct est_refusal why;

	/* the four endpoints, with and without a label */
	CHECK(parse("GET", "/.well-known/est/cacerts", NULL, NULL, false, &r, &why) == 0 &&
		r.endpoint == EST_CACERTS && !r.has_label && r.csr == NULL,
	    "GET cacerts");
	CHECK(strcmp(est_route(r.endpoint, r.has_label), "/.well-known/est/cacerts") == 0,
	    "cacerts route");
	CHECK(
	    parse("HEAD", "/.well-known/est/OEM-1.X/csrattrs", NULL, NULL, false, &r, &why) == 0 &&
		r.endpoint == EST_CSRATTRS && r.has_label && strcmp(r.label, "OEM-1.X") == 0,
	    "HEAD csrattrs with a label");
	CHECK(strcmp(est_route(r.endpoint, r.has_label), "/.well-known/est/{label}/csrattrs") == 0,
	    "csrattrs route with a label");
	CHECK(parse("POST", "/.well-known/est/simpleenroll", "application/pkcs10", csr_b64, true,
		  &r, &why) == 0 &&
		r.endpoint == EST_SIMPLEENROLL && r.csr != NULL,
	    "POST simpleenroll");
	est_request_release(&r);
	est_request_release(&r);
	CHECK(parse("POST", "/.well-known/est/OEM1/simplereenroll",
		  " APPLICATION/PKCS10 ; charset=us-ascii", csr_b64, true, &r, &why) == 0 &&
		r.endpoint == EST_SIMPLEREENROLL && r.csr != NULL && strcmp(r.label, "OEM1") == 0,
	    "POST simplereenroll, label, Content-Type in capitals with a parameter");
	est_request_release(&r);

	/* not an EST resource */
	expect_status("GET", "/", NULL, NULL, false, 404, "not_found");
	expect_status("GET", "/.well-known/est/", NULL, NULL, false, 404, "not_found");
	expect_status("GET", "/.well-known/est", NULL, NULL, false, 404, "not_found");
	expect_status("GET", "/.well-known/est/cacerts/", NULL, NULL, false, 404, "not_found");
	expect_status("GET", "/.well-known/est/fullcmc", NULL, NULL, false, 404, "not_found");
	expect_status("GET", "/.well-known/est/oem1/cacerts", NULL, NULL, false, 404, NULL);
	expect_status("GET", "/.well-known/est/../cacerts", NULL, NULL, false, 404, NULL);
	expect_status("GET", "/.well-known/est/./cacerts", NULL, NULL, false, 404, NULL);
	expect_status("GET", "/.well-known/est//cacerts", NULL, NULL, false, 404, NULL);
	expect_status("GET", "/.well-known/est/A/B/cacerts", NULL, NULL, false, 404, NULL);
	expect_status("GET",
	    "/.well-known/est/"
	    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/cacerts",
	    NULL, NULL, false, 404, NULL);

	/* the wrong method: 405 with Allow */
	CHECK(parse("POST", "/.well-known/est/cacerts", NULL, NULL, true, &r, &why) == 405 &&
		why.allow != NULL && strcmp(why.allow, "GET, HEAD") == 0,
	    "POST cacerts: 405, Allow: GET, HEAD");
	CHECK(parse("GET", "/.well-known/est/simpleenroll", NULL, NULL, true, &r, &why) == 405 &&
		why.allow != NULL && strcmp(why.allow, "POST") == 0,
	    "GET simpleenroll: 405, Allow: POST");
	expect_status("PUT", "/.well-known/est/X/csrattrs", NULL, NULL, false, 405, NULL);

	/* no client certificate: 403 before the Content-Type or the body are looked at */
	expect_status("POST", "/.well-known/est/simpleenroll", "application/pkcs10", csr_b64, false,
	    403, "client_certificate_required");
	expect_status("POST", "/.well-known/est/simplereenroll", "text/plain", "junk", false, 403,
	    "client_certificate_required");

	/* Content-Type */
	expect_status("POST", "/.well-known/est/simpleenroll", NULL, csr_b64, true, 415,
	    "unsupported_media_type");
	expect_status("POST", "/.well-known/est/simpleenroll", "application/pkcs10-x", csr_b64,
	    true, 415, NULL);
	expect_status("POST", "/.well-known/est/simpleenroll", "application/pkcs7-mime", csr_b64,
	    true, 415, NULL);

	/* the body */
	expect_status("POST", "/.well-known/est/simpleenroll", "application/pkcs10", "", true, 400,
	    "bad_request");
	expect_status("POST", "/.well-known/est/simpleenroll", "application/pkcs10", "MIIB*", true,
	    400, "bad_request");
	{
		char *big = malloc(MAX_EST_BODY + 2);

		memset(big, 'A', MAX_EST_BODY + 1);
		big[MAX_EST_BODY + 1] = '\0';
		expect_status("POST", "/.well-known/est/simpleenroll", "application/pkcs10", big,
		    true, 413, "too_large");
		free(big);
	}
}

/* Decodes an answer body: lines of at most 64 characters, each ended by LF. */
static uint8_t *
answer_der(const struct dynbuf *b, size_t *n)
{
	const char *s = dynbuf_str(b);
	size_t col = 0, maxcol = 0, cr = 0;
	uint8_t *der = NULL;

	CHECK(b->len > 0 && s[b->len - 1] == '\n', "the answer ends with LF");
	for (size_t i = 0; i < b->len; i++) {
		col = s[i] == '\n' ? 0 : col + 1;
		maxcol = col > maxcol ? col : maxcol;
		cr += s[i] == '\r';
	}
	CHECK(maxcol == 64 && cr == 0, "lines of 64 characters ended by LF: longest %zu, %zu CR",
	    maxcol, cr);
	CHECK(b64_decode(s, b->len, B64_ALLOW_WS, &der, n) == 0, "the answer is base64");
	return der;
}

static void
answers(void)
{
	X509 *certs[2] = {make_cert("one"), make_cert("two")};
	struct devid_error e;
	struct dynbuf b;
	const unsigned char *q;
	uint8_t *der;
	PKCS7 *p7;
	size_t n;
	FILE *f;
	char path[] = "/tmp/devid-est-p7-XXXXXX", cmd[256], line[256];
	int fd, found = 0;

	/* certs-only */
	dynbuf_init(&b, 1 << 20);
	devid_error_clear(&e);
	CHECK(est_certs_only(certs, 2, &b, &e) == 0, "certs-only: %s", e.msg);
	der = answer_der(&b, &n);
	q = der;
	p7 = der != NULL ? d2i_PKCS7(NULL, &q, (long)n) : NULL;
	CHECK(p7 != NULL && q == der + n, "certs-only: one DER ContentInfo");
	if (p7 != NULL) {
		CHECK(PKCS7_type_is_signed(p7), "certs-only: SignedData");
		CHECK(sk_X509_num(p7->d.sign->cert) == 2, "certs-only: two certificates");
		CHECK(sk_PKCS7_SIGNER_INFO_num(p7->d.sign->signer_info) == 0, "no signers");
		CHECK(PKCS7_type_is_data(p7->d.sign->contents) &&
			p7->d.sign->contents->d.data == NULL,
		    "certs-only: id-data without content");
	}
	/* and the openssl command line reads it */
	if (der != NULL && system("command -v openssl >/dev/null 2>&1") == 0 &&
	    (fd = mkstemp(path)) >= 0) {
		CHECK(write(fd, der, n) == (ssize_t)n, "write %s", path);
		close(fd);
		snprintf(cmd, sizeof(cmd),
		    "openssl pkcs7 -inform DER -in %s -print_certs -noout 2>&1", path);
		if ((f = popen(cmd, "r")) != NULL) {
			while (fgets(line, sizeof(line), f) != NULL)
				found += strstr(line, "subject=CN = one") != NULL ||
				    strstr(line, "subject=CN = two") != NULL;
			CHECK(pclose(f) == 0, "openssl pkcs7 -print_certs exits 0");
		}
		CHECK(found == 2, "openssl pkcs7 -print_certs prints both subjects");
		remove(path);
	}
	PKCS7_free(p7);
	free(der);

	/* csrattrs: SEQUENCE { ecdsa-with-SHA256, { id-ecPublicKey, { prime256v1 } } } */
	dynbuf_reset(&b);
	CHECK(est_csrattrs(&b, &e) == 0, "csrattrs");
	CHECK(strcmp(dynbuf_str(&b), "MCEGCCqGSM49BAMCMBUGByqGSM49AgExCgYIKoZIzj0DAQc=\n") == 0,
	    "csrattrs body: %s", dynbuf_str(&b));

	/* a full buffer is an error, not a truncated answer */
	dynbuf_release(&b);
	dynbuf_init(&b, 100);
	CHECK(est_certs_only(certs, 2, &b, &e) == DEVID_ELIMIT, "certs-only over the cap");
	dynbuf_release(&b);
	X509_free(certs[0]);
	X509_free(certs[1]);
}

int
main(void)
{
	if ((key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) == NULL) {
		fprintf(stderr, "test_est: key generation failed\n");
		return 1;
	}
	make_csr();
	holder = make_cert("device");
	requests();
	answers();
	X509_free(holder);
	free(csr_b64);
	EVP_PKEY_free(key);
	return test_done();
}
