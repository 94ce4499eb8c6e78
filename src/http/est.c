/* SPDX-License-Identifier: Apache-2.0 */
/*
 * est.c - the pure half of the EST server (see est.h): requests in, answer bodies out.
 * Uses src/lib and OpenSSL only, so fuzz_est_request can drive it without a server.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/pkcs7.h>

#include "http/est.h"
#include "lib/base64.h"
#include "lib/claim.h"
#include "lib/csr.h"
#include "lib/banned.h"

/* the base64 line length of the answers (RFC 2045 6.8 allows up to 76) */
#define EST_B64_LINE 64

static const struct {
	const char *name;
	enum est_endpoint ep;
	bool post;
	const char *route, *route_label;
} endpoints[] = {
    {"cacerts", EST_CACERTS, false, EST_PATH_PREFIX "cacerts", EST_PATH_PREFIX "{label}/cacerts"},
    {"simpleenroll", EST_SIMPLEENROLL, true, EST_PATH_PREFIX "simpleenroll",
	EST_PATH_PREFIX "{label}/simpleenroll"},
    {"simplereenroll", EST_SIMPLEREENROLL, true, EST_PATH_PREFIX "simplereenroll",
	EST_PATH_PREFIX "{label}/simplereenroll"},
    {"csrattrs", EST_CSRATTRS, false, EST_PATH_PREFIX "csrattrs",
	EST_PATH_PREFIX "{label}/csrattrs"},
    {"tpm/activate", EST_TPMACTIVATE, true, EST_PATH_PREFIX "tpm/activate",
	EST_PATH_PREFIX "{label}/tpm/activate"},
    {"tpm/enroll", EST_TPMENROLL, true, EST_PATH_PREFIX "tpm/enroll",
	EST_PATH_PREFIX "{label}/tpm/enroll"},
};
#define NENDPOINTS (sizeof(endpoints) / sizeof(endpoints[0]))

/* The index of the endpoint named op[0..op_len), or NENDPOINTS. */
static size_t
endpoint_find(const char *op, size_t op_len)
{
	size_t i;

	for (i = 0; i < NENDPOINTS; i++)
		if (strlen(endpoints[i].name) == op_len &&
		    memcmp(endpoints[i].name, op, op_len) == 0)
			break;
	return i;
}

static int
refuse(struct est_refusal *why, int status, const char *code, int rc, struct devid_error *e,
    const char *fmt, const char *arg)
{
	why->status = status;
	why->code = code;
	why->allow = NULL;
	/* every message names what it refuses; arg is a constant or bounded by the caller */
	devid_error_set(e, rc, fmt, arg);
	return rc;
}

/* The answer to a body its reader refused with rc (the reason is in its devid_error). */
static void
body_refused(struct est_refusal *why, int rc)
{
	why->status = rc == DEVID_ELIMIT ? 413 : rc == DEVID_ENOMEM ? 500 : 400;
	why->code = rc == DEVID_ELIMIT ? "too_large"
	    : rc == DEVID_ENOMEM       ? "internal"
				       : "bad_request";
	why->allow = NULL;
}

/*
 * Whether a Content-Type names want: the type and subtype case-insensitively, optional
 * whitespace, then nothing or ';' and parameters (RFC 9110 8.3.1).
 */
