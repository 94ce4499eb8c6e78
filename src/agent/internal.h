/* SPDX-License-Identifier: Apache-2.0 */
/*
 * internal.h - what the files of src/agent share, and what their unit tests reach.
 * Not part of the public API (that is include/devid/agent.h).
 */
#ifndef DEVID_AGENT_INTERNAL_H
#define DEVID_AGENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/dynbuf.h"
#include "lib/error.h"

/* Limits on what a product cloud sends back to devid_hello (see also DEVID_HELLO_MAX_BODY). */
/* the status line and the header fields of a response, CRLFs included */
#define AGENT_MAX_RESPONSE_HEAD 16384
/* everything read from the server: head, body and chunked framing */
#define AGENT_MAX_RESPONSE_RAW (2 * AGENT_MAX_RESPONSE_HEAD + 2 * 65536)
/* interim (1xx) responses skipped before the final one */
#define AGENT_MAX_INTERIM_RESPONSES 8
/* the reason phrase kept from a status line */
#define AGENT_MAX_REASON_LEN 64
/* a key URI scheme (RFC 3986 3.1); ours are short */
#define AGENT_MAX_SCHEME_LEN 16
/* a host name or IP literal in --connect (RFC 1035 2.3.4: 253 for a name) */
#define AGENT_MAX_HOST_LEN 253

/*
 * The scheme of a key URI, lowercased into scheme[AGENT_MAX_SCHEME_LEN + 1]: the characters
 * before the first ':' if they form an RFC 3986 scheme (ALPHA *( ALPHA / DIGIT / "+" / "-" /
 * "." )). DEVID_EINVAL when there is none ("/etc/key.pem", ":x", "") or it is too long.
 */
int agent_uri_scheme(const char *uri, char scheme[AGENT_MAX_SCHEME_LEN + 1], struct devid_error *e);

/*
 * The path of a file: URI, borrowed from uri: "file:PATH" gives PATH; "file:///abs" and
 * "file://localhost/abs" give "/abs". Another host, an empty path or a NUL-free but
 * otherwise empty remainder is DEVID_EINVAL. No percent-decoding.
 */
int agent_file_uri_path(const char *uri, const char **path, struct devid_error *e);

/* the persistent handles of a TPM 2.0 (TPM 2.0 Part 2, 7.2: TPM_HT_PERSISTENT) */
#define AGENT_TPM2_PERSISTENT_FIRST 0x81000000u
#define AGENT_TPM2_PERSISTENT_LAST 0x81ffffffu

/* A tpm2: key URI taken apart: exactly one of handle and path is set. */
struct agent_tpm2_uri {
	uint32_t handle; /* tpm2:handle=0x81000010, a persistent key; 0 with path */
	const char *path; /* tpm2:file=PATH, borrowed from the URI; NULL with handle */
};

/*
 * Parses a tpm2: key URI: the scheme tpm2 (any case), then exactly one attribute, lowercase:
 * "handle=0x" and 1 to 8 hex digits naming a persistent handle (AGENT_TPM2_PERSISTENT_FIRST
 * to _LAST), nothing after it; or "file=PATH", PATH being the rest of the URI as written
 * (not empty, no percent-decoding), a "TSS2 PRIVATE KEY" PEM file. Pure. DEVID_EINVAL with
 * the reason otherwise; the reason quotes at most a short printable excerpt of an unknown
 * attribute's name, never its value.
 */
int agent_tpm2_uri_parse(const char *uri, struct agent_tpm2_uri *out, struct devid_error *e);

/*
 * Splits --connect's HOST:PORT: "name:443", "192.0.2.1:443", "[2001:db8::1]:443". host
 * receives the host without brackets (at most AGENT_MAX_HOST_LEN chars + NUL), port the
 * decimal port 1..65535 as written (at most 5 digits + NUL).
 */
int agent_split_host_port(
    const char *s, char host[AGENT_MAX_HOST_LEN + 1], char port[6], struct devid_error *e);

/* What agent_http_response_parse found. body is the caller's: init it with the limit it wants. */
struct agent_http_response {
	int status; /* the final status code, 200..599 */
	char reason[AGENT_MAX_REASON_LEN + 1]; /* its reason phrase, printable ASCII, maybe cut */
	struct dynbuf body; /* decoded body (chunked framing removed), up to body.max */
	bool truncated; /* the body was longer than body.max; the rest was not needed */
	bool close_delimited; /* the body ran to the end of the stream (no length given) */
};

#define AGENT_HTTP_NEED_MORE 1

/*
 * Parses an HTTP/1.x response to a GET (RFC 9112) from the bytes p[0..len) received so far;
 * eof says the stream has ended. Pure: no I/O, never reads past len, no NUL expected.
 * Interim 1xx responses are skipped. The body is framed by Transfer-Encoding: chunked,
 * Content-Length, or the end of the stream; a body longer than out->body.max is cut there
 * and marked truncated (the response is then complete).
 *
 * Returns 0 when the response is complete (out filled, out->body holding the body),
 * AGENT_HTTP_NEED_MORE when more bytes are needed (never when eof), DEVID_EINVAL when the
 * bytes are not an HTTP response or end too early (e says why), DEVID_ELIMIT when the head
 * is longer than AGENT_MAX_RESPONSE_HEAD, or DEVID_ENOMEM. out->body is reset first.
 */
