/* SPDX-License-Identifier: Apache-2.0 */
/*
 * csr.c - the CSR intake of EST (see csr.h): base64 with whitespace, then one strict DER
 * PKCS#10 request with an EC P-256/P-384 key and a valid self-signature.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "base64.h"
#include "csr.h"
#include "limits.h"
#include "x509.h"
#include "banned.h"

/* Whether c may appear in an EST body: the base64 alphabet, padding, and RFC 8951 spaces. */
static bool
body_char_ok(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	    c == '+' || c == '/' || c == '=' || c == '\r' || c == '\n' || c == ' ' || c == '\t';
}

/*
 * Whether the subject name is DER. d2i keeps a name's bytes as received and i2d gives them
 * back unchanged, so the comparison of the whole request cannot see inside it: the name is
 * rebuilt from its entries, which encodes it afresh, and the two encodings compared.
 */
static bool
name_is_der(const X509_NAME *name)
{
	X509_NAME *fresh = NULL;
	unsigned char *a = NULL, *b = NULL;
	int alen, blen, prev = -1;
	bool ok = false;

	if ((fresh = X509_NAME_new()) == NULL)
		goto out;
	for (int i = 0; i < X509_NAME_entry_count(name); i++) {
		const X509_NAME_ENTRY *ne = X509_NAME_get_entry(name, i);
		int set = X509_NAME_ENTRY_set(ne);

		/* appended (loc -1) with set -1: into the RDN of the entry before (a
		 * multi-valued RDN); set 0: as a new RDN */
		if (X509_NAME_add_entry(fresh, ne, -1, i > 0 && set == prev ? -1 : 0) != 1)
			goto out;
		prev = set;
	}
	alen = i2d_X509_NAME(name, &a);
	blen = i2d_X509_NAME(fresh, &b);
	ok = alen > 0 && alen == blen && memcmp(a, b, (size_t)alen) == 0;
out:
	OPENSSL_free(a);
	OPENSSL_free(b);
	X509_NAME_free(fresh);
	return ok;
}

/*
 * The key: EC, a named curve P-256 or P-384, the point uncompressed (RFC 5480 2.2), decodable
 * (the point is on the curve): key is its decoding, or NULL.
 */
static int
check_key(X509_REQ *req, EVP_PKEY *key, struct devid_error *e)
{
	X509_PUBKEY *spki = X509_REQ_get_X509_PUBKEY(req);
	ASN1_OBJECT *alg = NULL;
	X509_ALGOR *algor = NULL;
	const void *pval = NULL;
	int ptype = V_ASN1_UNDEF, curve;

	if (spki == NULL || X509_PUBKEY_get0_param(&alg, NULL, NULL, &algor, spki) != 1)
		return devid_error_set(e, DEVID_EINVAL, "CSR: no public key");
	if (OBJ_obj2nid(alg) != NID_X9_62_id_ecPublicKey)
		return devid_error_set(e, DEVID_EINVAL,
		    "CSR: the key is not an EC key (only EC P-256 and P-384 are accepted)");
	X509_ALGOR_get0(NULL, &ptype, &pval, algor);
	if (ptype != V_ASN1_OBJECT)
		return devid_error_set(e, DEVID_EINVAL,
		    "CSR: RFC 5480 2.1.1: the curve must be named by its OID (no explicit or "
		    "implicit parameters)");
	curve = OBJ_obj2nid(pval);
	if (curve != NID_X9_62_prime256v1 && curve != NID_secp384r1)
		return devid_error_set(e, DEVID_EINVAL,
		    "CSR: the key is on curve %s (only P-256 and P-384 are accepted)",
		    curve != NID_undef ? OBJ_nid2sn(curve) : "unknown");
	/* one key, one UDID: the certificate carries this SubjectPublicKeyInfo as it is */
	if (x509_spki_check_uncompressed(spki, e) != 0) {
		devid_error_prefix(e, "CSR");
		return DEVID_EINVAL;
	}
	if (key == NULL)
		return devid_error_ssl(e, DEVID_EINVAL, "CSR: the public key does not decode");
	return 0;
}

/* The signature: ecdsa-with-SHA256 or -SHA384, parameters absent (RFC 5758 3.2), valid. */
static int
check_signature(X509_REQ *req, EVP_PKEY *key, struct devid_error *e)
{
	const ASN1_BIT_STRING *sig = NULL;
	const X509_ALGOR *algor = NULL;
	const ASN1_OBJECT *alg = NULL;
	int ptype = V_ASN1_UNDEF, nid;

	X509_REQ_get0_signature(req, &sig, &algor);
	X509_ALGOR_get0(&alg, &ptype, NULL, algor);
	nid = OBJ_obj2nid(alg);
	if (nid != NID_ecdsa_with_SHA256 && nid != NID_ecdsa_with_SHA384)
		return devid_error_set(e, DEVID_EINVAL,
		    "CSR: signature algorithm %s (only ecdsa-with-SHA256 and -SHA384 are "
		    "accepted)",
		    nid != NID_undef ? OBJ_nid2ln(nid) : "unknown");
	if (ptype != V_ASN1_UNDEF)
		return devid_error_set(e, DEVID_EINVAL,
		    "CSR: RFC 5758 3.2: the ECDSA signature algorithm has parameters");
	if (X509_REQ_verify_ex(req, key, NULL, NULL) != 1) {
		ERR_clear_error();
		return devid_error_set(e, DEVID_ECRYPTO, "CSR signature does not verify");
	}
	return 0;
}