static bool
content_type_is(const char *ct, const char *want)
{
	size_t n = strlen(want);

	if (ct == NULL)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, want, n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

int
est_request_parse(const char *method, const char *path, size_t path_len, const char *content_type,
    const uint8_t *body, size_t len, X509 *client_cert, struct est_request *r,
    struct est_refusal *why, struct devid_error *e)
{
	const size_t plen = sizeof(EST_PATH_PREFIX) - 1;
	const char *rest, *slash, *op;
	size_t rest_len, op_len, label_len = 0;
	size_t i;
	int rc;

	memset(r, 0, sizeof(*r));
	why->status = 0;
	why->code = NULL;
	why->allow = NULL;
	if (path_len <= plen || memcmp(path, EST_PATH_PREFIX, plen) != 0)
		return refuse(why, 404, "not_found", DEVID_ENOTFOUND, e, "%s",
		    "no such EST resource (RFC 7030 3.2.2: " EST_PATH_PREFIX
		    "[<label>/]cacerts, simpleenroll, simplereenroll, csrattrs, tpm/activate, "
		    "tpm/enroll)");
	rest = path + plen;
	rest_len = path_len - plen;
	op = rest;
	op_len = rest_len;
	/* "tpm/activate" is an operation, not the label "tpm" (a label is upper case) */
	slash = endpoint_find(rest, rest_len) == NENDPOINTS ? memchr(rest, '/', rest_len) : NULL;
	if (slash != NULL) {
		label_len = (size_t)(slash - rest);
		op = slash + 1;
		op_len = rest_len - label_len - 1;
		if (!claim_name_valid(rest, label_len) ||
		    (label_len <= 2 && memcmp(rest, "..", label_len) == 0))
			return refuse(why, 404, "not_found", DEVID_ENOTFOUND, e, "%s",
			    "the EST label is a tenant name: [A-Z0-9.-]{1,64}");
	}
	if ((i = endpoint_find(op, op_len)) == NENDPOINTS)
		return refuse(why, 404, "not_found", DEVID_ENOTFOUND, e, "%s",
		    "no such EST operation (cacerts, simpleenroll, simplereenroll, csrattrs, "
		    "tpm/activate, tpm/enroll)");
	r->endpoint = endpoints[i].ep;
	if (slash != NULL) {
		r->has_label = true;
		memcpy(r->label, rest, label_len);
		r->label[label_len] = '\0';
	}
	if (method == NULL ||
	    (endpoints[i].post ? strcmp(method, "POST") != 0
			       : strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)) {
		rc = refuse(why, 405, "method_not_allowed", DEVID_EINVAL, e,
		    endpoints[i].post ? "%s takes only POST" : "%s takes only GET and HEAD",
		    endpoints[i].name);
		why->allow = endpoints[i].post ? "POST" : "GET, HEAD";
		goto fail;
	}
	if (!endpoints[i].post)
		return 0;
	if (r->endpoint == EST_TPMACTIVATE || r->endpoint == EST_TPMENROLL) {
		if (!content_type_is(content_type, EST_TYPE_JSON)) {
			rc = refuse(why, 415, "unsupported_media_type", DEVID_EINVAL, e, "%s",
			    "the body is " EST_TYPE_JSON " (docs/tpm.md)");
			goto fail;
		}
		if ((rc = est_tpm_body_parse(r->endpoint, body, len, &r->tpm, e)) != 0) {
			body_refused(why, rc);
			goto fail;
		}
		return 0;
	}
	if (client_cert == NULL) {
		rc = refuse(why, 403, "client_certificate_required", DEVID_EAUTH, e, "%s",
		    "enrollment needs a client certificate in TLS: the birth certificate for "
		    "simpleenroll, the operational certificate for simplereenroll");
		goto fail;
	}
	if (!content_type_is(content_type, EST_TYPE_PKCS10)) {
		rc = refuse(why, 415, "unsupported_media_type", DEVID_EINVAL, e, "%s",
		    "RFC 7030 4.2.1: the body is " EST_TYPE_PKCS10);
		goto fail;
	}
	if ((rc = csr_from_est_body(body, len, client_cert, &r->csr, e)) != 0) {
		body_refused(why, rc);
		goto fail;
	}
	return 0;
fail:
	est_request_release(r);
	return rc;
}

void
est_request_release(struct est_request *r)
{
	X509_REQ_free(r->csr);
	r->csr = NULL;
	est_tpm_body_release(&r->tpm);
}

const char *
est_route(enum est_endpoint ep, bool has_label)
{
	for (size_t i = 0; i < NENDPOINTS; i++)
		if (endpoints[i].ep == ep)
			return has_label ? endpoints[i].route_label : endpoints[i].route;
	return EST_PATH_PREFIX "?";
}

/* Appends base64 of p[0..n) in lines of EST_B64_LINE characters, each ended by LF. */
static int
add_b64_lines(struct dynbuf *out, const uint8_t *p, size_t n, struct devid_error *e)
{
	char *b64 = b64_encode(p, n);
	size_t len, i, k;
	int rc = 0;

	if (b64 == NULL)
		return devid_error_set(e, DEVID_ENOMEM, "est: out of memory");
	len = strlen(b64);
	for (i = 0; i < len && rc == 0; i += k) {
		k = len - i < EST_B64_LINE ? len - i : EST_B64_LINE;
		if ((rc = dynbuf_add(out, b64 + i, k)) == 0)
			rc = dynbuf_add(out, "\n", 1);
	}
	free(b64);
	if (rc != 0)
		devid_error_set(e, rc, "est: the answer does not fit");
	return rc;
}

int
est_certs_only(X509 *const *certs, size_t n, struct dynbuf *out, struct devid_error *e)
{
	PKCS7 *p7 = NULL;
	unsigned char *der = NULL;
	int len, rc = DEVID_EINTERNAL;

	/* as crl2pkcs7 makes it: SignedData v1, no digest algorithms, no signers, id-data
	 * without content (detached), the certificates */
	if ((p7 = PKCS7_new()) == NULL || PKCS7_set_type(p7, NID_pkcs7_signed) != 1 ||
	    PKCS7_content_new(p7, NID_pkcs7_data) != 1 || PKCS7_set_detached(p7, 1) != 1) {
		devid_error_ssl(e, rc, "est: certs-only SignedData");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (PKCS7_add_certificate(p7, certs[i]) != 1) {
			devid_error_ssl(e, rc, "est: certs-only SignedData: certificate %zu", i);
			goto out;
		}
	}
	if ((len = i2d_PKCS7(p7, &der)) <= 0) {
		devid_error_ssl(e, rc, "est: certs-only SignedData: encoding");
		goto out;
	}
	rc = add_b64_lines(out, der, (size_t)len, e);
out:
	OPENSSL_free(der);
	PKCS7_free(p7);
	return rc;
}

int
est_csrattrs(struct dynbuf *out, struct devid_error *e)
{
	/* CsrAttrs ::= SEQUENCE SIZE (0..MAX) OF AttrOrOID (RFC 7030 4.5.2) */
	static const uint8_t der[] = {0x30, 0x21, /* SEQUENCE, 33 bytes */
	    /* ecdsa-with-SHA256 (1.2.840.10045.4.3.2): sign the CSR with it */
	    0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
	    /* Attribute { id-ecPublicKey (1.2.840.10045.2.1), SET { prime256v1 } }: the key */
	    0x30, 0x15, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x31, 0x0a, 0x06,
	    0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

	return add_b64_lines(out, der, sizeof(der), e);
}