int agent_http_response_parse(
    const uint8_t *p, size_t len, bool eof, struct agent_http_response *out, struct devid_error *e);

/*
 * Copies at most max bytes of p[0..len) into out (outsz bytes, NUL-terminated) for a message:
 * tabs and line ends become spaces, other control characters and bytes above 0x7e become
 * '?', and "..." marks a cut.
 */
void agent_printable(const uint8_t *p, size_t len, size_t max, char *out, size_t outsz);

/* ---- EST (est.c) and the HTTPS exchange it shares with devid_hello (hello.c) ------------ */

#include <openssl/x509.h>

struct devid_identity;
struct devid_hello_result;
struct devid_est_opts;
struct devid_est_result;

/* the most of an EST response body kept (base64 of a PKCS#7 with a few certificates) */
#define AGENT_MAX_EST_BODY 65536
/* certificates in one EST certs-only response (RFC 7030 4.1.3, 4.2.3) */
#define AGENT_MAX_EST_CERTS 8
/* the URL path prefix before /.well-known/est (--est https://host:port/PREFIX) */
#define AGENT_MAX_EST_PREFIX 256
/* an EST label (RFC 7030 3.2.2), a tenant name for devid */
#define AGENT_MAX_EST_LABEL 64

/* One HTTP/1.1 request for agent_https_request. */
struct agent_request {
	const char *method; /* "GET" or "POST" */
	const char *path; /* origin-form: "/", "/.well-known/est/cacerts" */
	const char *headers; /* more header fields, each ending in CRLF; NULL for none */
	const uint8_t *body; /* sent with Content-Length; NULL for none */
	size_t body_len;
	size_t max_body; /* the most of the response body kept (r->body) */
	int ok_status; /* the status that answers the request; 0 for 200 */
};

/*
 * devid_hello with any request: connects to host:port, runs mutual TLS with the identity
 * (server verified against ca_file and host), sends req with Host, User-Agent and
 * Connection: close, and reads the response within timeout_ms. id may be NULL: the TLS
 * client then presents no certificate (a TPM device before its enrollment). The result is
 * devid_hello's: 0 and DEVID_HELLO_ADMITTED on HTTP req->ok_status (200 when 0);
 * DEVID_EAUTH and DEVID_HELLO_REFUSED when the server answered with another status
 * (r->http_status, r->body) or closed without answering (r->http_status 0); the other
 * outcomes as devid_hello documents them. r must have been initialized; release it after.
 */
int agent_https_request(const struct devid_identity *id, const char *host, const char *port,
    const char *ca_file, int timeout_ms, const struct agent_request *req,
    struct devid_hello_result *r);

/* An --est URL taken apart: https://HOST[:PORT][/PREFIX] */
struct agent_est_url {
	char host[AGENT_MAX_HOST_LEN + 1]; /* without brackets */
	char port[6]; /* "443" when the URL names none */
	char prefix[AGENT_MAX_EST_PREFIX + 1]; /* "" or "/a/b": no trailing '/' */
};

/*
 * Parses an --est URL: the scheme https (any case), a host (a DNS name, an IPv4 address or a
 * bracketed IPv6 address), an optional port, an optional path prefix made of RFC 3986
 * unreserved characters, '/', '%', '+', ',', ';', '=', '@', ':', without "." or ".."
 * segments. No user info, query or fragment. DEVID_EINVAL with the reason otherwise.
 */
int agent_est_url_parse(const char *url, struct agent_est_url *out, struct devid_error *e);

/* An EST label: 1..AGENT_MAX_EST_LABEL of ALPHA / DIGIT / "-" / "." / "_" / "~", not "." or "..".
 */
bool agent_est_label_ok(const char *label);

/*
 * The certificates of an EST response body (RFC 7030 4.1.3 and 4.2.3, RFC 8951): base64
 * (RFC 4648, padded; CR, LF, space and tab anywhere are skipped) of exactly one DER
 * CMS/PKCS#7 SignedData (usually certs-only, without signers), nothing after it, holding 1 to
 * AGENT_MAX_EST_CERTS certificates, each at most MAX_CERT_DER bytes with well-formed
 * extensions. Pure: never reads past len, no NUL expected. Bodies longer than
 * AGENT_MAX_EST_BODY are DEVID_ELIMIT.
 *
 * On success *out is a new stack in the order sent (free it with
 * sk_X509_pop_free(*out, X509_free)); otherwise *out is NULL and the code is DEVID_EINVAL
 * (with the reason: not base64, not DER PKCS#7, trailing bytes, not signed-data, no
 * certificates, ...), DEVID_ELIMIT (too long, too many certificates) or DEVID_ENOMEM.
 */
