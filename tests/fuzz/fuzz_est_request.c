/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_est_request.c - libFuzzer target for the EST request parser of the device port
 * (est_request_parse): the first byte chooses the method (its low 3 bits), whether a client
 * certificate was sent (bit 3) and whether Content-Type is absent (bit 4); then the path up
 * to the first LF, the Content-Type up to the next LF, and the rest is the body. Aborts when
 * the parser breaks its contract: a refusal has a status, a code, a reason and no CSR (405s
 * an Allow); a success names an endpoint, a valid label if any, a CSR exactly for the
 * enrollments and a TPM body exactly for tpm/activate and tpm/enroll.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "http/est.h"
#include "lib/claim.h"
#include "lib/banned.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
expect(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_est_request: contract broken: %s\n", what);
		abort();
	}
}

/* The next field of p[0..n): up to an LF (consumed) or the end. */
static const uint8_t *
field(const uint8_t **p, size_t *n, size_t *len)
{
	const uint8_t *start = *p, *lf = memchr(*p, '\n', *n);

	*len = lf != NULL ? (size_t)(lf - start) : *n;
	*p += *len + (lf != NULL);
	*n -= *len + (lf != NULL);
	return start;
}

/* A client certificate, made once: its key is not a request's, so requests are decoded. */
static X509 *
holder(void)
{
	static X509 *x;
	EVP_PKEY *k;

	if (x == NULL) {
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		x = X509_new();
		if (k == NULL || x == NULL || X509_set_pubkey(x, k) != 1)
			abort();
		EVP_PKEY_free(k);
	}
	return x;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = {
	    "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "post"};
	struct est_request r;
	struct est_refusal why;
	struct devid_error e;
	const uint8_t *p, *path, *ct;
	size_t n, path_len, ct_len;
	char *ctype = NULL;
	bool cert, post;
	int rc;

	if (size < 1)
		return 0;
	p = data + 1;
	n = size - 1;
	path = field(&p, &n, &path_len);
	ct = field(&p, &n, &ct_len);
	cert = (data[0] & 0x08) != 0;
	if ((data[0] & 0x10) == 0) {
		/* a header value is a C string: it ends at a NUL */
		ctype = malloc(ct_len + 1);
		memcpy(ctype, ct, ct_len);
		ctype[ct_len] = '\0';
	}
	devid_error_clear(&e);
	rc = est_request_parse(methods[data[0] & 7], (const char *)path, path_len, ctype, p, n,
	    cert ? holder() : NULL, &r, &why, &e);
	expect(r.csr == NULL || rc == 0, "a refusal holds no CSR");
	if (rc != 0) {
		expect(e.msg[0] != '\0' && e.code == rc, "a refusal gives a reason");
		expect(why.code != NULL && why.status >= 400 && why.status < 600, "a status");
		expect((why.status == 405) == (why.allow != NULL), "Allow exactly with 405");
		expect(why.status != 403 || !cert, "403 only without a certificate");
	} else {
		post = r.endpoint == EST_SIMPLEENROLL || r.endpoint == EST_SIMPLEREENROLL;
		expect(post == (r.csr != NULL), "a CSR exactly for the enrollments");
		expect((r.endpoint == EST_TPMACTIVATE) == (r.tpm.ak_public != NULL),
		    "an AK exactly for tpm/activate");
		expect((r.endpoint == EST_TPMENROLL) == (r.tpm.secret != NULL),
		    "a secret exactly for tpm/enroll");
		expect(!post || cert, "an enrollment only with a certificate");
		expect(r.has_label == (r.label[0] != '\0'), "has_label");
		expect(!r.has_label || claim_name_valid(r.label, strlen(r.label)), "a valid label");
		expect(strncmp(est_route(r.endpoint, r.has_label), EST_PATH_PREFIX,
			   sizeof(EST_PATH_PREFIX) - 1) == 0,
		    "a route");
	}
	est_request_release(&r);
	est_request_release(&r);
	free(ctype);
	return 0;
}
