/* SPDX-License-Identifier: Apache-2.0 */
/*
 * devid/agent.h - libdevid-agent, what a device links against.
 *
 * A device identity is a private key that stays in its token, named by a key URI, and the
 * certificate (chain) that names it. The library loads an identity, checks that the key
 * belongs to the certificate, and proves it to a product cloud over mutual TLS.
 *
 * Conventions (devid/error.h): functions return 0 or a negative DEVID_E* code and fill a
 * caller-owned struct devid_error with the reason; constructors return the object through an
 * out-pointer; every _free accepts NULL. The library never prints, never exits and never
 * aborts: out of memory is DEVID_ENOMEM. Messages never contain private key material; a
 * pkcs11: URI is never quoted in them (it may carry a PIN), the path of a file: key and the
 * handle or path of a tpm2: key are.
 *
 * Key URIs:
 *   file:PATH            an unencrypted PEM private key in a file: a development stand-in for a
 *                        secure element (file:/abs, file:rel, file:///abs, file://localhost/abs;
 *                        the path is taken as written, no percent-decoding)
 *   pkcs11:...           RFC 7512, a key in a PKCS#11 token: path attributes token,
 *                        manufacturer, serial, model, slot-id (the token) and object, id,
 *                        type=private (the key, exactly one); query attributes module-path
 *                        (else $DEVID_PKCS11_MODULE, else p11-kit's proxy module), pin-value
 *                        or pin-source (else $DEVID_PKCS11_PIN; none: no login). EC P-256
 *                        and P-384 keys; every signature is made by the token
 *   tpm2:handle=0x81000010  a persistent key in a TPM 2.0, or tpm2:file=PATH, a key file
 *                        of tpm2-openssl ("TSS2 PRIVATE KEY" PEM, the key wrapped by the
 *                        TPM); the TPM through $TPM2OPENSSL_TCTI. EC P-256 and P-384 keys;
 *                        every signature is made by the TPM
 * The scheme is matched without regard to case (RFC 3986 3.1).
 *
 * Thread safety: an identity may be used by several threads at once once loaded (devid_hello
 * only reads it); loading and freeing are not concurrent with use.
 */
#ifndef DEVID_AGENT_H
#define DEVID_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "devid/error.h"

/* ---- key backends ---------------------------------------------------------------------- */

/*
 * A key backend turns a key URI of one scheme into an EVP_PKEY that OpenSSL can sign with.
 * For a token the EVP_PKEY holds only the public key and the token signs (pkcs11: through an
 * EC_KEY_METHOD over C_Sign, tpm2: over TPM2_Sign); the private key never leaves it. For file: it is an ordinary
 * in-memory key.
 */
struct devid_key_backend {
	/* the URI scheme it serves, lowercase, without the colon: "file" */
	const char *scheme;
	/*
	 * Opens the key named by uri (the whole URI, scheme included). On success *state is the
	 * backend's own object, handed back to get0_pkey and free. On failure returns a DEVID_E*
	 * code with the reason in e and leaves nothing to free.
	 */
	int (*load)(const char *uri, void **state, struct devid_error *e);
	/* The key, borrowed: valid until free(state). Never NULL after a successful load. */
	EVP_PKEY *(*get0_pkey)(void *state);
	/* Releases the state and everything it holds; accepts NULL. */
	void (*free)(void *state);
};

/* The built-in backend for file:PATH keys. */
extern const struct devid_key_backend devid_key_backend_file;
/* The built-in backend for pkcs11: keys (RFC 7512). */
extern const struct devid_key_backend devid_key_backend_pkcs11;
/*
 * The built-in backend for tpm2: keys in a TPM 2.0 (tpm2:handle=0x81000010, a persistent key;
 * tpm2:file=PATH, a "TSS2 PRIVATE KEY" PEM), through the tpm2 provider of tpm2-openssl,
 * loaded at run time into a library context of the key's own; the TPM is reached through the
 * TCTI of $TPM2OPENSSL_TCTI. EC P-256 and P-384 keys without a password.
 */
extern const struct devid_key_backend devid_key_backend_tpm2;

