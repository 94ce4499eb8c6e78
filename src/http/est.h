/* SPDX-License-Identifier: Apache-2.0 */
/*
 * est.h - the EST server (RFC 7030, with RFC 8951's clarifications) on devid serve's device
 * port.
 *
 * Two halves. The pure one (est.c, src/lib and OpenSSL only, driven by a fuzz target) reads
 * a request into an operation, an optional label and, for the enrollments, a checked CSR,
 * and encodes the answers. The handler (est_handler.c) puts the domain (src/service) behind
 * it: it authenticates nothing itself beyond asking TLS for the client's certificate, which
 * the service verifies against the database's trust on every request.
 *
 *   GET  /.well-known/est[/<label>]/cacerts         the tenant's operational CA
 *   POST /.well-known/est[/<label>]/simpleenroll    birth certificate in TLS, CSR in the body
 *   POST /.well-known/est[/<label>]/simplereenroll  operational certificate in TLS, CSR
 *   GET  /.well-known/est[/<label>]/csrattrs        what devid wants in a CSR
 *   POST /.well-known/est[/<label>]/tpm/activate    a TPM device's keys, JSON (docs/tpm.md);
 *                                                   no client certificate
 *   POST /.well-known/est[/<label>]/tpm/enroll      the activated secret, JSON
 *
 * The label is a tenant name ([A-Z0-9.-]{1,64}, not "." or "..").
 */
#ifndef DEVID_HTTP_EST_H
#define DEVID_HTTP_EST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "http/server.h"
#include "lib/dynbuf.h"
#include "lib/error.h"
#include "lib/limits.h"
#include "lib/x509.h"

#define EST_PATH_PREFIX "/.well-known/est/"

/* The media types of RFC 7030 4.1.3, 4.2.3, 4.5.2. */
#define EST_TYPE_PKCS10 "application/pkcs10"
#define EST_TYPE_CERTS_ONLY "application/pkcs7-mime; smime-type=certs-only"
#define EST_TYPE_CSRATTRS "application/csrattrs"
/* The TPM calls' bodies and answers. */
#define EST_TYPE_JSON "application/json"

enum est_endpoint {
	EST_CACERTS,
	EST_SIMPLEENROLL,
	EST_SIMPLEREENROLL,
	EST_CSRATTRS,
	EST_TPMACTIVATE,
	EST_TPMENROLL
};

/* the most hex digits of a TPM activation's id a body may carry */
#define EST_TPM_ID_MAX 64

/*
 * The JSON body of tpm/activate or tpm/enroll (docs/tpm.md), its base64 members decoded
 * (malloc'd, NULL when absent). activate: ekCertificate or udid, akPublic, keyPublic,
 * certifyInfo, certifySignature, csr. enroll: id, secret.
 */
struct est_tpm_body {
	uint8_t *ek_cert;
	size_t ek_cert_len;
	char udid[UDID_HEX_LEN + 1]; /* "" when absent */
	uint8_t *ak_public;
	size_t ak_public_len;
	uint8_t *key_public;
	size_t key_public_len;
	uint8_t *certify_info;
	size_t certify_info_len;
	uint8_t *certify_signature;
	size_t certify_signature_len;
	uint8_t *csr;
	size_t csr_len;
	char id[EST_TPM_ID_MAX + 1]; /* "" when absent */
	uint8_t *secret;
	size_t secret_len;
};

/*
 * Reads the body of ep (EST_TPMACTIVATE or EST_TPMENROLL): len bytes, DEVID_ELIMIT over
 * MAX_EST_BODY before any parsing; then one JSON object, duplicate members refused, only the
 * call's members, each a string: base64 (RFC 4648, padded, not empty) for the binary ones,
 * lowercase hex for udid (at most 64 digits) and id (at most EST_TPM_ID_MAX); all required
 * but activate's ekCertificate and udid, of which exactly one. What the bytes mean is the
 * service's to check. 0 with *b filled (est_tpm_body_release), or DEVID_EINVAL naming the
 * member (b then empty), DEVID_ELIMIT, DEVID_ENOMEM.
 */
int est_tpm_body_parse(enum est_endpoint ep, const uint8_t *body, size_t len,
    struct est_tpm_body *b, struct devid_error *e);
/* Frees what b holds, the secret wiped; b may be released twice. */
void est_tpm_body_release(struct est_tpm_body *b);