int agent_est_certs_parse(
    const uint8_t *body, size_t len, STACK_OF(X509) **out, struct devid_error *e);

/*
 * The string member `name` of the JSON object in p[0..len) (an error answer such as
 * {"error":"not_claimed","message":"..."}), top level only, decoded into out (outsz bytes,
 * NUL-terminated, made printable like agent_printable, cut with "..."). A minimal scanner,
 * not a validator: it gives up (false) on anything it does not expect; out is "" then.
 */
bool agent_json_get_string(const uint8_t *p, size_t len, const char *name, char *out, size_t outsz);

/* ---- TPM enrollment by credential activation: its EST calls (est.c, docs/tpm.md) -------- */

/* the id of a pending activation: lowercase hex */
#define AGENT_TPM_ACTIVATION_ID_LEN 32
/* a marshalled TPM2B_ID_OBJECT (its 2-byte size included): two digests of at most 64 bytes */
#define AGENT_TPM_ID_OBJECT_MAX 256
/* a marshalled TPM2B_ENCRYPTED_SECRET: an RSA ciphertext or an ECC point, at most 512 bytes */
#define AGENT_TPM_ENCRYPTED_SECRET_MAX 514
/* the most of tpm/activate's answer kept: its JSON is about 700 bytes for an RSA 2048 EK */
#define AGENT_MAX_TPM_ACTIVATION_BODY 8192

/* What tpm/activate sends, raw (the call base64-encodes it); borrowed. */
struct agent_tpm_evidence {
	const uint8_t *ek_cert; /* the EK certificate, DER */
	size_t ek_cert_len;
	const uint8_t *ak_public; /* the AK's TPM2B_PUBLIC */
	size_t ak_public_len;
	const uint8_t *key_public; /* the signing key's TPM2B_PUBLIC */
	size_t key_public_len;
	const uint8_t *certify_info; /* the TPMS_ATTEST of TPM2_Certify(key, by the AK) */
	size_t certify_info_len;
	const uint8_t *certify_signature; /* its TPMT_SIGNATURE */
	size_t certify_signature_len;
	const uint8_t *csr; /* a PKCS#10 request signed by the signing key, DER */
	size_t csr_len;
};

/* tpm/activate's answer: the credential TPM2_ActivateCredential takes, each with its size. */
struct agent_tpm_activation {
	char id[AGENT_TPM_ACTIVATION_ID_LEN + 1];
	uint8_t blob[AGENT_TPM_ID_OBJECT_MAX]; /* TPM2B_ID_OBJECT (credentialBlob) */
	size_t blob_len;
	uint8_t secret[AGENT_TPM_ENCRYPTED_SECRET_MAX]; /* TPM2B_ENCRYPTED_SECRET */
	size_t secret_len;
};

/*
 * Parses the JSON object of a 201 answer to tpm/activate from p[0..len):
 * {"id", "credentialBlob", "encryptedSecret", "expiresAt"}, each a string: id 32 lowercase hex
 * digits; the two structures padded base64 (RFC 4648) of a marshalled TPM2B whose 2-byte
 * size is the rest of it, within the limits above; expiresAt is not read. Members of other
 * names are skipped; a repeated member, another type or anything after the object is
 * DEVID_EINVAL with the reason. Pure: never reads past len, no NUL expected.
 */
int agent_tpm_activation_parse(
    const uint8_t *p, size_t len, struct agent_tpm_activation *out, struct devid_error *e);

/*
 * The three EST calls of a TPM enrollment, over TLS that authenticates the server only (the
 * device has no certificate yet). o->reenroll is ignored. Each fills r as devid_est_enroll
 * does (outcome, http_status, error) and returns 0 or a DEVID_E* code.
 *
 * agent_est_cacerts: GET [label/]cacerts; *cas is new (sk_X509_pop_free). devid answers it
 * without a client certificate only for a label, so o->label must be set.
 * agent_est_tpm_activate: POST [label/]tpm/activate of ev as JSON; 201 gives *out.
 * agent_est_tpm_enroll: POST [label/]tpm/enroll of {id, secret}; the answer's certificate for
 * key is r->cert (new). With cas (from agent_est_cacerts, else NULL) it must chain to one of
 * them (as devid_est_enroll checks) and r->ca is that CA; without, r->ca stays NULL.
 */
int agent_est_cacerts(
    const struct devid_est_opts *o, STACK_OF(X509) **cas, struct devid_est_result *r);
int agent_est_tpm_activate(const struct devid_est_opts *o, const struct agent_tpm_evidence *ev,
    struct agent_tpm_activation *out, struct devid_est_result *r);
int agent_est_tpm_enroll(const struct devid_est_opts *o, const struct agent_tpm_activation *a,
    const uint8_t *secret, size_t secret_len, EVP_PKEY *key, STACK_OF(X509) *cas,
    struct devid_est_result *r);

#endif