/*
 * The backend for a key URI, chosen by its scheme. Fails with DEVID_EINVAL when the URI has no
 * scheme or names an unknown one; the message says which. Built in: file:, pkcs11:, tpm2:.
 */
int devid_key_backend_find(
    const char *uri, const struct devid_key_backend **out, struct devid_error *e);

/* ---- identities -------------------------------------------------------------------------- */

struct devid_identity;

/*
 * Loads an identity: the key named by key_uri (through devid_key_backend_find) and the PEM
 * certificates in cert_file. The first certificate is the device's; any that follow are its
 * chain (issuing CA first) and are sent with it in the TLS handshake. Checks that the key is
 * the certificate's (X509_check_private_key): a mismatch is DEVID_ECRYPTO, reported before
 * any connection is made. *out is new: free it with devid_identity_free.
 */
int devid_identity_load(
    const char *key_uri, const char *cert_file, struct devid_identity **out, struct devid_error *e);
/* The same with a given backend (one of the caller's own, or a test's). */
int devid_identity_load_with(const struct devid_key_backend *backend, const char *key_uri,
    const char *cert_file, struct devid_identity **out, struct devid_error *e);
void devid_identity_free(struct devid_identity *id);

/* Borrowed pointers, valid until devid_identity_free. */
X509 *devid_identity_get0_cert(const struct devid_identity *id);
/* The certificates after the first in cert_file; never NULL, may be empty. */
STACK_OF(X509) *devid_identity_get0_chain(const struct devid_identity *id);
EVP_PKEY *devid_identity_get0_pkey(const struct devid_identity *id);
/* The UDID (lowercase hex SHA-256 of the certificate's SubjectPublicKeyInfo), 64 chars. */
const char *devid_identity_get0_udid(const struct devid_identity *id);

/* ---- hello: prove the identity to a product cloud ----------------------------------------- */

/* The most of a response body devid_hello keeps; the rest is not read. */
#define DEVID_HELLO_MAX_BODY 65536

enum devid_hello_outcome {
	DEVID_HELLO_ADMITTED = 0, /* HTTP 200 over mutual TLS */
	DEVID_HELLO_REFUSED, /* the server answered, but not 200 (or closed without answering) */
	DEVID_HELLO_TLS_FAILED, /* the handshake failed: we or the server rejected the other */
	DEVID_HELLO_CONNECT_FAILED, /* no connection, a timeout, or a broken HTTP exchange */
	DEVID_HELLO_ERROR, /* nothing was sent: bad arguments, unreadable CA file, out of memory */
};

struct devid_hello_result {
	enum devid_hello_outcome outcome;
	int http_status; /* the final status code; 0 when no response was read */
	char *body; /* the response body, NUL-terminated (it may hold other NULs); NULL if none */
	size_t body_len;
	bool body_truncated; /* the body was longer than DEVID_HELLO_MAX_BODY */
	char tls_version[16]; /* negotiated protocol, e.g. "TLSv1.3"; "" before the handshake */
	struct devid_error error; /* why, whenever outcome is not DEVID_HELLO_ADMITTED */
};

/* Initializes r before a call; release frees the body (both accept a used result). */
void devid_hello_result_init(struct devid_hello_result *r);
void devid_hello_result_release(struct devid_hello_result *r);

/*
 * Connects to host:port (a DNS name or an IP literal, IPv6 without brackets), runs TLS 1.2 or
 * later presenting the identity's certificate, chain and key, verifies the server's
 * certificate against the PEM certificates in ca_file and against host (DNS name or IP
 * address in subjectAltName), sends `GET / HTTP/1.1` and reads the status and the body (at
 * most DEVID_HELLO_MAX_BODY bytes kept). The whole exchange ends within timeout_ms (> 0),
 * name resolution aside.
 *
 * Returns 0 only if admitted. Otherwise r->outcome says what happened and r->error why:
 * DEVID_EAUTH refused (r->http_status, r->body), DEVID_ECRYPTO TLS failure (OpenSSL's
 * reason, e.g. "tlsv13 alert certificate required" when the server did not accept the
 * certificate), DEVID_EIO connection failure or timeout, and DEVID_EINVAL / DEVID_ENOMEM
 * before anything was sent. r must have been initialized; release it after.
 */