/* A request of exactly p[0..n), its key decoded in ctx (NULL: the default context). */
static X509_REQ *
req_d2i(const uint8_t *p, size_t n, OSSL_LIB_CTX *ctx, struct devid_error *e)
{
	const unsigned char *q = p;
	X509_REQ *req =
	    (X509_REQ *)ASN1_item_d2i_ex(NULL, &q, (long)n, ASN1_ITEM_rptr(X509_REQ), ctx, NULL);

	if (req == NULL) {
		devid_error_ssl(e, DEVID_EINVAL, "CSR: not a DER PKCS#10 request");
	} else if (q != p + n) {
		devid_error_set(
		    e, DEVID_EINVAL, "CSR: %zu bytes after the request", n - (size_t)(q - p));
		X509_REQ_free(req);
		req = NULL;
	}
	return req;
}

int
csr_from_der(const uint8_t *p, size_t n, X509 *holder, X509_REQ **out, struct devid_error *e)
{
	unsigned char *der = NULL, *tbs = NULL;
	OSSL_LIB_CTX *nokey;
	X509_REQ *req = NULL;
	EVP_PKEY *key = NULL;
	int rc = DEVID_EINVAL, len;

	*out = NULL;
	if (n == 0 || n > MAX_EST_BODY) {
		rc = devid_error_set(e, n == 0 ? DEVID_EINVAL : DEVID_ELIMIT,
		    "CSR: %zu bytes of DER (1 to %d)", n, MAX_EST_BODY);
		goto out;
	}
	if (holder != NULL && (nokey = x509_nokey_libctx()) != NULL) {
		if ((req = req_d2i(p, n, nokey, e)) == NULL)
			goto out;
		if (x509_spki_same(X509_REQ_get_X509_PUBKEY(req), X509_get_X509_PUBKEY(holder)))
			key = X509_get0_pubkey(holder);
	}
	if (key == NULL) {
		X509_REQ_free(req);
		if ((req = req_d2i(p, n, NULL, e)) == NULL)
			goto out;
		key = X509_REQ_get0_pubkey(req);
	}
	/* d2i keeps the signed part's bytes for the signature check: encode it afresh */
	if (i2d_re_X509_REQ_tbs(req, &tbs) <= 0 || (len = i2d_X509_REQ(req, &der)) <= 0) {
		rc = devid_error_ssl(e, DEVID_EINVAL, "CSR: does not re-encode");
		goto out;
	}
	if ((size_t)len != n || memcmp(der, p, n) != 0 ||
	    !name_is_der(X509_REQ_get_subject_name(req))) {
		devid_error_set(e, DEVID_EINVAL, "CSR: X.690 10: BER that is not DER");
		goto out;
	}
	if (X509_REQ_get_version(req) != X509_REQ_VERSION_1) {
		devid_error_set(e, DEVID_EINVAL, "CSR: RFC 2986 4.1: version %ld, want 0",
		    X509_REQ_get_version(req));
		goto out;
	}
	if ((rc = check_key(req, key, e)) != 0 || (rc = check_signature(req, key, e)) != 0)
		goto out;
	*out = req;
	req = NULL;
	rc = 0;
out:
	ERR_clear_error();
	OPENSSL_free(der);
	OPENSSL_free(tbs);
	X509_REQ_free(req);
	return rc;
}

int
csr_from_est_body(
    const uint8_t *body, size_t len, X509 *holder, X509_REQ **out, struct devid_error *e)
{
	uint8_t *der = NULL;
	size_t n = 0, i, nsym = 0;
	int rc = DEVID_EINVAL;

	*out = NULL;
	if (len > MAX_EST_BODY) {
		rc = devid_error_set(
		    e, DEVID_ELIMIT, "CSR body: %zu bytes, limit %d", len, MAX_EST_BODY);
		goto out;
	}
	for (i = 0; i < len; i++) {
		if (!body_char_ok(body[i])) {
			devid_error_set(e, DEVID_EINVAL,
			    "CSR body: byte 0x%02x at offset %zu is not base64%s", body[i], i,
			    body[i] == '-' ? " (send the DER in base64, not PEM)" : "");
			goto out;
		}
		if (body[i] > ' ')
			nsym++;
	}
	if (nsym == 0) {
		devid_error_set(e, DEVID_EINVAL, "CSR body: empty");
		goto out;
	}
	if ((rc = b64_decode((const char *)body, len, B64_ALLOW_WS, &der, &n)) != 0) {
		if (rc == DEVID_ENOMEM)
			devid_error_set(e, rc, "CSR body: out of memory");
		else
			devid_error_set(
			    e, rc, "CSR body: RFC 4648 4: bad base64 length or padding");
		goto out;
	}
	rc = csr_from_der(der, n, holder, out, e);
out:
	free(der);
	return rc;
}