/* A request read by est_request_parse; release with est_request_release. */
struct est_request {
	enum est_endpoint endpoint;
	bool has_label;
	char label[MAX_NAME_LEN + 1]; /* "" without a label */
	X509_REQ *csr; /* the two enrollments: checked by csr_from_est_body; owned */
	struct est_tpm_body tpm; /* tpm/activate and tpm/enroll: their body; owned */
};

/* Why a request is refused: the HTTP answer to give, the reason in the devid_error. */
struct est_refusal {
	int status; /* 400, 403, 404, 405, 413, 415 */
	const char *code; /* the JSON "error" code, a constant */
	const char *allow; /* with 405: the Allow header, a constant; else NULL */
};

/*
 * Reads a request, in this order: the path (404 outside the six endpoints, or with a label
 * that is not a tenant name), the method (405 and Allow: GET, HEAD for cacerts and csrattrs;
 * POST for the others), then for the enrollments the client certificate
 * (client_cert NULL: 403 "client_certificate_required", before the body is looked at), the
 * Content-Type (application/pkcs10, parameters allowed, case-insensitive; else 415) and the
 * body (csr_from_est_body, client_cert its holder: 413 over MAX_EST_BODY, 400 otherwise).
 * For tpm/activate and tpm/enroll no client certificate (a TPM's EK cannot sign; the
 * activation authenticates), the Content-Type application/json (else 415) and the body
 * (est_tpm_body_parse into r->tpm: 413 over MAX_EST_BODY, 400 otherwise).
 * Content-Transfer-Encoding is not looked at (RFC 8951 3: the body is base64 whatever it says).
 *
 * Pure: path is path_len bytes (not NUL-terminated), content_type may be NULL, body is len
 * bytes. 0 with *r filled; or a DEVID_E* code with *why and e set, r->csr NULL, and
 * r->endpoint and the label as far as they were read (for the route label of metrics).
 */
int est_request_parse(const char *method, const char *path, size_t path_len,
    const char *content_type, const uint8_t *body, size_t len, X509 *client_cert,
    struct est_request *r, struct est_refusal *why, struct devid_error *e);
/* Frees what r holds (the CSR, the TPM body); r may be released twice. */
void est_request_release(struct est_request *r);

/* The route pattern of an endpoint, for metrics and logs: "/.well-known/est/{label}/cacerts". */
const char *est_route(enum est_endpoint ep, bool has_label);

/*
 * Appends the body of a certs-only answer (RFC 7030 4.1.3, 4.2.3): base64, in lines of 64
 * characters each ended by LF, of a DER CMS SignedData with no signers and no content, holding
 * certs[0..n) (borrowed). 0, DEVID_ELIMIT (out is full), DEVID_ENOMEM or DEVID_EINTERNAL.
 */
int est_certs_only(X509 *const *certs, size_t n, struct dynbuf *out, struct devid_error *e);

/*
 * Appends the body of the csrattrs answer (RFC 7030 4.5.2): base64 of the DER CsrAttrs
 * SEQUENCE { ecdsa-with-SHA256, SEQUENCE { id-ecPublicKey, SET { prime256v1 } } }: sign with
 * ECDSA and SHA-256, on a P-256 key.
 */
int est_csrattrs(struct dynbuf *out, struct devid_error *e);

/* --- the handler ---------------------------------------------------------------------- */

struct service;
struct est;

/* The EST handler over svc (borrowed; must outlive it). NULL with e set when out of memory. */
struct est *est_new(struct service *svc, struct devid_error *e);
void est_free(struct est *est);
/*
 * An http_handler_fn for the device port (arg is the struct est *): the six endpoints and
 * GET /healthz; every other path is 404. Errors are JSON (http_error); a service failure
 * maps to: DEVID_EINVAL 400 bad_request; DEVID_EAUTH, DEVID_ECRYPTO 403 forbidden (and
 * DEVID_ENOTFOUND 403 for the enrollments, 404 not_found for cacerts); DEVID_ELIMIT 403
 * quota_exceeded; DEVID_ECONFLICT 409 no_ca; anything else 500 (logged, not explained).
 * Refusals of 403 are logged with their reason; each issuance is logged once, by
 * service_est_enroll (udid, serial), never the CSR or the certificate. tpm/activate answers
 * 201 with JSON {id, credentialBlob, encryptedSecret, expiresAt}; tpm/enroll as simpleenroll.
 */
void est_handle(struct http_request *req, struct http_response *resp, void *arg);

#endif