int devid_hello(const struct devid_identity *id, const char *host, const char *port,
    const char *ca_file, int timeout_ms, struct devid_hello_result *r);

/* ---- EST: operational certificates (RFC 7030, RFC 8951) ------------------------------------ */

/*
 * An operational certificate (LDevID) is issued by the EST server of `devid serve` for the
 * identity's own key: the key never leaves its token, only a CSR signed with it does.
 */
struct devid_est_opts {
	const char *url; /* https://HOST[:PORT][/PREFIX]; the port defaults to 443 */
	const char *ca_file; /* PEM: what the EST server's TLS certificate must chain to */
	const char *label; /* NULL, or a tenant name: /.well-known/est/<label>/... */
	bool reenroll; /* simplereenroll: the identity's certificate is the current operational one
			*/
	int timeout_ms; /* > 0; bounds each of the two exchanges (cacerts, then the enrollment) */
};

enum devid_est_outcome {
	DEVID_EST_ISSUED = 0, /* r->cert and r->ca are set and checked */
	DEVID_EST_REFUSED, /* the server answered 4xx (r->http_status, its message in r->error) */
	DEVID_EST_FAILED, /* any other answer: 5xx, 202, a body that is not what RFC 7030 says,
			     an issued certificate for another key or that does not chain */
	DEVID_EST_TLS_FAILED, /* the handshake failed: we or the server rejected the other */
	DEVID_EST_CONNECT_FAILED, /* no connection, a timeout, or a broken HTTP exchange */
	DEVID_EST_ERROR, /* nothing was sent: bad options, unreadable CA file, expired cert, ... */
};

struct devid_est_result {
	enum devid_est_outcome outcome;
	int http_status; /* the status of the last response read; 0 if none */
	X509 *cert; /* the issued certificate; the caller's once ISSUED (release frees it) */
	X509 *ca; /* the CA certificate from /cacerts that issued it; the same */
	struct devid_error error; /* why, whenever outcome is not DEVID_EST_ISSUED */
};

/* Initializes r before a call; release frees cert and ca (both accept a used result). */
void devid_est_result_init(struct devid_est_result *r);
void devid_est_result_release(struct devid_est_result *r);

/*
 * Enrolls (or, with o->reenroll, re-enrolls) the identity over EST, with mutual TLS
 * presenting the identity's certificate and chain: the birth certificate to enroll, the
 * current operational certificate to re-enroll.
 *
 * First GET .../cacerts: the certs-only answer names the CA certificates, each taken as a
 * trust anchor. Then POST .../simpleenroll (or simplereenroll) of a PKCS#10 CSR signed by the
 * identity's key, subject CN=<udid> (re-enrolling: exactly the current certificate's subject;
 * the server's profile decides the final subject either way), sent as base64 with
 * Content-Transfer-Encoding: base64. The answer's certificate for the identity's key must
 * chain to a CA from cacerts (X509_V_FLAG_X509_STRICT, purpose sslclient, now).
 *
 * An expired identity certificate cannot re-enroll (DEVID_EST_ERROR, nothing sent). Returns 0
 * only when issued; otherwise r->outcome says what happened and r->error why (codes as
 * devid_hello: DEVID_EAUTH refused, DEVID_ECRYPTO TLS or a certificate that does not check,
 * DEVID_EIO connection, DEVID_EINVAL bad answer or arguments, DEVID_ENOMEM).
 */
int devid_est_enroll(
    const struct devid_identity *id, const struct devid_est_opts *o, struct devid_est_result *r);

/*
 * Whether cert is due for renewal at now: when at most a third of its validity
 * (notAfter - notBefore) is left, or it has expired, or its times cannot be read. *due_at
 * (may be NULL) receives the time it becomes due: notAfter - validity / 3.
 */
bool devid_renew_due(X509 *cert, time_t now, time_t *due_at);

/*
 * Writes cert, then ca (may be NULL), as PEM to path atomically: a temporary file in the same
 * directory, written, fsync'ed, given mode 0644 and renamed over path; the directory is
 * fsync'ed after. On failure path is untouched and no temporary file is left.
 */
int devid_cert_write_pem(const char *path, X509 *cert, X509 *ca, struct devid_error *e);

#endif
